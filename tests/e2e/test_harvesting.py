"""Address harvesting on the MX (issue 15 item 11), driven with smtplib:
unknown recipients are answered ever more slowly past the tarpit, and the
session is closed with 421 at the limit, logged."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import time

import pytest


async def test_guessing_recipients_is_slowed_then_cut_off(node_factory, caplog):
    caplog.set_level(logging.WARNING, logger="mailstack.smtp")
    node = await node_factory(
        hostname="hamburger.edu",
        limits={
            "unknown_recipient_tarpit": 2,
            "unknown_recipient_delay": 0.2,
            "unknown_recipients": 5,
        },
    )
    await node.add_user("bob@hamburger.edu")

    def run() -> tuple[list[tuple[int, float]], type[Exception] | None]:
        answers = []
        with smtplib.SMTP("127.0.0.1", node.port("smtp"), timeout=10) as smtp:
            smtp.ehlo("crepes.fr")
            smtp.mail("alice@crepes.fr")
            assert smtp.rcpt("bob@hamburger.edu")[0] == 250
            for n in range(5):
                start = time.monotonic()
                code = smtp.rcpt(f"nobody{n}@hamburger.edu")[0]
                answers.append((code, time.monotonic() - start))
            try:
                smtp.noop()
            except smtplib.SMTPServerDisconnected as closed:
                return answers, type(closed)
            return answers, None

    answers, closed = await asyncio.to_thread(run)
    codes = [code for code, _ in answers]
    assert codes == [550, 550, 550, 550, 421]
    waits = [wait for _, wait in answers]
    assert waits[0] < 0.15 and waits[1] < 0.15
    assert 0.2 <= waits[2] < 0.39  # one step past the tarpit
    assert 0.4 <= waits[3] < 0.9  # two steps
    assert closed is smtplib.SMTPServerDisconnected
    messages = [
        r.getMessage()
        for r in caplog.records
        if r.name == "mailstack.smtp" and r.levelno >= logging.WARNING
    ]
    assert messages == [
        "tarpit protocol=smtp client=127.0.0.1 reason=unknown-recipients unknown=3",
        "session closed protocol=smtp client=127.0.0.1 reason=unknown-recipients unknown=5",
    ]


@pytest.mark.parametrize("known_first", [True, False])
async def test_a_new_session_starts_its_own_count(node_factory, known_first):
    node = await node_factory(
        hostname="hamburger.edu",
        limits={"unknown_recipient_tarpit": 1, "unknown_recipient_delay": 0.05,
                "unknown_recipients": 2},
    )  # fmt: skip
    await node.add_user("bob@hamburger.edu")

    def session() -> list[int]:
        with smtplib.SMTP("127.0.0.1", node.port("smtp"), timeout=10) as smtp:
            smtp.ehlo("crepes.fr")
            smtp.mail("alice@crepes.fr")
            order = ["bob", "nobody"] if known_first else ["nobody", "bob"]
            return [smtp.rcpt(f"{name}@hamburger.edu")[0] for name in order]

    first = await asyncio.to_thread(session)
    second = await asyncio.to_thread(session)
    assert first == second == ([250, 550] if known_first else [550, 250])
