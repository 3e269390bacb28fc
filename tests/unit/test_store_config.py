"""The [store] table: the PostgreSQL backend's keys and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailstack.config import Config
from mailstack.errors import ConfigError


def config(tmp_path: Path, **store: object) -> Config:
    return Config.from_table({"store": store}, tmp_path)


def test_sqlite_stays_the_default_and_needs_no_url(tmp_path: Path) -> None:
    assert config(tmp_path).store.backend == "sqlite"


def test_postgresql_needs_a_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="url"):
        config(tmp_path, backend="postgresql")


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("postgresql://bob:secret@db.example/mail", "password"),
        ("postgresql://bob@db.example/mail?password=secret", "password"),
        ("mysql://bob@db.example/mail", "postgresql://"),
        ("postgresql://bob@db.example:99999/mail", "port"),
    ],
)
def test_bad_urls_are_refused(tmp_path: Path, url: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        config(tmp_path, backend="postgresql", url=url)


def test_the_password_comes_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql://mail@127.0.0.1/mail"
    (tmp_path / "pgpass").write_text("s3cret\n")
    assert config(tmp_path, backend="postgresql", url=url,
                  password_file="pgpass").store_password() == "s3cret"
    monkeypatch.setenv("MAIL_DB_PASSWORD", "from-env")
    assert config(tmp_path, backend="postgresql", url=url,
                  password_env="MAIL_DB_PASSWORD").store_password() == "from-env"
    assert config(tmp_path, backend="postgresql", url=url).store_password() is None
    with pytest.raises(ConfigError, match="NO_SUCH_VARIABLE"):
        config(tmp_path, backend="postgresql", url=url,
               password_env="NO_SUCH_VARIABLE").store_password()
    with pytest.raises(ConfigError, match="cannot read"):
        config(tmp_path, backend="postgresql", url=url, password_file="missing").store_password()
    with pytest.raises(ConfigError, match="one of"):
        config(tmp_path, backend="postgresql", url=url, password_file="pgpass",
               password_env="MAIL_DB_PASSWORD")
