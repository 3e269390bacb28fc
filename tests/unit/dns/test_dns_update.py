"""RFC 2136 UPDATE semantics and zone diffs for IXFR, without sockets."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.update
import pytest

from mailstack.dns.catalog import Acl, Catalog
from mailstack.dns.transfer import axfr_records, transfer_replies
from mailstack.dns.update import apply_update
from mailstack.errors import DnsError


def n(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def parsed(update: dns.update.UpdateMessage) -> dns.message.Message:
    return dns.message.from_wire(update.to_wire())


def test_add_bumps_serial(example_zone):
    update = dns.update.UpdateMessage("example.")
    update.add("new.example.", 60, "A", "192.0.2.5")
    zone = apply_update(example_zone, parsed(update))
    assert zone.get(n("new.example."), dns.rdatatype.A)[0].address == "192.0.2.5"
    assert zone.serial == example_zone.serial + 1
    assert example_zone.get(n("new.example."), dns.rdatatype.A) is None  # snapshots


@pytest.mark.parametrize(
    ("prepare", "rcode"),
    [
        (lambda u: u.present("nothere.example."), dns.rcode.NXDOMAIN),
        (lambda u: u.present("web.example.", "MX"), dns.rcode.NXRRSET),
        (lambda u: u.absent("web.example."), dns.rcode.YXDOMAIN),
        (lambda u: u.absent("web.example.", "A"), dns.rcode.YXRRSET),
        (lambda u: u.present("web.example.", "A", "192.0.2.1"), dns.rcode.NXRRSET),
    ],
)
def test_failed_prerequisites_change_nothing(example_zone, prepare, rcode):
    update = dns.update.UpdateMessage("example.")
    prepare(update)
    update.add("new.example.", 60, "A", "192.0.2.5")
    with pytest.raises(DnsError) as caught:
        apply_update(example_zone, parsed(update))
    assert caught.value.rcode == rcode


def test_value_prerequisite_that_holds(example_zone):
    update = dns.update.UpdateMessage("example.")
    update.present("web.example.", "A", "192.0.2.80")
    update.delete("web.example.", "A", "192.0.2.80")
    zone = apply_update(example_zone, parsed(update))
    assert zone.get(n("web.example."), dns.rdatatype.A) is None


def test_outside_the_zone_is_notzone(example_zone):
    update = dns.update.UpdateMessage("example.")
    update.add("www.other.test.", 60, "A", "192.0.2.5")
    with pytest.raises(DnsError) as caught:
        apply_update(example_zone, parsed(update))
    assert caught.value.rcode == dns.rcode.NOTZONE


def test_apex_soa_and_last_ns_survive_deletes(example_zone):
    update = dns.update.UpdateMessage("example.")
    update.delete("example.")
    update.delete("example.", "NS", "ns1.example.")
    update.delete("example.", "NS", "ns2.example.")
    zone = apply_update(example_zone, parsed(update))
    assert zone.get(n("example."), dns.rdatatype.SOA) is not None
    assert zone.get(n("example."), dns.rdatatype.NS) is not None
    assert zone.get(n("example."), dns.rdatatype.MX) is None


def test_cname_beside_data_is_ignored(example_zone):
    update = dns.update.UpdateMessage("example.")
    update.add("web.example.", 60, "CNAME", "mail.example.")
    zone = apply_update(example_zone, parsed(update))
    assert zone is example_zone


def test_ixfr_serves_the_journal(example_zone):
    catalog = Catalog(transfer_acl=Acl.of(["127.0.0.0/8"]))
    catalog.publish(example_zone)
    update = dns.update.UpdateMessage("example.")
    update.replace("web.example.", 60, "A", "192.0.2.81")
    catalog.publish(apply_update(example_zone, parsed(update)))
    query = dns.message.make_query("example.", "IXFR")
    query.authority = [example_zone.soa]
    replies = transfer_replies(catalog, query, "127.0.0.1")
    records = [r for reply in replies for r in reply.answer]
    types = [r.rdtype for r in records]
    assert types[0] == types[1] == dns.rdatatype.SOA and types[-1] == dns.rdatatype.SOA
    assert records[1][0].serial == example_zone.serial
    assert any(r.rdtype == dns.rdatatype.A and r[0].address == "192.0.2.80" for r in records)
    assert any(r.rdtype == dns.rdatatype.A and r[0].address == "192.0.2.81" for r in records)
    assert len(records) < len(axfr_records(example_zone))


def test_transfer_refused_outside_the_acl(example_zone):
    catalog = Catalog(transfer_acl=Acl.of(["192.0.2.0/24"]))
    catalog.publish(example_zone)
    replies = transfer_replies(catalog, dns.message.make_query("example.", "AXFR"), "127.0.0.1")
    assert replies[0].rcode() == dns.rcode.REFUSED
