"""The MX plan with a fake resolver: preference order, ties shuffled, implicit and null MX."""

from __future__ import annotations

import random

import dns.name
import dns.rcode
import pytest

from mailstack.errors import DnsError
from mailstack.queue.routing import Host, RouteError, order, route


class FakeResolver:
    def __init__(self, mx=None, addresses=None, fail=None):
        self.mx_records = mx or {}
        self.host_addresses = addresses or {}
        self.fail = fail or {}
        self.asked: list[str] = []

    async def mx(self, domain):
        self.asked.append(domain)
        if domain in self.fail:
            raise DnsError(self.fail[domain])
        if domain not in self.mx_records:
            return [(0, dns.name.from_text(domain))]  # the implicit MX
        return [(p, dns.name.from_text(h)) for p, h in self.mx_records[domain]]

    async def addresses(self, host):
        if host in self.fail:
            raise DnsError(self.fail[host])
        return self.host_addresses.get(host, [])


async def test_hosts_in_preference_order_with_their_addresses():
    resolver = FakeResolver(
        {"hamburger.edu": [(20, "backup.hamburger.edu"), (10, "mx.hamburger.edu")]},
        {"mx.hamburger.edu": ["127.0.0.3"], "backup.hamburger.edu": ["127.0.0.5", "::1"]},
    )
    hosts = await route("hamburger.edu", resolver)
    assert hosts == [
        Host("mx.hamburger.edu", ("127.0.0.3",)),
        Host("backup.hamburger.edu", ("127.0.0.5", "::1")),
    ]


def test_equal_preferences_come_in_every_order():
    records = [(10, "a."), (10, "b."), (10, "c."), (5, "first.")]
    seen = {tuple(order(records, random.Random(seed))) for seed in range(60)}
    assert all(names[0] == "first" for names in seen)
    assert len(seen) == 6  # 3! orders of the tied hosts


async def test_implicit_mx_is_the_domain_itself():
    resolver = FakeResolver(addresses={"crepes.fr": ["127.0.0.2"]})
    assert await route("crepes.fr", resolver) == [Host("crepes.fr", ("127.0.0.2",))]


async def test_null_mx_fails_permanently():
    resolver = FakeResolver({"nomail.example": []})
    resolver.mx_records["nomail.example"] = []
    with pytest.raises(RouteError) as caught:
        await route("nomail.example", resolver)
    assert caught.value.outcome.kind == "permanent"
    assert caught.value.outcome.status == "5.1.10"


async def test_nxdomain_is_permanent_and_servfail_temporary():
    resolver = FakeResolver(fail={"gone.example": dns.rcode.NXDOMAIN, "flaky.example": 2})
    with pytest.raises(RouteError) as gone:
        await route("gone.example", resolver)
    assert (gone.value.outcome.kind, gone.value.outcome.status) == ("permanent", "5.1.2")
    with pytest.raises(RouteError) as flaky:
        await route("flaky.example", resolver)
    assert (flaky.value.outcome.kind, flaky.value.outcome.status) == ("temporary", "4.4.3")


async def test_hosts_without_addresses_are_skipped_and_none_left_is_temporary():
    resolver = FakeResolver(
        {"x.example": [(10, "dead.x.example"), (20, "live.x.example")]},
        {"live.x.example": ["127.0.0.9"]},
    )
    assert await route("x.example", resolver) == [Host("live.x.example", ("127.0.0.9",))]
    resolver.host_addresses.clear()
    with pytest.raises(RouteError) as caught:
        await route("x.example", resolver)
    assert (caught.value.outcome.kind, caught.value.outcome.status) == ("temporary", "4.4.4")


async def test_a_backup_mx_sends_only_to_better_ones():
    resolver = FakeResolver(
        {"x.example": [(10, "primary.x.example"), (20, "us.example"), (30, "worse.x.example")]},
        {"primary.x.example": ["127.0.0.9"], "worse.x.example": ["127.0.0.8"]},
    )
    hosts = await route("x.example", resolver, ourselves=frozenset({"us.example"}))
    assert [h.name for h in hosts] == ["primary.x.example"]


async def test_being_the_best_mx_of_a_foreign_domain_is_a_loop():
    resolver = FakeResolver({"x.example": [(10, "us.example"), (20, "b.x.example")]})
    with pytest.raises(RouteError) as caught:
        await route("x.example", resolver, ourselves=frozenset({"us.example"}))
    assert (caught.value.outcome.kind, caught.value.outcome.status) == ("permanent", "5.4.6")
