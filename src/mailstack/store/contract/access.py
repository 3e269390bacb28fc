"""Who may reach what: bearer tokens (HTTP, RFC 6750) and mailbox access
control lists (IMAP ACL, RFC 4314; JMAP sharing, RFC 9670 / RFC 8621 §2).

A token's secret is never kept: the store keeps its digest (SHA-256 of the
secret, computed by the caller) and finds the token by it. ACL identifiers
are account addresses (normalized) or ``anyone``; rights are RFC 4314
letters (``lrswipkxtecda``), kept sorted; setting empty rights removes the
entry. The owner's own rights are implicit and never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mailstack.store.contract.directory import Account
from mailstack.store.contract.messages import Mailbox

ALL_RIGHTS = "acdeiklprstwx"


@dataclass(frozen=True, slots=True)
class Token:
    id: int
    account_id: int
    name: str
    created: float  # Unix time
    last_used: float | None
    # token_find only: the time of use noted before this one (None if never),
    # so that a caller can tell how long the token lay idle.
    used_before: float | None = None


@dataclass(frozen=True, slots=True)
class SharedMailbox:
    """A mailbox of another account that an identifier may reach."""

    mailbox: Mailbox
    owner: Account
    rights: str


class AccessStore(Protocol):
    # Bearer tokens
    async def token_add(self, account_id: int, name: str, digest: bytes) -> Token: ...
    async def token_find(self, digest: bytes) -> tuple[Token, Account] | None:
        """The token with this digest and its account; notes the time of use
        (at most once a minute per token, so a busy client costs no writes)."""
        ...

    async def token_list(self, account_id: int | None = None) -> list[Token]: ...
    async def token_remove(self, token_id: int) -> bool: ...

    # Access control lists
    async def acl_set(self, mailbox_id: int, identifier: str, rights: str) -> None:
        """Replace identifier's rights on the mailbox; "" removes the entry.
        The change counts as a change of the mailbox (its MODSEQ)."""
        ...

    async def acl_get(self, mailbox_id: int) -> dict[str, str]:
        """identifier -> rights, the owner not included."""
        ...

    async def acl_shared_with(self, address: str) -> list[SharedMailbox]:
        """Mailboxes of other accounts this address (or ``anyone``) has any
        right on, with the rights: its own entry, else ``anyone``'s."""
        ...
