"""What both backends do alike for ``contract.access``: ACL identifiers and
rights as they are kept, and which entry gives an account its rights on a
shared mailbox."""

from __future__ import annotations

from collections.abc import Iterable

from mailstack.errors import StoreError
from mailstack.store.contract.access import ALL_RIGHTS, SharedMailbox
from mailstack.store.contract.directory import Account, normalize_address
from mailstack.store.contract.messages import Mailbox

ANYONE = "anyone"
# Seconds between two notes of a token's use (token_find).
TOKEN_TOUCH = 60.0


def acl_identifier(identifier: str) -> str:
    """RFC 4314 §2: ``anyone``, or an account's address (normalized)."""
    if identifier.lower() == ANYONE:
        return ANYONE
    address = normalize_address(identifier)
    if not address:
        raise StoreError("an ACL identifier is an address or 'anyone'")
    return address


def acl_rights(rights: str) -> str:
    """The rights as kept: RFC 4314 letters, each once, sorted."""
    unknown = set(rights) - set(ALL_RIGHTS)
    if unknown:
        raise StoreError(f"unknown rights {''.join(sorted(unknown))!r} (RFC 4314: {ALL_RIGHTS})")
    return "".join(sorted(set(rights)))


def shared_rights(
    who: str, entries: Iterable[tuple[Mailbox, Account, str, str]]
) -> list[SharedMailbox]:
    """One SharedMailbox per mailbox from (mailbox, owner, identifier,
    rights) entries: ``who``'s own entry wins over ``anyone``'s."""
    chosen: dict[int, SharedMailbox] = {}
    for mailbox, owner, identifier, rights in entries:
        if mailbox.id in chosen and identifier == ANYONE:
            continue
        chosen[mailbox.id] = SharedMailbox(mailbox, owner, rights)
    return list(chosen.values())
