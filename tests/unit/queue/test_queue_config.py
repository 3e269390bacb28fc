"""The [queue] and [submission] tables: defaults, bad values named by key, backoff."""

from __future__ import annotations

import tomllib

import pytest

from mailstack.errors import ConfigError
from mailstack.queue.config import QueueConfig, SubmissionConfig


def test_defaults_toml_parses_back_to_the_defaults():
    assert QueueConfig.from_table(tomllib.loads(QueueConfig.defaults_toml())["queue"]) == (
        QueueConfig()
    )
    table = tomllib.loads(SubmissionConfig.defaults_toml())["submission"]
    assert SubmissionConfig.from_table(table) == SubmissionConfig()


def test_values_are_converted():
    config = QueueConfig.from_table({"retry_first": 60, "port": 2525, "enabled": False})
    assert config.retry_first == 60.0 and isinstance(config.retry_first, float)
    assert config.port == 2525 and not config.enabled
    assert SubmissionConfig.from_table({"mechanisms": ["plain"]}).mechanisms == ("plain",)


@pytest.mark.parametrize(
    ("section", "table", "key"),
    [
        (QueueConfig, {"retry_frist": 1}, "queue.retry_frist"),
        (QueueConfig, {"enabled": "yes"}, "queue.enabled"),
        (QueueConfig, {"give_up": -1}, "queue.give_up"),
        (QueueConfig, {"port": 70000}, "queue.port"),
        (QueueConfig, {"retry_factor": 0.5}, "queue.retry_factor"),
        (QueueConfig, {"connections": 0}, "queue.connections"),
        (QueueConfig, {"helo": 3}, "queue.helo"),
        (SubmissionConfig, {"mechanisms": ["CRAM-MD5"]}, "submission.mechanisms"),
        (SubmissionConfig, {"mechanisms": "PLAIN"}, "submission.mechanisms"),
        (SubmissionConfig, {"save_sent": 1}, "submission.save_sent"),
    ],
)
def test_bad_values_name_their_key(section, table, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        section.from_table(table)


def test_backoff_never_shorter_than_the_first_wait():
    config = QueueConfig(retry_first=600, retry_max=60)
    assert config.retry_delay(1) == 600 and config.retry_delay(5) == 600
