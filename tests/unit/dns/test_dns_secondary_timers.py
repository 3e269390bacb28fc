"""A secondary zone's SOA timers on a fake clock (RFC 1034 §4.3.5), and what
an expired zone answers."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode

from mailstack.dns.authority import Authority
from mailstack.dns.catalog import Acl, Catalog
from mailstack.dns.proto import QueryHandler
from mailstack.dns.service import SECONDARY_RETRY, RefreshTimer
from mailstack.dns.transfer import transfer_replies
from mailstack.dns.zone import Zone

# REFRESH 7200, RETRY 900, EXPIRE 3000.
ZONE = Zone.from_text(
    "$ORIGIN s.test.\n@ 60 SOA ns hostmaster 1 7200 900 3000 60\n@ 60 NS ns\nns 60 A 192.0.2.1\n"
)
ORIGIN = dns.name.from_text("s.test.")


def test_after_a_refresh_the_next_check_is_refresh_seconds_on():
    timer = RefreshTimer(refreshed=1000.0)
    assert timer.wait(ZONE, 1000.0, refreshed=True) == 7200


def test_after_a_failure_the_next_try_is_retry_seconds_on():
    timer = RefreshTimer(refreshed=1000.0)
    assert timer.wait(ZONE, 1000.0 + 7200, refreshed=False) == 900


def test_a_retry_never_overshoots_expire():
    timer = RefreshTimer(refreshed=1000.0)
    assert timer.wait(ZONE, 1000.0 + 2800, refreshed=False) == 200


def test_expired_after_expire_seconds_without_refresh():
    timer = RefreshTimer(refreshed=1000.0)
    assert not timer.expired(ZONE, 1000.0 + 2999)
    assert timer.expired(ZONE, 1000.0 + 3000)
    # Once expired, tries go on every RETRY seconds (no busy loop).
    assert timer.wait(ZONE, 1000.0 + 3500, refreshed=False) == 900


def test_never_pulled_zone_is_tried_on_the_default():
    assert RefreshTimer().wait(None, 0.0, refreshed=False) == SECONDARY_RETRY
    assert not RefreshTimer().expired(ZONE, 10**9)


def test_an_expired_zone_answers_servfail_until_refreshed():
    authority = Authority([ZONE])
    handler = QueryHandler(authority)
    query = dns.message.make_query("ns.s.test.", "A")

    def rcode() -> int:
        reply = handler.handle(query.to_wire(), "192.0.2.9")
        assert isinstance(reply, bytes)
        return dns.message.from_wire(reply).rcode()

    assert rcode() == dns.rcode.NOERROR
    authority.set_expired(ORIGIN, True)
    assert rcode() == dns.rcode.SERVFAIL  # the cached answer was dropped
    authority.set_zone(ZONE)  # a successful transfer
    assert rcode() == dns.rcode.NOERROR


def test_an_expired_zone_is_not_transferred():
    catalog = Catalog(transfer_acl=Acl.of(["192.0.2.0/24"]))
    catalog.publish(ZONE)
    catalog.authority.set_expired(ORIGIN, True)
    query = dns.message.make_query("s.test.", "AXFR")
    [reply] = transfer_replies(catalog, query, "192.0.2.9")
    assert reply.rcode() == dns.rcode.SERVFAIL
