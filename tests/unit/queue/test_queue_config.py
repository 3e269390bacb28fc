"""The [queue] table: defaults, bad values named by key, backoff."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from mailstack.errors import ConfigError
from mailstack.queue.config import QueueConfig
from mailstack.schema import load, to_toml


def read_queue(table: dict[str, Any]) -> QueueConfig:
    return load(QueueConfig, table, "queue")


def test_defaults_toml_parses_back_to_the_defaults():
    assert read_queue(tomllib.loads(to_toml("queue", QueueConfig()))["queue"]) == (QueueConfig())


def test_values_are_converted():
    config = read_queue({"retry_first": 60, "port": 2525, "enabled": False})
    assert config.retry_first == 60.0 and isinstance(config.retry_first, float)
    assert config.port == 2525 and not config.enabled


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"retry_frist": 1}, "queue.retry_frist"),
        ({"enabled": "yes"}, "queue.enabled"),
        ({"give_up": -1}, "queue.give_up"),
        ({"port": 70000}, "queue.port"),
        ({"port": 0}, "queue.port"),
        ({"retry_factor": 0.5}, "queue.retry_factor"),
        ({"connections": 0}, "queue.connections"),
        ({"helo": 3}, "queue.helo"),
    ],
)
def test_bad_values_name_their_key(table, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        read_queue(table)


def test_backoff_never_shorter_than_the_first_wait():
    config = QueueConfig(retry_first=600, retry_max=60)
    assert config.retry_delay(1) == 600 and config.retry_delay(5) == 600
