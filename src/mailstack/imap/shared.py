"""What the imap and imaps listeners of one node share, held by the node
(`Node.imap_shared`): the per-user session counts, so ``imap_sessions_per_user``
holds across both listeners, and the caches of parse results and message
metadata and SORT/THREAD keys (RFC 3501 §2.3.1.1: a message's bytes never change, so its parse
serves every session)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailstack.imap.cache import MetaInterner, ParsedCache, SortKeyCache

__all__ = ["ImapShared"]


@dataclass
class ImapShared:
    user_sessions: dict[int, int] = field(default_factory=dict)  # account id -> sessions
    parsed: ParsedCache = field(default_factory=ParsedCache)
    metas: MetaInterner = field(default_factory=MetaInterner)
    sort_keys: SortKeyCache = field(default_factory=SortKeyCache)
