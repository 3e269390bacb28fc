"""The [dns] table: defaults, arrays of tables, cross-checked key names, bad values."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from mailstack.dns.config import DnsConfig
from mailstack.errors import ConfigError
from mailstack.schema import load, to_toml


def read_dns(table: dict[str, Any]) -> DnsConfig:
    return load(DnsConfig, table, "dns")


def test_defaults_round_trip():
    table = tomllib.loads(to_toml("dns", DnsConfig()))["dns"]
    assert read_dns(table) == DnsConfig()


def test_full_table():
    config = read_dns(
        {
            "zone": [{"file": "a.zone", "origin": "a.test."}],
            "key": [{"name": "k", "secret": "c2VjcmV0"}],
            "allow_transfer": ["127.0.0.0/8", "k"],
            "allow_update": ["k"],
            "notify": ["127.0.0.2:5300"],
            "secondary": [{"origin": "b.test.", "primaries": ["127.0.0.3"], "key": "k"}],
            "resolver": {"forwarders": ["127.0.0.9:53"], "qname_minimisation": False, "port": 5353},
        }
    )
    assert config.notify == (("127.0.0.2", 5300),)
    assert config.secondaries[0].primaries == (("127.0.0.3", 53),)
    assert config.resolver.port == 5353 and not config.resolver.qname_minimisation
    assert len(config.keyring()) == 1
    assert read_dns(tomllib.loads(to_toml("dns", config))["dns"]) == config


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"bogus": 1}, "dns.bogus"),
        ({"recursion": ["not a net"]}, "dns.recursion"),
        ({"allow_update": ["nokey"]}, "nokey"),
        ({"key": [{"name": "k", "secret": "!!"}]}, "dns.key.secret"),
        ({"notify": ["host.example:53"]}, "dns.notify"),
        ({"resolver": {"timeout": -1}}, "dns.resolver.timeout"),
        ({"resolver": {"source": "dns.poly.edu"}}, "dns.resolver.source"),
        ({"zone": [{"origin": "x."}]}, "dns.zone.file"),
    ],
)
def test_bad_values_name_the_key(table, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        read_dns(table)
