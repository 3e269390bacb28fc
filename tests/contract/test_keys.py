"""The DKIM key part of the store contract (every backend must pass)."""

from __future__ import annotations

import pytest

from mailstack.errors import AlreadyExists, NotFound, StoreError
from mailstack.store import DkimKey


def key(selector: str, algorithm: str = "rsa-sha256", domain: str = "Crepes.FR.") -> DkimKey:
    return DkimKey(domain, selector, algorithm, b"-----PRIVATE " + selector.encode(), "cHVi")


async def test_add_and_read_back(store):
    stored = await store.dkim_key_add(key("Sel1"))
    assert stored.domain == "crepes.fr" and stored.selector == "sel1" and stored.created > 0
    assert await store.dkim_keys("crepes.fr") == [stored]
    assert await store.dkim_active_keys("CREPES.fr") == [stored]
    assert await store.dkim_keys("hamburger.edu") == []


async def test_selector_is_unique_per_domain(store):
    await store.dkim_key_add(key("s1"))
    with pytest.raises(AlreadyExists):
        await store.dkim_key_add(key("S1"))
    await store.dkim_key_add(key("s1", domain="hamburger.edu"))
    assert len(await store.dkim_keys()) == 2


async def test_unknown_algorithm_refused(store):
    with pytest.raises(StoreError):
        await store.dkim_key_add(key("s1", algorithm="rsa-sha1"))


async def test_rotate_retires_old_keys_atomically(store):
    await store.dkim_key_add(key("old-rsa"))
    await store.dkim_key_add(key("old-ed", "ed25519-sha256"))
    await store.dkim_rotate("crepes.fr", [key("new-rsa"), key("new-ed", "ed25519-sha256")])
    active = await store.dkim_active_keys("crepes.fr")
    assert sorted(k.selector for k in active) == ["new-ed", "new-rsa"]
    every = await store.dkim_keys("crepes.fr")
    assert {k.selector: k.active for k in every} == {
        "old-rsa": False,
        "old-ed": False,
        "new-rsa": True,
        "new-ed": True,
    }
    assert [k.active for k in every] == [True, True, False, False]


async def test_failed_rotation_changes_nothing(store):
    await store.dkim_key_add(key("a"))
    with pytest.raises(AlreadyExists):
        await store.dkim_rotate("crepes.fr", [key("b"), key("a")])
    assert [(k.selector, k.active) for k in await store.dkim_keys("crepes.fr")] == [("a", True)]


async def test_rotation_of_another_domain_refused(store):
    with pytest.raises(StoreError):
        await store.dkim_rotate("crepes.fr", [key("x", domain="hamburger.edu")])


async def test_remove(store):
    await store.dkim_key_add(key("a"))
    await store.dkim_key_remove("crepes.fr", "A")
    assert await store.dkim_keys() == []
    with pytest.raises(NotFound):
        await store.dkim_key_remove("crepes.fr", "a")


async def test_keys_survive_reopen(backend):
    first = await backend.open()
    await first.dkim_key_add(key("durable"))
    await first.close()
    second = await backend.open()
    try:
        assert [k.selector for k in await second.dkim_keys()] == ["durable"]
    finally:
        await second.close()
