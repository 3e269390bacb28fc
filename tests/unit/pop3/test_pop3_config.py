"""The [pop3] table: defaults, EXPIRE's "never", mechanisms, bad values named by key."""

from __future__ import annotations

import tomllib

import pytest

from mailstack.errors import ConfigError
from mailstack.pop3.config import Pop3Config
from mailstack.schema import load, to_toml


def test_defaults_toml_round_trips_with_expire_never():
    table = tomllib.loads(to_toml("pop3", Pop3Config()))["pop3"]
    assert table["expire"] == "never"
    assert load(Pop3Config, table, "pop3") == Pop3Config()


def test_values_are_read():
    config = load(Pop3Config, {"expire": 0, "mechanisms": ["login"], "login_delay": 60}, "pop3")
    assert config.expire_days == 0 and config.mechanisms == ("LOGIN",)
    assert config.login_delay == 60
    assert load(Pop3Config, {"expire": "NEVER"}, "pop3").expire_days is None


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"expire": -1}, "pop3.expire"),
        ({"expire": "soon"}, "pop3.expire"),
        ({"mechanisms": ["APOP"]}, "pop3.mechanisms"),
        ({"login_delay": -1}, "pop3.login_delay"),
        ({"implementation": "x\r\n"}, "pop3.implementation"),
        ({"expire_days": 3}, "pop3.expire_days"),
    ],
)
def test_bad_values_name_their_key(table, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load(Pop3Config, table, "pop3")
