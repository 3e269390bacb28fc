"""accounts.toml, how a password is got, HOST:PORT, and RFC 2782 ordering."""

from __future__ import annotations

import random

import pytest

from mailstack.errors import ConfigError, MailstackError
from mailstack.ua.accounts import get_password, load_account
from mailstack.ua.discover import _rfc2782_order, endpoint, parse_host_port

ACCOUNTS = """
default = "bob"

[account.bob]
user = "bob@hamburger.edu"
from = "Bob <bob@hamburger.edu>"
imap = "mail.hamburger.edu:993"
password_env = "BOB_PASSWORD"

[account.alice]
user = "alice@crepes.fr"
password = "hungry"
"""


@pytest.fixture
def accounts(tmp_path, monkeypatch):
    path = tmp_path / "accounts.toml"
    path.write_text(ACCOUNTS)
    path.chmod(0o600)
    monkeypatch.setenv("MAILSTACK_ACCOUNTS", str(path))
    monkeypatch.delenv("MAILSTACK_PASSWORD", raising=False)
    return path


def test_accounts_by_name_and_default(accounts, monkeypatch) -> None:
    bob = load_account(None)
    assert bob is not None and (bob.user, bob.sender, bob.imap) == (
        "bob@hamburger.edu", "Bob <bob@hamburger.edu>", "mail.hamburger.edu:993",
    )  # fmt: skip
    monkeypatch.setenv("BOB_PASSWORD", "ketchup")
    assert get_password(password_file=None, account=bob, user="bob") == "ketchup"
    alice = load_account("alice")
    assert get_password(password_file=None, account=alice, user="alice") == "hungry"
    monkeypatch.setenv("MAILSTACK_PASSWORD", "from-env")
    assert get_password(password_file=None, account=alice, user="alice") == "from-env"


def test_a_password_in_a_file_others_may_read_is_refused(accounts) -> None:
    accounts.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_account("alice")
    assert load_account("bob") is not None  # no password in that table


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[account.x]\nserver = "a:1"\n', "account.x.server: unknown key"),
        ('[account.x]\ninsecure = "yes"\n', "account.x.insecure: expected true or false"),
        ('[account.x]\ntls = "sometimes"\n', "account.x.tls: expected one of"),
        ("colour = 1\n", "unknown key colour"),
        ("[account.x\n", "accounts.toml"),
    ],
)
def test_bad_accounts_files(accounts, text: str, said: str) -> None:
    accounts.write_text(text)
    with pytest.raises(ConfigError, match=said):
        load_account("x")


def test_missing_account(accounts, tmp_path, monkeypatch) -> None:
    with pytest.raises(ConfigError, match=r"no \[account.carol\]"):
        load_account("carol")
    monkeypatch.setenv("MAILSTACK_ACCOUNTS", str(tmp_path / "none.toml"))
    assert load_account(None) is None
    with pytest.raises(ConfigError, match="no accounts file"):
        load_account("bob")


def test_password_file_and_no_terminal(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MAILSTACK_PASSWORD", raising=False)
    (tmp_path / "pw").write_text("s3cret\nignored\n")
    assert get_password(password_file=str(tmp_path / "pw"), account=None, user="u") == "s3cret"
    with pytest.raises(MailstackError, match="no such file"):
        get_password(password_file=str(tmp_path / "nope"), account=None, user="u")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(MailstackError, match="no password for u"):
        get_password(password_file=None, account=None, user="u")


@pytest.mark.parametrize(
    ("value", "default", "parsed"),
    [
        ("mail.example:587", None, ("mail.example", 587)),
        ("[::1]:993", None, ("::1", 993)),
        ("mail.example", 25, ("mail.example", 25)),
        ("[::1]", 25, ("::1", 25)),
    ],
)
def test_host_port(value: str, default: int | None, parsed: tuple) -> None:
    assert parse_host_port(value, "--server", default) == parsed


@pytest.mark.parametrize(
    "value", ["mail.example", "a:b", ":25", "h:0", "h:70000", "[::1", "::1:25"]
)
def test_bad_host_port(value: str) -> None:
    with pytest.raises(MailstackError, match="expected HOST:PORT"):
        parse_host_port(value, "--server")


def test_implicit_tls_from_the_port() -> None:
    assert endpoint("h:993", "--imap", None, 143).tls == "implicit"
    assert endpoint("h:143", "--imap", None, 143).tls == "starttls"
    assert endpoint("h:993", "--imap", "none", 143).tls == "none"


def test_rfc2782_order() -> None:
    records = [(10, 0, 1, "c"), (0, 90, 1, "a"), (0, 10, 1, "b"), (20, 5, 1, "d")]
    firsts = [_rfc2782_order(records, random.Random(seed))[0][3] for seed in range(200)]
    assert set(firsts) == {"a", "b"} and firsts.count("a") > firsts.count("b") * 3
    assert [r[3] for r in _rfc2782_order(records, random.Random(1))][2:] == ["c", "d"]
