"""The live view's events, without sockets: the hosts' trace events turned
into arrows between lab hosts, and trace files read as they grow."""

from __future__ import annotations

from pathlib import Path

from mailstack.common.trace import CLIENT, NOTE, SERVER, TraceEvent
from mailstack.lab import topology
from mailstack.lab.topology import PROBE
from mailstack.lab.view import LAB, UP, Arrows, Tail, links

WORLD = topology.load()


def event(host: str, session: str, direction: str, peer: str, summary: str, at: float):
    protocol = session.rsplit(" ", 1)[0]
    return TraceEvent(at, host, session, protocol, direction, peer, summary, summary + " (all)")


def up(arrows: Arrows, at: float) -> None:
    assert arrows.arrow(event(LAB, f"{UP} up", NOTE, "", "every host answers", at)) is not None


def test_a_server_trace_becomes_arrows_between_named_hosts() -> None:
    arrows = Arrows(WORLD)
    up(arrows, 10.0)
    root = "a.root-servers.net"
    query = arrows.arrow(event(root, "dns/udp 1", CLIENT, "127.0.2.3:5353", "query edu. A", 11))
    reply = arrows.arrow(event(root, "dns/udp 1", SERVER, "127.0.2.3:5353", "NOERROR", 11.1))
    assert query is not None and reply is not None
    assert (query["from"], query["to"]) == ("dns.poly.edu", root)
    assert (reply["from"], reply["to"]) == (root, "dns.poly.edu")
    assert query["detail"] == "query edu. A (all)" and query["session"] == f"{root} dns/udp 1"
    # A peer that is no lab host keeps its address as its name.
    ua = arrows.arrow(event("mail.crepes.fr", "submission 2", CLIENT, "127.0.0.1:4000", "EHLO", 12))
    assert ua is not None and ua["from"] == "127.0.0.1"


def test_a_dialogue_is_drawn_once_from_the_server_side() -> None:
    arrows = Arrows(WORLD)
    up(arrows, 10.0)
    # mail.crepes.fr's client session to Bob's server: Bob's trace has it.
    bob = "127.0.3.2:10025"
    assert arrows.arrow(event("mail.crepes.fr", "smtp-out 3", CLIENT, bob, "DATA", 11)) is None
    # To a host outside the lab (no trace of its own), the client's side is drawn.
    out = arrows.arrow(event("mail.crepes.fr", "smtp-out 4", CLIENT, "127.9.9.9:25", "DATA", 12))
    assert out is not None and (out["from"], out["to"]) == ("mail.crepes.fr", "127.9.9.9")
    back = arrows.arrow(event("mail.crepes.fr", "smtp-out 4", SERVER, "127.9.9.9:25", "354", 13))
    assert back is not None and (back["from"], back["to"]) == ("127.9.9.9", "mail.crepes.fr")


def test_lab_up_probing_and_notes_are_not_drawn() -> None:
    arrows = Arrows(WORLD)
    bob = "mail.hamburger.edu"
    # Before the up mark is read: nothing; `lab up`'s probes (from PROBE),
    # even those the host greets after the mark: nothing either.
    assert arrows.arrow(event(bob, "smtp 1", SERVER, "127.0.4.1:1", "220 hello", 9)) is None
    up(arrows, 10.0)
    assert arrows.arrow(event(bob, "smtp 1", SERVER, f"{PROBE}:1", "220 hello", 10.5)) is None
    assert arrows.arrow(event(bob, "smtp 2", NOTE, "127.0.4.1:2", "connection from", 11)) is None
    greeting = arrows.arrow(event(bob, "smtp 2", SERVER, "127.0.4.1:2", "220 hello", 11.1))
    assert greeting is not None and greeting["to"] == "stranger.org"
    mark = arrows.arrow(event(LAB, "scenario spoof", NOTE, "", "started", 12))
    assert (
        mark is not None
        and mark["from"] == mark["to"] == ""
        and mark["session"] == ("scenario spoof")
    )


def test_tail_hands_out_whole_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    tail = Tail(path)
    assert tail.read() == []  # not there yet
    path.write_bytes(b'{"a": 1}\n{"b"')
    assert tail.read() == ['{"a": 1}']
    with open(path, "ab") as f:
        f.write(b": 2}\n\n")
    assert tail.read() == ['{"b": 2}']
    assert tail.read() == []


def test_links_are_the_delegations_and_the_local_name_servers() -> None:
    drawn = {(link["from"], link["to"], link["kind"]) for link in links(WORLD)}
    assert ("a.root-servers.net", "ns.edu", "delegation") in drawn
    assert ("dns.umass.edu", "dns.cs.umass.edu", "delegation") in drawn
    assert ("cis.poly.edu", "dns.poly.edu", "resolver") in drawn
    # networkutopia.com is not registered yet, but its server is drawn under com.
    assert ("ns.com", "dns1.networkutopia.com", "delegation") in drawn
