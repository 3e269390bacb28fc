"""OBJECTID (RFC 8474): MAILBOXID, EMAILID and THREADID, the ids JMAP uses."""

from __future__ import annotations

from transcript import logged_in

from support import append


def reply(n: int, subject: str, refs: str = "") -> bytes:
    extra = f"References: {refs}\r\n" if refs else ""
    return (
        f"From: a@b.example\r\nSubject: {subject}\r\nMessage-ID: <{n}@b.example>\r\n{extra}"
        f"\r\nbody {n}\r\n"
    ).encode()


async def test_objectids(store):
    c, account, inbox = await logged_in(store, 0)
    await append(store, inbox.id, reply(1, "plans"))
    await append(store, inbox.id, reply(2, "Re: plans", "<1@b.example>"))
    await append(store, inbox.id, reply(3, "other"))
    metas = {m.uid: m for m in await store.messages(inbox.id)}
    e1, e2, e3 = (f"E{metas[u].email_id}" for u in (1, 2, 3))
    t1, t3 = f"T{metas[1].thread_id}", f"T{metas[3].thread_id}"
    assert metas[1].thread_id == metas[2].thread_id != metas[3].thread_id
    later = f"M{max(m.id for m in await store.mailbox_list(account.id)) + 1}"
    await c.transcript(
        f"""
        C: a1 SELECT INBOX
        S: ~
        S: * OK [MAILBOXID (M{inbox.id})] Ok
        S: * OK [URLMECH INTERNAL] URLAUTH mechanisms
        S: a1 OK [READ-WRITE] SELECT completed
        C: a2 FETCH 1:3 (EMAILID THREADID)
        S: * 1 FETCH (EMAILID ({e1}) THREADID ({t1}))
        S: * 2 FETCH (EMAILID ({e2}) THREADID ({t1}))
        S: * 3 FETCH (EMAILID ({e3}) THREADID ({t3}))
        S: a2 OK FETCH completed
        C: a3 SEARCH THREADID {t1}
        S: * SEARCH 1 2
        S: a3 OK SEARCH completed
        C: a4 UID SEARCH EMAILID {e3}
        S: * SEARCH 3
        S: a4 OK SEARCH completed
        C: a5 SEARCH EMAILID E999999
        S: * SEARCH
        S: a5 OK SEARCH completed
        C: a6 SEARCH EMAILID "a b"
        S: a6 BAD Expected object id
        C: a7 STATUS INBOX (MAILBOXID MESSAGES)
        S: * STATUS "INBOX" (MAILBOXID (M{inbox.id}) MESSAGES 3)
        S: a7 OK STATUS completed
        C: a8 CREATE Later
        S: a8 OK [MAILBOXID ({later})] CREATE completed
        C: a9 MOVE 3 Later
        S: ~
        S: a9 OK MOVE completed
        C: b1 SELECT Later
        S: ~
        S: b1 OK [READ-WRITE] SELECT completed
        C: b2 FETCH 1 (EMAILID)
        S: * 1 FETCH (EMAILID ({e3}))
        S: b2 OK FETCH completed
        C: b3 RENAME Later Someday
        S: b3 OK RENAME completed
        C: b4 STATUS Someday (MAILBOXID)
        S: * STATUS "Someday" (MAILBOXID ({later}))
        S: b4 OK STATUS completed
        """
    )
    assert "OBJECTID" in (await c.send("b5 CAPABILITY"))[0].split()
