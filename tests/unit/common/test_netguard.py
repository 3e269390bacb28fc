import pytest

from mailstack.common.netguard import ENV, OutsideLoopback, check_destination


def test_the_suite_runs_loopback_only():
    import os

    assert os.environ.get(ENV) == "1"  # set by tests/conftest.py


@pytest.mark.parametrize("address", ["198.41.0.4", "10.0.0.1", "2001:503:ba3e::2:30", "a.root"])
def test_outside_loopback_is_refused(address):
    with pytest.raises(OutsideLoopback):
        check_destination(address)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.53", "::1"])
def test_loopback_passes(address):
    check_destination(address)


def test_off_without_the_switch(monkeypatch):
    monkeypatch.delenv(ENV)
    check_destination("198.41.0.4")


async def test_resolver_with_real_root_hints_sends_nothing():
    import dns.rcode

    from mailstack.dns.resolver import Resolver, default_root_hints

    resolver = Resolver(root_hints=default_root_hints(), timeout=0.2)
    result = await resolver.resolve("gaia.cs.umass.edu", "A")
    # Every root server was refused like a server that does not answer.
    assert result.rcode == dns.rcode.SERVFAIL and not result.answer


async def test_a_zone_pull_from_outside_loopback_is_refused():
    """A [[dns.secondary]] primary is config-chosen: the guard covers it too."""
    import dns.name
    import dns.zone

    from mailstack.dns.service import pull_zone

    with pytest.raises(OutsideLoopback):
        await pull_zone(dns.name.from_text("poly.edu."), "192.0.2.1", 53, None,
                        dns.zone.Zone("poly.edu."))
