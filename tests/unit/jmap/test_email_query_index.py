"""Email/query's text conditions narrowed by the store's full-text index:
the same results as the scan (the index switched off), and the parse read
only of the emails the index leaves."""

from __future__ import annotations

import random
from typing import Any

from conftest import Jmap
from search_corpus import message

FILTERS: list[dict[str, Any]] = [
    {"text": "lunch"}, {"text": "LUNCH report"}, {"text": '"quarterly report"'},
    {"text": "crêpes ab"}, {"text": "strasse"}, {"text": "日本語"}, {"body": "zebra"},
    {"body": "ﬁle"}, {"body": "résumé"}, {"subject": "naïve"}, {"from": "alice zebra"},
    {"to": "hamburger"}, {"cc": "lunch"}, {"header": ["Subject", "ray"]},
    {"header": ["Message-ID", "7@crepes"]}, {"header": ["X-None"]},
    {"operator": "OR", "conditions": [{"text": "zebra"}, {"body": "ωmega"}]},
    {"operator": "NOT", "conditions": [{"text": "lunch"}]},
    {"operator": "AND", "conditions": [{"text": "lunch"}, {"hasKeyword": "$seen"}]},
    {"text": "not-there-at-all"}, {"text": "a"},
]  # fmt: skip


async def _corpus(jmap: Jmap) -> None:
    rng = random.Random(8621)
    for n in range(30):
        await jmap.add(message(rng, n), mailbox="INBOX" if n % 4 else "Trash",
                       flags=("\\Seen",) if n % 3 else ())  # fmt: skip


async def _ids(jmap: Jmap, spec: dict[str, Any]) -> list[str]:
    return list((await jmap.call("Email/query", filter=spec))["ids"])


async def test_text_conditions_with_the_index_equal_the_scan(jmap: Jmap, monkeypatch) -> None:
    await _corpus(jmap)
    indexed = [await _ids(jmap, f) for f in FILTERS]

    async def no_index(mailbox_id: int, field: str, needle: str) -> None:
        return None

    monkeypatch.setattr(jmap.store, "search_text", no_index)
    jmap.node.jmap_shared.email_queries.clear()  # results are kept by state
    scanned = [await _ids(jmap, f) for f in FILTERS]
    assert indexed == scanned
    sizes = sorted(len(found) for found in scanned)
    assert sizes[0] == 0 and sizes[-1] >= 20 and any(0 < n < 5 for n in sizes)


async def test_only_what_the_index_leaves_is_read(jmap: Jmap, monkeypatch) -> None:
    await _corpus(jmap)
    asked: list[int] = []
    messages_parsed = jmap.store.messages_parsed

    async def counting(mailbox_id: int, uids: list[int]) -> Any:
        asked.extend(uids)
        return await messages_parsed(mailbox_id, uids)

    monkeypatch.setattr(jmap.store, "messages_parsed", counting)
    found = await _ids(jmap, {"body": "zebra", "text": "lunch"})
    assert len(asked) < 30 and len(found) <= len(asked)
