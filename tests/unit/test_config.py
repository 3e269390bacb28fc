"""Configuration: one schema gives the typed Config, its validation, the text
`mailstack init` writes and the keys docs/configuration.md documents."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from mailstack.app import SERVICES
from mailstack.config import (
    DEFAULT_LISTEN,
    TABLES,
    Config,
    ListenConfig,
    NodeConfig,
    defaults_toml,
)
from mailstack.errors import ConfigError
from mailstack.limits import Limits
from mailstack.schema import dump, load, walk

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
DATA = Path(__file__).resolve().parent / "data"


def test_defaults_round_trip(tmp_path):
    table = tomllib.loads(defaults_toml(tmp_path, "hamburger.edu"))
    config = Config.from_table(table, tmp_path)
    assert config.hostname == "hamburger.edu"
    assert config.limits == Limits()
    assert config.listen == {
        k: (v.split(":")[0], int(v.split(":")[1])) for k, v in DEFAULT_LISTEN.items()
    }
    assert config.cert_path == tmp_path / "tls" / "cert.pem"
    assert config == dataclasses.replace(Config.defaults(tmp_path), hostname="hamburger.edu")


def test_the_written_defaults_are_the_schema_defaults(tmp_path):
    written = tomllib.loads(defaults_toml(tmp_path, "h"))
    assert list(written) == list(TABLES)
    for name, klass in TABLES.items():
        expected = NodeConfig("h", str(tmp_path)) if name == "node" else klass()
        assert load(klass, written[name], name) == expected, name


def test_the_written_defaults_document_every_key(tmp_path):
    lines = defaults_toml(tmp_path, "h").splitlines()
    for before, line in zip(lines, lines[1:], strict=False):
        if " = " in line and not line.startswith("#"):
            assert before.startswith("# "), f"{line!r} has no comment above it"


def _documented() -> dict[str, str]:
    """`table.key` -> its default cell, for every row of docs/configuration.md."""
    rows: dict[str, str] = {}
    table = None
    for line in DOCS.read_text().splitlines():
        if heading := re.match(r"#+ `\[\[?([a-z0-9_.]+)\]\]?`$", line):
            table = heading[1]
        elif table and (row := re.match(r"\| `([a-z0-9_]+)` \| ([^|]*) \|", line)):
            rows[f"{table}.{row[1]}"] = row[2].strip()
    return rows


def _schema() -> dict[str, object]:
    return {where: key for table, klass in TABLES.items() for where, key in walk(klass, table)}


def test_every_key_is_documented_and_every_documented_key_exists():
    documented, schema = set(_documented()), set(_schema())
    assert schema - documented == set(), "keys missing from docs/configuration.md"
    assert documented - schema == set(), "docs/configuration.md documents keys that do not exist"


def test_documented_defaults_are_the_schema_defaults():
    """A default written in the docs as a value (not in words) is the schema's."""
    schema = _schema()
    for where, cell in _documented().items():
        key = schema[where]
        if key.required:  # type: ignore[attr-defined]
            continue
        default = dump(key.hint, key.field.default)  # type: ignore[attr-defined]
        text = cell.strip("`")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        # An empty or absent default is worked out at start; the docs say how, in words.
        assert value == default or default in ("", None), (where, cell, default)


def test_every_listen_key_is_a_service_and_every_service_has_a_key():
    assert set(SERVICES) == {f.name for f in dataclasses.fields(ListenConfig)}


@pytest.mark.parametrize(
    ("table", "names"),
    [
        ({"listen": {"smtp": "nowhere"}}, "listen.smtp"),
        ({"listen": {"smtp": "127.0.0.1:99999"}}, "listen.smtp"),
        ({"listen": {"gopher": "127.0.0.1:70"}}, "listen.gopher"),
        ({"listen": {"gopher": "127.0.0.1:70"}}, "listen.gopher: this version has no gopher"),
        ({"limits": {"recipients": -1}}, "limits.recipients"),
        ({"limits": {"recipients": 0}}, "limits.recipients"),
        ({"limits": {"smtp_idle_timeout": 0}}, "limits.smtp_idle_timeout"),
        ({"limits": {"recipients": 1.5}}, "limits.recipients"),
        ({"limits": {"dns_udp_rate": -1}}, "limits.dns_udp_rate"),
        ({"limits": {"no_such_limit": 1}}, "limits.no_such_limit"),
        ({"smtp": {"starttls": "yes"}}, "smtp.starttls"),
        ({"smtp": {"message_auth": "strict"}}, "smtp.message_auth: expected one of off, record"),
        ({"store": {"backend": "oracle"}}, "store.backend"),
        ({"smtpp": {"starttls": True}}, r"[smtpp]: unknown table"),
        ({"hostname": "mx.test"}, "hostname: a key outside any table; it belongs under [node]"),
        ({"node": "mx.test"}, "node: expected a table"),
        ({"pop3": {"expire": -1}}, "pop3.expire"),
        ({"pop3": {"mechanisms": ["CRAM-MD5"]}}, "pop3.mechanisms"),
        ({"dns": {"resolver": {"port": 0}}}, "dns.resolver.port"),
        ({"dns": {"secondary": [{"origin": "a.", "primaries": []}]}}, "dns.secondary.primaries"),
    ],
)
def test_bad_values_name_their_key(tmp_path, table, names):
    with pytest.raises(ConfigError, match=re.escape(names)):
        Config.from_table(table, tmp_path)


def test_an_error_names_the_file_the_table_and_the_key(tmp_path):
    path = tmp_path / "mailstack.toml"
    path.write_text('[smtp]\nmessage_auth = "strict"\n')
    with pytest.raises(ConfigError) as error:
        Config.load(path)
    assert str(error.value) == (f"{path}: smtp.message_auth: expected one of off, record, enforce")


def test_absent_or_empty_listen_keys_leave_services_off(tmp_path):
    config = Config.from_table({"listen": {"smtp": "127.0.0.1:0", "pop3": ""}}, tmp_path)
    assert config.listen == {"smtp": ("127.0.0.1", 0)}
    ipv6 = Config.from_table({"listen": {"smtp": "[::1]:25"}}, tmp_path)
    assert ipv6.listen == {"smtp": ("::1", 25)}


def test_zero_switches_off_only_the_limits_that_say_so(tmp_path):
    config = Config.from_table({"limits": {"dns_udp_rate": 0}}, tmp_path)
    assert config.limits.dns_udp_rate == 0


def test_tables_are_typed_attributes(tmp_path):
    config = Config.from_table(
        {"smtp": {"message_auth": "enforce"}, "queue": {"enabled": False}}, tmp_path
    )
    assert config.smtp.message_auth == "enforce" and not config.queue.enabled
    assert config.submission.mechanisms == ("PLAIN", "LOGIN")
    with pytest.raises(AttributeError):
        config.smtpp  # noqa: B018  (no section lookup by name any more)


def test_a_file_written_by_mailstack_0_1_0_init_still_loads(tmp_path):
    """Its `http` listener starts the HTTP service again; it has no `https`
    key, so that listener stays off (a [listen] table names what runs)."""
    text = (DATA / "mailstack-0.1.0-init.toml").read_text()
    assert 'http = "127.0.0.1:8025"\n' in text and "https" not in text
    path = tmp_path / "mailstack.toml"
    path.write_text(text)
    config = Config.load(path)
    defaults = Config.defaults(Path("/var/lib/mailstack"))
    assert config.listen["http"] == ("127.0.0.1", 8025)
    assert config == dataclasses.replace(
        defaults,
        hostname="hamburger.edu",
        path=path,
        listen={k: v for k, v in defaults.listen.items() if k != "https"},
    )
