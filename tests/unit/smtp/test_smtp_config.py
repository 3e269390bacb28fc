"""The [smtp] and [submission] tables: defaults, conversions, bad values named by key."""

from __future__ import annotations

import tomllib

import pytest

from mailstack.errors import ConfigError
from mailstack.schema import load, to_toml
from mailstack.smtp.config import SmtpConfig, SubmissionConfig


@pytest.mark.parametrize(
    ("name", "section"), [("smtp", SmtpConfig), ("submission", SubmissionConfig)]
)
def test_defaults_toml_parses_back_to_the_defaults(name, section):
    table = tomllib.loads(to_toml(name, section()))[name]
    assert load(section, table, name) == section()


def test_values_are_converted():
    assert load(SubmissionConfig, {"mechanisms": ["plain"]}, "submission").mechanisms == ("plain",)
    assert load(SmtpConfig, {"message_auth": "enforce"}, "smtp").message_auth == "enforce"


@pytest.mark.parametrize(
    ("section", "table", "key"),
    [
        (SubmissionConfig, {"mechanisms": ["CRAM-MD5"]}, "submission.mechanisms"),
        (SubmissionConfig, {"mechanisms": "PLAIN"}, "submission.mechanisms"),
        (SubmissionConfig, {"save_sent": 1}, "submission.save_sent"),
        (SmtpConfig, {"message_auth": "on"}, "smtp.message_auth"),
        (SmtpConfig, {"hostname": 1}, "smtp.hostname"),
        (SmtpConfig, {"helo": "x"}, "smtp.helo"),
    ],
)
def test_bad_values_name_their_key(section, table, key):
    name = key.partition(".")[0]
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load(section, table, name)
