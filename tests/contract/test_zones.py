"""The zone part of the store contract (every backend must pass)."""

from __future__ import annotations

import pytest

from mailstack.errors import AlreadyExists, NotFound, StoreError


async def make_zone(store):
    return await store.zone_create(
        "Example.ORG", nameservers=["ns1.example.org."], hostmaster="hostmaster@example.org"
    )


async def test_create_gives_soa_and_ns(store):
    zone = await make_zone(store)
    assert zone.origin == "example.org."
    assert zone.serial == 1
    assert [r.rdtype for r in zone.records] == ["SOA", "NS"]
    assert zone.records[0].rdata.split()[:3] == ["ns1.example.org.", "hostmaster.example.org.", "1"]
    assert await store.zone_list() == [("example.org.", 1)]


async def test_create_twice_is_refused(store):
    await make_zone(store)
    with pytest.raises(AlreadyExists):
        await make_zone(store)


async def test_record_add_bumps_serial_and_is_visible(store):
    await make_zone(store)
    serial = await store.record_add("example.org", "@", "MX", "10 mail", ttl=600)
    assert serial == 2
    zone = await store.zone_get("example.org.")
    assert zone.serial == 2
    assert zone.records[0].rdata.split()[2] == "2"
    mx = [r for r in zone.records if r.rdtype == "MX"]
    assert mx and mx[0].rdata == "10 mail.example.org." and mx[0].ttl == 600


async def test_record_without_ttl_joins_its_rrset(store):
    await make_zone(store)
    await store.record_add("example.org", "www", "A", "192.0.2.1", ttl=120)
    await store.record_add("example.org", "www", "A", "192.0.2.2")
    zone = await store.zone_get("example.org")
    assert {r.ttl for r in zone.records if r.rdtype == "A"} == {120}


async def test_duplicate_record_is_refused(store):
    await make_zone(store)
    await store.record_add("example.org", "www", "A", "192.0.2.1")
    with pytest.raises(AlreadyExists):
        await store.record_add("example.org", "www.example.org.", "A", "192.0.2.1")


async def test_bad_records_are_refused(store):
    await make_zone(store)
    with pytest.raises(StoreError):
        await store.record_add("example.org", "www", "A", "not-an-address")
    with pytest.raises(StoreError):
        await store.record_add("example.org", "www.elsewhere.net.", "A", "192.0.2.1")
    with pytest.raises(StoreError):
        await store.record_add("example.org", "@", "SOA", "a b 1 2 3 4 5")


async def test_record_remove_one_and_all(store):
    await make_zone(store)
    await store.record_add("example.org", "www", "A", "192.0.2.1")
    await store.record_add("example.org", "www", "A", "192.0.2.2")
    await store.record_remove("example.org", "www", "A", "192.0.2.1")
    zone = await store.zone_get("example.org")
    assert [r.rdata for r in zone.records if r.rdtype == "A"] == ["192.0.2.2"]
    await store.record_remove("example.org", "www", "A")
    zone = await store.zone_get("example.org")
    assert not [r for r in zone.records if r.rdtype == "A"]
    assert zone.serial == 5
    with pytest.raises(NotFound):
        await store.record_remove("example.org", "www", "A")


async def test_last_apex_ns_stays(store):
    await make_zone(store)
    with pytest.raises(StoreError):
        await store.record_remove("example.org", "@", "NS")


async def test_journal_records_each_change(store):
    await make_zone(store)
    await store.record_add("example.org", "www", "A", "192.0.2.1")
    await store.record_remove("example.org", "www", "A", "192.0.2.1")
    journal = await store.zone_journal("example.org")
    assert [(j.old_serial, j.new_serial) for j in journal] == [(1, 2), (2, 3)]
    assert journal[0].added[0].rdata == "192.0.2.1" and not journal[0].deleted
    assert journal[1].deleted[0].name == "www.example.org."


async def test_zone_remove(store):
    await make_zone(store)
    await store.zone_remove("example.org")
    assert await store.zone_list() == []
    with pytest.raises(NotFound):
        await store.zone_get("example.org")


async def test_changes_survive_reopen(backend):
    first = await backend.open()
    await make_zone(first)
    await first.record_add("example.org", "mail", "A", "192.0.2.25")
    await first.close()
    second = await backend.open()
    try:
        zone = await second.zone_get("example.org")
        assert any(r.rdata == "192.0.2.25" for r in zone.records)
        assert await second.zone_serials() == {"example.org.": 2}
    finally:
        await second.close()


async def test_zone_history_is_kept_in_order_and_restarts_when_broken(store):
    from mailstack.store import JournalEntry, ZoneRecord

    a = ZoneRecord("www.files.test.", "A", 60, "192.0.2.1")
    b = ZoneRecord("www.files.test.", "A", 60, "192.0.2.2")
    await store.zone_history_add("Files.Test", JournalEntry(1, 2, (), (a,)))
    await store.zone_history_add("files.test.", JournalEntry(2, 3, (a,), (b,)))
    assert [(e.old_serial, e.new_serial) for e in await store.zone_history("files.test.")] == [
        (1, 2),
        (2, 3),
    ]
    assert (await store.zone_history("files.test."))[1].deleted == (a,)
    # A change that does not follow the last one: the zone was replaced.
    await store.zone_history_add("files.test.", JournalEntry(7, 8, (), (a,)))
    assert [(e.old_serial, e.new_serial) for e in await store.zone_history("files.test.")] == [
        (7, 8)
    ]
    assert await store.zone_history("other.test.") == []


async def test_zone_history_is_bounded(store):
    from mailstack.store import JournalEntry

    # The contract keeps the newest 200 changes (JOURNAL_LENGTH).
    for serial in range(1, 206):
        await store.zone_history_add("files.test.", JournalEntry(serial, serial + 1, (), ()))
    history = await store.zone_history("files.test.")
    assert len(history) == 200 and history[0].old_serial == 6 and history[-1].new_serial == 206


async def test_notify_is_claimed_once_per_serial(store):
    assert await store.zone_notify_claim("claim.test", 5) is True
    assert await store.zone_notify_claim("CLAIM.test.", 5) is False
    assert await store.zone_notify_claim("claim.test", 6) is True
    assert await store.zone_notify_claim("other.test", 6) is True
    assert await store.zone_notify_claim("claim.test", 6) is False
