"""Store contract: per-account JSON records with changes (contract.records)."""

from __future__ import annotations

import pytest

from mailstack.errors import NotFound


async def bob(store):
    await store.domain_add("hamburger.edu")
    return await store.account_add("bob@hamburger.edu", "pw")


async def test_records_create_update_destroy_and_read(store):
    account = await bob(store)
    other = await store.account_add("alice@hamburger.edu", "pw")
    assert await store.record_state(account.id, "Identity") == 0
    first = await store.record_create(account.id, "Identity", '{"name": "Bob"}')
    second = await store.record_create(account.id, "Identity", '{"name": "B"}')
    vacation = await store.record_create(account.id, "VacationResponse", "{}")
    assert first.id != second.id != vacation.id
    assert first.modseq < second.modseq <= await store.account_state(account.id)
    assert [r.id for r in await store.records(account.id, "Identity")] == [first.id, second.id]
    assert [r.data for r in await store.records(account.id, "Identity", [second.id, 999])] == [
        '{"name": "B"}'
    ]
    assert await store.records(other.id, "Identity") == []
    assert await store.records(account.id, "Identity", [vacation.id]) == []

    updated = await store.record_update(account.id, "Identity", first.id, '{"name": "Robert"}')
    assert updated.modseq > vacation.modseq and updated.data == '{"name": "Robert"}'
    with pytest.raises(NotFound):
        await store.record_update(other.id, "Identity", first.id, "{}")
    with pytest.raises(NotFound):
        await store.record_update(account.id, "VacationResponse", first.id, "{}")
    assert await store.record_state(account.id, "Identity") == updated.modseq
    assert await store.record_destroy(account.id, "Identity", second.id)
    assert not await store.record_destroy(account.id, "Identity", second.id)
    with pytest.raises(NotFound):
        await store.record_update(account.id, "Identity", second.id, "{}")
    assert [r.id for r in await store.records(account.id, "Identity")] == [first.id]
    assert await store.record_state(account.id, "Identity") > updated.modseq


async def test_record_changes(store):
    account = await bob(store)
    kept = await store.record_create(account.id, "Identity", "{}")
    doomed = await store.record_create(account.id, "Identity", "{}")
    since = await store.record_state(account.id, "Identity")
    await store.record_update(account.id, "Identity", kept.id, '{"a": 1}')
    await store.record_destroy(account.id, "Identity", doomed.id)
    new = await store.record_create(account.id, "Identity", "{}")
    await store.record_update(account.id, "Identity", new.id, '{"b": 2}')
    brief = await store.record_create(account.id, "Identity", "{}")
    await store.record_destroy(account.id, "Identity", brief.id)
    await store.record_create(account.id, "EmailSubmission", "{}")  # another kind
    changes = await store.record_changes(account.id, "Identity", since)
    assert (changes.created, changes.updated, changes.destroyed) == ([new.id], [kept.id],
                                                                     [doomed.id])
    assert changes.state == await store.record_state(account.id, "Identity")
    assert not changes.has_more
    page = await store.record_changes(account.id, "Identity", since, limit=1)
    assert page.has_more and page.updated == [kept.id]
    rest = await store.record_changes(account.id, "Identity", page.state, limit=5)
    assert rest.destroyed == [doomed.id] and rest.created == [new.id] and not rest.has_more
    future = await store.account_state(account.id) + 1
    assert await store.record_changes(account.id, "Identity", future) is None
