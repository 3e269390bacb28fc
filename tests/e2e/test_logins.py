"""One authenticator for the node: SMTP AUTH, POP3 and IMAP share one failed-login
throttle by client address, and each login is logged once."""

from __future__ import annotations

import asyncio
import base64
import imaplib
import logging
import poplib
import smtplib

import pytest

USER = "alice@crepes.fr"
PASSWORD = "hungry"


def plain(password: str) -> str:
    return "PLAIN " + base64.b64encode(f"\0{USER}\0{password}".encode()).decode()


@pytest.fixture
async def node(node_factory):
    node = await node_factory(
        listen=("submission", "pop3", "imap"),
        hostname="crepes.fr",
        limits={"login_failures": 2, "login_failure_delay": 0.05},
        submission={"allow_plaintext_on_loopback": True},
    )
    await node.add_user(USER, PASSWORD)
    return node


def submission_auth(node, password: str, source: str = "127.0.0.1") -> int:
    with smtplib.SMTP(
        "127.0.0.1", node.port("submission"), timeout=10, source_address=(source, 0)
    ) as s:
        s.ehlo()
        code, _ = s.docmd("AUTH", plain(password))
        return code


async def test_failures_over_imap_throttle_the_address_for_every_protocol(node, caplog):
    caplog.set_level(logging.INFO, logger="mailstack.auth")

    def run() -> tuple[int, bytes]:
        for _ in range(2):
            imap = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
            with pytest.raises(imaplib.IMAP4.error):
                imap.login(USER, "guess")
            imap.logout()
        # Submission cannot hold its client: 454 at once, the password unchecked.
        code = submission_auth(node, PASSWORD)
        # POP3 holds the attempt, then checks it.
        pop = poplib.POP3("127.0.0.1", node.port("pop3"), timeout=10)
        pop.user(USER)
        answer = pop.pass_(PASSWORD)
        pop.quit()
        return code, answer

    code, answer = await asyncio.to_thread(run)
    assert code == 454
    assert answer.startswith(b"+OK")
    lines = [r.getMessage() for r in caplog.records if r.name == "mailstack.auth"]
    assert lines == [
        f"login failed protocol=imap user={USER} client=127.0.0.1 reason=credentials failures=1",
        f"login failed protocol=imap user={USER} client=127.0.0.1 reason=credentials failures=2",
        f"login failed protocol=submission user={USER} client=127.0.0.1 reason=throttled "
        "failures=2",
        f"login ok protocol=pop3 user={USER} client=127.0.0.1",
    ]


async def test_guessing_from_one_address_does_not_lock_the_owner_out(node):
    def run() -> tuple[list[int], int]:
        guesses = [submission_auth(node, "guess", source="127.0.0.2") for _ in range(4)]
        return guesses, submission_auth(node, PASSWORD, source="127.0.0.1")

    guesses, owner = await asyncio.to_thread(run)
    assert guesses == [535, 535, 454, 454]
    assert owner == 235
