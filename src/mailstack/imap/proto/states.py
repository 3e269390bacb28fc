"""The IMAP connection states and which commands each allows (RFC 3501 §3, §6).

One table, checked in one place (session.py) before a command runs.
"""

from __future__ import annotations

import enum

__all__ = ["State", "ALLOWED", "allowed"]


class State(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


_ANY = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
_NOT_AUTH = frozenset({State.NOT_AUTHENTICATED})
_AUTH = frozenset({State.AUTHENTICATED, State.SELECTED})
_SELECTED = frozenset({State.SELECTED})

ALLOWED: dict[str, frozenset[State]] = {
    # RFC 3501 §6.1: any state
    "CAPABILITY": _ANY,
    "NOOP": _ANY,
    "LOGOUT": _ANY,
    "ID": _ANY,  # RFC 2971 §3.1
    # RFC 3501 §6.2: not authenticated
    "STARTTLS": _NOT_AUTH,
    "AUTHENTICATE": _NOT_AUTH,
    "LOGIN": _NOT_AUTH,
    # RFC 3501 §6.3: authenticated (and so also selected)
    "SELECT": _AUTH,
    "EXAMINE": _AUTH,
    "CREATE": _AUTH,
    "DELETE": _AUTH,
    "RENAME": _AUTH,
    "SUBSCRIBE": _AUTH,
    "UNSUBSCRIBE": _AUTH,
    "LIST": _AUTH,
    "LSUB": _AUTH,
    "STATUS": _AUTH,
    "APPEND": _AUTH,
    "NAMESPACE": _AUTH,  # RFC 2342 §5
    "ENABLE": frozenset({State.AUTHENTICATED}),  # RFC 5161 §3.1: before SELECT
    "IDLE": _AUTH,  # RFC 2177 §3
    "GETQUOTA": _AUTH,  # RFC 9208 §4.1
    "GETQUOTAROOT": _AUTH,
    "SETACL": _AUTH,  # RFC 4314 §7: command-auth
    "DELETEACL": _AUTH,
    "GETACL": _AUTH,
    "LISTRIGHTS": _AUTH,
    "MYRIGHTS": _AUTH,
    "COMPRESS": _AUTH,  # RFC 4978 §3
    "NOTIFY": _AUTH,  # RFC 5465 §3
    "GENURLAUTH": _AUTH,  # RFC 4467 §6
    "RESETKEY": _AUTH,
    "URLFETCH": _AUTH,
    "GETMETADATA": _AUTH,  # RFC 5464 §4
    "SETMETADATA": _AUTH,
    # RFC 3501 §6.4: selected
    "CHECK": _SELECTED,
    "CLOSE": _SELECTED,
    "UNSELECT": _SELECTED,  # RFC 3691
    "EXPUNGE": _SELECTED,
    "SEARCH": _SELECTED,
    "FETCH": _SELECTED,
    "STORE": _SELECTED,
    "COPY": _SELECTED,
    "MOVE": _SELECTED,  # RFC 6851
    "SORT": _SELECTED,  # RFC 5256
    "THREAD": _SELECTED,
    "CANCELUPDATE": _SELECTED,  # RFC 5267 §4.3.5
    "UIDBATCHES": _SELECTED,  # RFC 10022: in the selected state
}


def allowed(command: str, state: State) -> bool:
    return state in ALLOWED.get(command, frozenset())
