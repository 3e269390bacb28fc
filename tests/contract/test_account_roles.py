"""Store contract: the admin role, disabled accounts and quotas set later
(``account_set``), seen by every way the store hands out an Account."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from mailstack.errors import NotFound


async def bob(store):
    await store.domain_add("hamburger.edu")
    return await store.account_add("bob@hamburger.edu", "hungry")


async def test_a_new_account_is_neither_admin_nor_disabled(store):
    account = await bob(store)
    assert not account.admin and not account.disabled
    got = await store.account_get("bob@hamburger.edu")
    assert not got.admin and not got.disabled


async def test_account_set_changes_only_what_is_given(store):
    await bob(store)
    changed = await store.account_set("BOB@hamburger.edu", admin=True)
    assert changed.admin and not changed.disabled and changed.quota == 0
    changed = await store.account_set("bob@hamburger.edu", quota=5000)
    assert changed.admin and changed.quota == 5000
    changed = await store.account_set("bob@hamburger.edu", disabled=True, admin=False)
    assert changed.disabled and not changed.admin and changed.quota == 5000
    unchanged = await store.account_set("bob@hamburger.edu")
    assert unchanged == changed
    with pytest.raises(NotFound):
        await store.account_set("nobody@hamburger.edu", admin=True)


async def test_every_reader_sees_the_roles(store, other_store):
    account = await bob(store)
    await store.account_add("carol@hamburger.edu", "pw")
    digest = hashlib.sha256(b"secret").digest()
    await store.token_add(account.id, "t", digest)
    # Read once, so a backend that keeps recipient answers must forget them.
    assert not (await other_store.resolve_local("bob@hamburger.edu"))[0].disabled
    await store.account_set("bob@hamburger.edu", admin=True, disabled=True)
    got = await other_store.account_get("bob@hamburger.edu")
    assert got.admin and got.disabled
    listed = {a.address: a for a in await other_store.account_list("hamburger.edu")}
    assert listed["bob@hamburger.edu"].disabled and not listed["carol@hamburger.edu"].disabled
    credentials, _ = await other_store.account_credentials("bob@hamburger.edu")
    assert credentials.admin and credentials.disabled
    _, by_token = await other_store.token_find(digest)
    assert by_token.admin and by_token.disabled
    (resolved,) = await other_store.resolve_local("bob@hamburger.edu")
    assert resolved.disabled


async def test_a_disabled_account_still_receives_mail(store):
    await bob(store)
    await store.account_set("bob@hamburger.edu", disabled=True)
    (target,) = await store.resolve_recipient("bob@hamburger.edu")
    assert target.address == "bob@hamburger.edu"


async def test_the_directory_version_moves_when_an_account_is_disabled_or_removed(
    store, other_store
):
    """What ends a disabled account's sessions on every node (common/logins.py)."""
    await bob(store)
    seen = [await other_store.directory_version()]
    await store.account_set("bob@hamburger.edu", quota=10)
    await store.account_set("bob@hamburger.edu", disabled=True)
    seen.append(await other_store.directory_version())
    await store.account_remove("bob@hamburger.edu")
    for _ in range(50):  # another node hears it by NOTIFY: allow it a moment
        version = await other_store.directory_version()
        if version != seen[-1]:
            break
        await asyncio.sleep(0.05)
    seen.append(version)
    assert None not in seen
    assert seen[0] != seen[1] != seen[2]
