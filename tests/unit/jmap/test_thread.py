"""Thread/get and Thread/changes (RFC 8621 §3) against the real store:
threads made at delivery from Message-ID, In-Reply-To/References and the
base subject."""

from __future__ import annotations

from typing import Any

from jmap_mail_support import raw_message as message


async def thread_of(jmap: Any, email_id: str) -> str:
    got = await jmap.call("Email/get", ids=[email_id], properties=["threadId"])
    return str(got["list"][0]["threadId"])


async def test_reply_joins_the_thread_oldest_first(jmap: Any) -> None:
    first = await jmap.add(message("Subject: Lunch?", "Message-ID: <1@x.example>"))
    other = await jmap.add(message("Subject: Unrelated", "Message-ID: <2@x.example>"))
    reply = await jmap.add(message("Subject: Re: Lunch?", "Message-ID: <3@x.example>",
                                      "In-Reply-To: <1@x.example>"))
    thread = await thread_of(jmap, first)
    assert await thread_of(jmap, reply) == thread
    assert await thread_of(jmap, other) != thread
    got = await jmap.call("Thread/get", ids=[thread, "T999999", "E1"])
    assert got["list"] == [{"id": thread, "emailIds": [first, reply]}]
    assert got["notFound"] == ["T999999", "E1"]
    got = await jmap.call("Thread/get", ids=None)
    assert {t["id"] for t in got["list"]} == {thread, await thread_of(jmap, other)}


async def test_thread_changes(jmap: Any) -> None:
    first = await jmap.add(message("Subject: Plans", "Message-ID: <p1@x.example>"))
    thread = await thread_of(jmap, first)
    state = (await jmap.call("Thread/get", ids=[]))["state"]
    await jmap.add(message("Subject: Re: Plans", "References: <p1@x.example>"))
    got = await jmap.call("Thread/changes", sinceState=state)
    assert got["updated"] == [thread] and got["created"] == []
    assert got["oldState"] == state and got["newState"] != state
    newer = await jmap.add(message("Subject: Fresh"))
    got = await jmap.call("Thread/changes", sinceState=got["newState"])
    assert got["created"] == [await thread_of(jmap, newer)]
    error = await jmap.error("Thread/changes", sinceState="x")
    assert error["type"] == "cannotCalculateChanges"


async def test_thread_get_rejects_unknown_properties(jmap: Any) -> None:
    error = await jmap.error("Thread/get", ids=[], properties=["subject"])
    assert error["type"] == "invalidArguments"
