"""Two-way sync with mbsync (Debian isync): a client we did not write that
uses UIDPLUS, flags, APPEND and EXPUNGE the way offline mail clients do.

Sync, change both sides, sync again, change the server, sync again: nothing
lost, nothing duplicated.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from support import TestNode, append

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync (isync) not installed"),
]

USER = "bob@hamburger.edu"
PASSWORD = "hungry"


def config(port: int, root: Path) -> str:
    return f"""
IMAPAccount test
Host 127.0.0.1
Port {port}
User {USER}
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account test

MaildirStore local
Path {root}/mail/
Inbox {root}/mail/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns INBOX Work
Create Both
Expunge Both
SyncState *
"""


async def mbsync(rc: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        "mbsync", "-c", str(rc), "-a",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    return text


def subject(raw: bytes) -> bytes:
    return raw.split(b"Subject: ")[1].split(b"\n")[0].strip()


def maildir_files(folder: Path) -> list[Path]:
    return sorted(p for sub in ("cur", "new") for p in (folder / sub).glob("*"))


def message(n: int) -> bytes:
    return (
        f"From: a@crepes.fr\r\nTo: {USER}\r\nSubject: m{n}\r\nMessage-ID: <m{n}@x>\r\n"
        f"\r\nbody {n}\r\n"
    ).encode()


async def test_two_way_sync(node_factory: Any, tmp_path: Path) -> None:
    node: TestNode = await node_factory(listen=("imap",))
    account = await node.add_user(USER, PASSWORD)
    store = node.store
    inbox = await store.mailbox_get(account.id, "INBOX")
    work = await store.mailbox_create(account.id, "Work")
    for n in (1, 2, 3):
        await append(store, inbox.id, message(n))
    await append(store, work.id, message(4), ["\\Flagged"])
    rc = tmp_path / "mbsyncrc"
    rc.write_text(config(node.port("imap"), tmp_path))
    (tmp_path / "mail").mkdir()

    await mbsync(rc)
    local_inbox = tmp_path / "mail" / "INBOX"
    assert len(maildir_files(local_inbox)) == 3
    work_files = maildir_files(tmp_path / "mail" / "Work")
    assert len(work_files) == 1 and work_files[0].name.endswith(",F")

    # Local changes: mark one seen, delete one (trashed), add a new message.
    files = maildir_files(local_inbox)
    seen = files[0]
    seen.rename(seen.parent.parent / "cur" / (seen.name.split(":")[0] + ":2,S"))
    files[1].rename(files[1].parent.parent / "cur" / (files[1].name.split(":")[0] + ":2,T"))
    (local_inbox / "new" / "1700000000.local.host").write_bytes(message(5))
    await mbsync(rc)

    metas = await store.messages(inbox.id)
    subjects = []
    for meta in metas:
        raw = await store.message_bytes(inbox.id, meta.uid)
        subjects.append(subject(raw))
    assert sorted(subjects) == [b"m1", b"m3", b"m5"]
    assert sum("\\Seen" in m.flags for m in metas) == 1
    assert len(metas) == 3

    # Server-side changes: a new delivery and a flag, then sync again.
    await append(store, inbox.id, message(6))
    await store.store_flags(inbox.id, [metas[-1].uid], ["\\Flagged"], "add")
    await mbsync(rc)
    files = maildir_files(local_inbox)
    assert len(files) == 4
    assert sorted(subject(p.read_bytes()) for p in files) == [b"m1", b"m3", b"m5", b"m6"]
    assert sum(p.name.endswith("F") or ",F" in p.name for p in files) == 1

    # Nothing changes on a sync with no changes: no duplicates either side.
    await mbsync(rc)
    assert len(maildir_files(local_inbox)) == 4
    assert len(await store.messages(inbox.id)) == 4
