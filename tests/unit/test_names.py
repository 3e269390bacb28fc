"""mailstack.names: what a mail domain, host name, account address and password may be."""

from __future__ import annotations

import pytest

from mailstack.errors import MailstackError
from mailstack.names import (
    MIN_PASSWORD_LENGTH,
    BadName,
    check_account_address,
    check_domain,
    check_hostname,
    check_password,
)


def test_domains() -> None:
    assert check_domain(" Hamburger.EDU. ") == "hamburger.edu"
    assert check_domain("xn--bcher-kva.example") == "xn--bcher-kva.example"
    assert check_domain("lan", force=True) == "lan"
    assert check_domain("co.uk", force=True) == "co.uk"
    for bad, says in [
        ("com", "single label"),
        ("co.uk", "public suffix"),
        ("192.0.2.1", "IP address"),
        ("2001:db8::1", "IP address"),
        ("bad..name", "empty label"),
        ("exa mple.com", "letters, digits"),
        ("under_score.example", "letters, digits"),
        ("", "empty"),
        (".", "empty"),
        ("a" * 64 + ".example", "over 63"),
        (".".join(["a" * 60] * 5), "longer than 253"),
        ("bücher.example", "xn--bcher-kva.example"),
    ]:
        with pytest.raises(BadName, match=says):
            check_domain(bad)
    with pytest.raises(BadName, match="IP address"):
        check_domain("127.0.0.1", force=True)


def test_hostnames() -> None:
    assert check_hostname("Mail.Hamburger.edu.") == "mail.hamburger.edu"
    with pytest.raises(BadName, match="single label"):
        check_hostname("vm")
    with pytest.raises(BadName, match="IP address"):
        check_hostname("10.0.0.1")


def test_account_addresses() -> None:
    assert check_account_address("Bob.Smith+tag@Hamburger.edu") == "bob.smith+tag@hamburger.edu"
    for bad in ("a@b@hamburger.edu", "a b@hamburger.edu", "bob", "@hamburger.edu", "bob@"):
        with pytest.raises(BadName, match="not a mail address"):
            check_account_address(bad)
    with pytest.raises(BadName, match="dot-atom"):
        check_account_address('"bob smith"@hamburger.edu')
    with pytest.raises(BadName, match="IP address"):
        check_account_address("bob@[127.0.0.1]")


def test_passwords() -> None:
    assert check_password("x" * MIN_PASSWORD_LENGTH)
    with pytest.raises(MailstackError, match=f"at least {MIN_PASSWORD_LENGTH}"):
        check_password("x" * (MIN_PASSWORD_LENGTH - 1))
