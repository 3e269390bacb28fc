"""What a node owns: its resolver, its authenticator, the state its services share."""

from __future__ import annotations

import ast
from pathlib import Path

import mailstack
from mailstack.app import Node
from mailstack.common.auth import Authenticator

from support import make_config, open_fast_store

SOURCES = Path(mailstack.__file__).parent


def test_resolver_is_configured_only_when_told_where_to_resolve(tmp_path):
    node = Node(make_config(tmp_path / "a", ()))
    # The MX's checks never walk down from the real root servers unasked ...
    assert not node.resolver_configured
    # ... while the queue still gets a resolver (outbound mail needs one).
    assert node.resolver is node.resolver
    forwarded = Node(
        make_config(
            tmp_path / "b", (), table={"dns": {"resolver": {"forwarders": ["127.0.0.1:5300"]}}}
        )
    )
    assert forwarded.resolver_configured
    assert forwarded.resolver.forwarders == ["127.0.0.1"]


async def test_the_dns_services_resolver_is_the_nodes(tmp_path):
    node = Node(make_config(tmp_path, ("dns",)), store_factory=open_fast_store)
    await node.start()
    try:
        assert node.resolver_configured
        assert node.resolver is node.services["dns"].resolver
    finally:
        await node.stop()


async def test_every_login_service_shares_the_nodes_authenticator(tmp_path):
    listen = ("submission", "pop3", "imap", "imaps")
    node = Node(make_config(tmp_path, listen), store_factory=open_fast_store)
    await node.start()
    try:
        assert isinstance(node.authenticator, Authenticator)
        assert node.authenticator.store is node.store
        assert node.services["imap"].context.authenticator is node.authenticator
        assert node.services["imaps"].context.user_sessions is node.imap_shared.user_sessions
        assert node.services["imaps"].context.parsed is node.imap_shared.parsed
    finally:
        await node.stop()


def test_two_nodes_share_no_state(tmp_path):
    first = Node(make_config(tmp_path / "a", ()))
    second = Node(make_config(tmp_path / "b", ()))
    assert first.maildrops is not second.maildrops
    assert first.imap_shared is not second.imap_shared


def _module_level_weak_maps(path: Path) -> list[str]:
    found = []
    for node in ast.parse(path.read_text()).body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if value is not None and "WeakKeyDictionary" in ast.unparse(value):
            found.append(f"{path.relative_to(SOURCES)}:{node.lineno}")
    return found


def test_no_per_node_state_in_module_globals():
    found = [hit for path in SOURCES.rglob("*.py") for hit in _module_level_weak_maps(path)]
    assert found == []
