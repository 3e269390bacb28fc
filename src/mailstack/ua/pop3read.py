"""POP3 as the lectures show it (RFC 1939): download, then delete or keep.

`download` runs one session's transaction state over a logged-in client:
UIDL (RFC 1939 §7) lists the maildrop, each message not yet in the local
Maildir is RETRieved and written there durably, and then either

* download-and-delete: every message the Maildir holds is DELEted, and QUIT
  makes the server remove them (the UPDATE state, RFC 1939 §6); or
* download-and-keep: nothing is deleted, and the UIDLs the Maildir remembers
  make the next run fetch only new mail.
"""

from __future__ import annotations

import poplib
from dataclasses import dataclass

from mailstack.errors import MailstackError
from mailstack.ua.maildir import Maildir

__all__ = ["Downloaded", "download", "login"]


@dataclass(frozen=True, slots=True)
class Downloaded:
    fetched: int
    deleted: int
    left: int  # messages left on the server


def login(client: poplib.POP3, user: str, password: str) -> None:
    """USER/PASS (RFC 1939 §7); a refusal is the user's error, said in one line."""
    try:
        client.user(user)
        client.pass_(password)
    except poplib.error_proto as exc:
        text = exc.args[0].decode("utf-8", "replace") if exc.args else "-ERR"
        raise MailstackError(f"the POP3 server refused the login of {user}: {text}") from None


def _listing(client: poplib.POP3) -> list[tuple[int, str]]:
    try:
        _, lines, _ = client.uidl()
    except poplib.error_proto:
        raise MailstackError("the POP3 server has no UIDL, which a Maildir needs") from None
    found = []
    for line in lines:
        number, _, uidl = line.decode("ascii", "replace").partition(" ")
        found.append((int(number), uidl.strip()))
    return found


def download(client: poplib.POP3, maildir: Maildir, account: str, *, delete: bool) -> Downloaded:
    known = maildir.uidls(account)
    listing = _listing(client)
    fetched = deleted = 0
    for number, uidl in listing:
        if uidl not in known:
            _, lines, _ = client.retr(number)
            # poplib gives the lines without their CRLF, dot-unstuffed.
            key = maildir.deliver(b"\r\n".join(lines) + b"\r\n")
            # The message is on disk before the server hears DELE for it.
            maildir.remember(account, uidl, key)
            known[uidl] = key
            fetched += 1
        if delete:
            client.dele(number)
            deleted += 1
    client.quit()
    still = {uidl for _, uidl in listing} if not delete else set()
    maildir.keep_only(account, still)
    return Downloaded(fetched, deleted, len(listing) - deleted)
