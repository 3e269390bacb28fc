"""The maildrop locks of one node, held by the node (`Node.maildrops`).

RFC 1939 §4: a session that logs in takes an exclusive-access lock on the
maildrop; a second session is refused (``-ERR [IN-USE]``, RFC 2449 §8.1.2).
The lock lives in this process's memory, shared by the ``pop3`` and
``pop3s`` listeners, so it goes with the session (QUIT, disconnect,
autologout) and nothing of it survives a crash. The time of each account's
latest login serves LOGIN-DELAY (RFC 2449 §6.5, §8.1.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Maildrops"]


@dataclass
class Maildrops:
    locked: set[int] = field(default_factory=set)  # account ids
    last_login: dict[int, float] = field(default_factory=dict)  # account id -> monotonic time
