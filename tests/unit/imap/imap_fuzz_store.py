"""A SQLite store outside pytest fixtures, for hypothesis tests that keep one
store across examples."""

from pathlib import Path

from argon2 import PasswordHasher

from mailstack.mime import PARSE_CODEC
from mailstack.store.sqlite import SqliteStore


async def open_store(path: Path) -> SqliteStore:
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return await SqliteStore.open(path, codec=PARSE_CODEC, password_hasher=hasher)
