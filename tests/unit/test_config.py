"""Configuration: defaults round-trip, bad values name their key, every option
is documented."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from mailstack.config import DEFAULT_LISTEN, Config, defaults_toml
from mailstack.errors import ConfigError
from mailstack.limits import Limits

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_defaults_round_trip(tmp_path):
    table = tomllib.loads(defaults_toml(tmp_path, "hamburger.edu"))
    config = Config.from_table(table, tmp_path)
    assert config.hostname == "hamburger.edu"
    assert config.limits == Limits()
    assert config.listen == {
        k: (v.split(":")[0], int(v.split(":")[1])) for k, v in DEFAULT_LISTEN.items()
    }
    assert config.cert_path == tmp_path / "tls" / "cert.pem"


def test_every_option_is_documented(tmp_path):
    docs = DOCS.read_text()
    table = tomllib.loads(defaults_toml(tmp_path, "h"))

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
            return
        key = prefix.rsplit(".", 1)[-1]
        assert f"`{key}`" in docs, f"{prefix} is not in docs/configuration.md"

    walk("", table)
    for field in dataclasses.fields(Limits):
        assert f"`{field.name}`" in docs


@pytest.mark.parametrize(
    ("table", "names"),
    [
        ({"listen": {"smtp": "nowhere"}}, "listen.smtp"),
        ({"listen": {"smtp": "127.0.0.1:99999"}}, "listen.smtp"),
        ({"listen": {"gopher": "127.0.0.1:70"}}, "listen.gopher"),
        ({"limits": {"recipients": -1}}, "limits.recipients"),
        ({"limits": {"recipients": 0}}, "limits.recipients"),
        ({"limits": {"dns_udp_rate": -1}}, "limits.dns_udp_rate"),
        ({"limits": {"no_such_limit": 1}}, "limits.no_such_limit"),
        ({"smtp": {"starttls": "yes"}}, "smtp.starttls"),
        ({"store": {"backend": "oracle"}}, "store.backend"),
    ],
)
def test_bad_values_name_their_key(tmp_path, table, names):
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        Config.from_table(table, tmp_path)


def test_absent_or_empty_listen_keys_leave_services_off(tmp_path):
    config = Config.from_table({"listen": {"smtp": "127.0.0.1:0", "pop3": ""}}, tmp_path)
    assert config.listen == {"smtp": ("127.0.0.1", 0)}
    ipv6 = Config.from_table({"listen": {"smtp": "[::1]:25"}}, tmp_path)
    assert ipv6.listen == {"smtp": ("::1", 25)}


def test_zero_switches_off_only_the_limits_that_say_so(tmp_path):
    config = Config.from_table({"limits": {"dns_udp_rate": 0}}, tmp_path)
    assert config.limits.dns_udp_rate == 0
