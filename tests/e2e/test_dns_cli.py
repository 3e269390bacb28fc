"""`mailstack dns ...` as a user runs it: a separate process."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from tests.e2e.test_dns_resolver import HINTS, start_hierarchy

from mailstack.cli import init_node


async def mailstack(*args: str, data_dir=None) -> tuple[int, str]:
    env = dict(os.environ)
    if data_dir is not None:
        env["MAILSTACK_CONFIG"] = str(data_dir / "mailstack.toml")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mailstack.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


@pytest.fixture
async def hierarchy(tmp_path):
    servers, port = await start_hierarchy()
    hints = tmp_path / "root.hints"
    hints.write_text(HINTS)
    yield hints, port
    for server in servers:
        await server.stop()


async def test_query_trace_walks_like_the_lecture(hierarchy):
    hints, port = hierarchy
    code, out = await mailstack(
        "dns",
        "query",
        "gaia.cs.umass.edu",
        "A",
        "--trace",
        "--root-hints",
        str(hints),
        "--port",
        str(port),
    )
    assert code == 0, out
    assert "asked a.root-servers.net (127.0.0.21) for edu. A → referral to edu.:" in out
    assert "asked dns.umass.edu (127.0.0.24) for gaia.cs.umass.edu. A → answer" in out
    assert " ms]" in out
    assert "status: NOERROR" in out
    assert "128.119.245.12" in out.split(";; ANSWER SECTION:")[1]


async def test_query_a_server_like_dig(hierarchy):
    _, port = hierarchy
    code, out = await mailstack("dns", "query", "umass.edu", "MX", "--server", f"127.0.0.24:{port}")
    assert code == 0, out
    assert "flags: qr aa rd" in out
    assert "10 mail.umass.edu." in out and "20 mail2.example.com." in out
    code, out = await mailstack(
        "dns", "query", "nope.umass.edu", "--server", f"127.0.0.24:{port}", "--tcp"
    )
    assert "status: NXDOMAIN" in out


async def test_zone_and_record_commands(tmp_path):
    data = tmp_path / "node"
    await asyncio.to_thread(init_node, data, "mx.test")
    code, out = await mailstack(
        "dns", "zone", "add", "example.org", "--ns", "ns1.example.org.", data_dir=data
    )
    assert code == 0 and "serial 1" in out, out
    code, out = await mailstack(
        "dns", "record", "add", "example.org", "MX", "10 mail", data_dir=data
    )
    assert code == 0 and "serial 2" in out, out
    code, out = await mailstack(
        "dns",
        "record",
        "add",
        "mail.example.org.",
        "A",
        "192.0.2.25",
        "--ttl",
        "300",
        data_dir=data,
    )
    assert code == 0 and "serial 3" in out, out
    code, out = await mailstack("dns", "zone", "list", data_dir=data)
    assert "example.org.\tserial 3" in out
    code, out = await mailstack("dns", "zone", "show", "example.org", data_dir=data)
    assert "@ 3600 IN MX 10 mail" in out and "mail 300 IN A 192.0.2.25" in out
    code, out = await mailstack("dns", "record", "remove", "mail.example.org.", "A", data_dir=data)
    assert code == 0 and "serial 4" in out
    code, out = await mailstack(
        "dns", "record", "add", "www.other.net.", "A", "192.0.2.1", data_dir=data
    )
    assert code == 1 and "no managed zone contains" in out
    code, out = await mailstack("dns", "zone", "remove", "example.org", data_dir=data)
    assert code == 0
    code, out = await mailstack("dns", "zone", "list", data_dir=data)
    assert out.strip() == ""


async def test_cli_changes_reach_a_running_node(node_factory, tmp_path):
    import dns.asyncquery
    import dns.message

    node = await node_factory(
        listen=("dns",), dns={"recursion": [], "zones_dir": str(tmp_path / "none")}
    )
    data = node.config.data_dir
    (data / "mailstack.toml").write_text(f'[node]\ndata_dir = "{data}"\n[listen]\n')
    code, out = await mailstack("dns", "zone", "add", "live.test", data_dir=data)
    assert code == 0, out
    code, out = await mailstack(
        "dns", "record", "add", "www.live.test.", "A", "192.0.2.55", data_dir=data
    )
    assert code == 0, out
    query = dns.message.make_query("www.live.test.", "A")
    for _ in range(40):
        reply = await dns.asyncquery.udp(query, "127.0.0.1", port=node.port("dns"), timeout=2)
        if reply.answer:
            break
        await asyncio.sleep(0.1)
    assert reply.answer[0][0].address == "192.0.2.55"
    code, out = await mailstack(
        "dns", "query", "www.live.test", "--server", f"127.0.0.1:{node.port('dns')}"
    )
    assert "192.0.2.55" in out and "flags: qr aa rd" in out
