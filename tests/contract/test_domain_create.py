"""``domain_create`` (all or nothing), the postmaster rule and the rule that an
address is an account or an alias source, never both (every backend must pass)."""

from __future__ import annotations

import pytest

from mailstack.errors import AlreadyExists, StoreError
from mailstack.store import DkimKey, NewDomain, ZoneAddition, make_record


def key(selector: str, domain: str = "crepes.fr") -> DkimKey:
    return DkimKey(domain, selector, "ed25519-sha256", b"-----PRIVATE", "cHVi")


def zone(origin: str, *records: tuple[str, str, str]) -> ZoneAddition:
    return ZoneAddition(
        origin,
        [make_record(origin, name, rdtype, value, 3600) for name, rdtype, value in records],
        nameservers=["mail.crepes.fr."],
        hostmaster="hostmaster@crepes.fr",
    )


MAIL = zone("crepes.fr", ("@", "MX", "10 mail.crepes.fr."), ("mail", "A", "192.0.2.1"))


async def test_domain_keys_zone_and_postmaster_in_one(store):
    await store.domain_add("hamburger.edu")
    await store.account_add("bob@hamburger.edu", "hungry-bob")
    new = NewDomain("Crepes.FR", [key("s1")], [MAIL], postmaster="bob@hamburger.edu")
    serials = await store.domain_create(new)
    assert serials == {"crepes.fr": 2}
    assert await store.is_local_domain("crepes.fr")
    assert [k.selector for k in await store.dkim_keys("crepes.fr")] == ["s1"]
    zone_records = (await store.zone_get("crepes.fr")).records
    assert {r.rdtype for r in zone_records} == {"SOA", "NS", "MX", "A"}
    [account] = await store.resolve_recipient("postmaster@crepes.fr")
    assert account.address == "bob@hamburger.edu"


async def test_an_existing_zone_keeps_its_records_and_gains_the_missing(store):
    await store.zone_create("crepes.fr", nameservers=["ns.crepes.fr."], hostmaster="h@crepes.fr")
    await store.record_add("crepes.fr", "mail", "A", "192.0.2.1")
    serials = await store.domain_create(NewDomain("crepes.fr", zones=[MAIL]))
    assert serials == {"crepes.fr": 3}  # one change: the MX only
    names = [(r.name, r.rdtype) for r in (await store.zone_get("crepes.fr")).records]
    assert names.count(("mail.crepes.fr.", "A")) == 1 and ("crepes.fr.", "MX") in names


@pytest.mark.parametrize(
    "broken",
    [
        # The postmaster target is not local: the alias fails last.
        NewDomain("crepes.fr", [key("s1")], [MAIL], postmaster="bob@elsewhere.example"),
        # A key of another domain.
        NewDomain("crepes.fr", [key("s1", domain="other.example")], [MAIL]),
        # A record outside its zone.
        NewDomain(
            "crepes.fr",
            [key("s1")],
            [
                MAIL,
                ZoneAddition(
                    "crepes.fr",
                    [make_record("x.org", "@", "A", "192.0.2.9", 60)],
                    ["ns.crepes.fr."],
                    "h@crepes.fr",
                ),
            ],
        ),  # fmt: skip
    ],
)
async def test_any_error_leaves_nothing(store, broken):
    with pytest.raises(StoreError):
        await store.domain_create(broken)
    assert not await store.is_local_domain("crepes.fr")
    assert await store.dkim_keys("crepes.fr") == []
    assert await store.zone_list() == []
    assert await store.alias_list() == []


async def test_an_existing_domain_is_refused_whole(store):
    await store.domain_add("crepes.fr")
    with pytest.raises(AlreadyExists):
        await store.domain_create(NewDomain("crepes.fr", [key("s1")], [MAIL]))
    assert await store.dkim_keys("crepes.fr") == [] and await store.zone_list() == []


async def test_first_account_becomes_postmaster_when_asked(store):
    await store.domain_create(NewDomain("crepes.fr"))
    assert await store.resolve_recipient("postmaster@crepes.fr") == []
    alice = await store.account_add("alice@crepes.fr", "password1", postmaster=True)
    await store.account_add("bob@crepes.fr", "password2", postmaster=True)
    assert await store.resolve_recipient("Postmaster@crepes.fr") == [alice]
    # Without the flag nothing is added.
    await store.domain_add("hamburger.edu")
    await store.account_add("carol@hamburger.edu", "password3")
    assert await store.resolve_recipient("postmaster@hamburger.edu") == []
    # An account named postmaster is its own postmaster: no alias.
    await store.domain_add("frites.be")
    await store.account_add("postmaster@frites.be", "password4", postmaster=True)
    assert [a.source for a in await store.alias_list()] == ["postmaster@crepes.fr"]


async def test_an_address_is_an_account_or_an_alias_source(store):
    await store.domain_add("crepes.fr")
    await store.account_add("alice@crepes.fr", "password1")
    await store.account_add("bob@crepes.fr", "password2")
    with pytest.raises(StoreError, match="is an account"):
        await store.alias_add("Alice@crepes.fr", "bob@crepes.fr")
    await store.alias_add("chef@crepes.fr", "bob@crepes.fr")
    with pytest.raises(StoreError, match="is an alias"):
        await store.account_add("chef@crepes.fr", "password3")
    assert [a.address for a in await store.account_list()] == ["alice@crepes.fr", "bob@crepes.fr"]
