"""The [imap] table: defaults, validation, and the text `mailstack init` writes."""

import tomllib
from typing import Any

import pytest

from mailstack.errors import ConfigError
from mailstack.imap.config import ImapConfig
from mailstack.schema import load, to_toml


def read_imap(table: dict[str, Any]) -> ImapConfig:
    return load(ImapConfig, table, "imap")


def test_defaults_toml_round_trips():
    table = tomllib.loads(to_toml("imap", ImapConfig()))["imap"]
    assert read_imap(table) == ImapConfig()


def test_values_are_read():
    config = read_imap(
        {"allow_plaintext_on_loopback": False, "login_cache_seconds": 0, "starttls": False}
    )
    assert not config.allow_plaintext_on_loopback and not config.starttls
    assert config.login_cache_seconds == 0


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"starttls": "yes"}, "imap.starttls"),
        ({"login_cache_seconds": -1}, "imap.login_cache_seconds"),
        ({"implementation": "x\n"}, "imap.implementation"),
        ({"nonsense": 1}, "imap.nonsense"),
    ],
)
def test_bad_values_name_their_key(table, key):
    with pytest.raises(ConfigError, match=key):
        read_imap(table)
