"""What an attempt came to (RFC 3463 codes from SMTP replies) and RFC 3461 NOTIFY."""

from __future__ import annotations

from mailstack.delivery.status import Outcome, wants


def test_reply_classes():
    assert Outcome.from_reply(250, "2.0.0 OK", "mx").kind == "delivered"
    temp = Outcome.from_reply(451, "4.3.0 try later", "mx")
    assert (temp.kind, temp.status, temp.reply) == ("temporary", "4.3.0", "451 4.3.0 try later")
    perm = Outcome.from_reply(550, "5.1.1 User unknown", "mx")
    assert (perm.kind, perm.status, perm.remote_mta) == ("permanent", "5.1.1", "mx")
    # No enhanced code, or one of the wrong class: the class with 0.0.
    assert Outcome.from_reply(550, "no such user", "mx").status == "5.0.0"
    assert Outcome.from_reply(450, "5.1.1 mixed up", "mx").status == "4.0.0"


def test_wants_defaults():
    assert wants(None, "FAILURE") and wants(None, "DELAY") and not wants(None, "SUCCESS")
    assert wants("success,failure", "SUCCESS") and not wants("NEVER", "FAILURE")
