"""The backends the contract suite runs against: every test in tests/contract
runs once per entry of BACKENDS, and sees the store only through the
contract (no SQL, no private attributes; tests that need a backend's
insides live in tests/unit/store/).

A backend opens stores on one set of data: ``open()`` twice gives two
stores on the same data, as two processes (the node and the CLI) would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mailstack.mime import PARSE_CODEC
from mailstack.store import Store
from mailstack.store.sqlite import SqliteStore

from support import FAST_HASHER, PostgresDatabase


class SqliteBackend:
    """Stores on one SQLite file in the test's temporary directory."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "store.db"

    async def open(self) -> Store[Any]:
        return await SqliteStore.open(self.path, codec=PARSE_CODEC, password_hasher=FAST_HASHER)


# One line per backend.
BACKENDS: dict[str, Callable[[Path], Any]] = {
    "sqlite": SqliteBackend,
    "postgresql": PostgresDatabase,
}


@pytest.fixture(params=sorted(BACKENDS))
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    made = BACKENDS[request.param](tmp_path)
    yield made
    if hasattr(made, "drop"):
        await made.drop()


@pytest.fixture
async def store(backend: Any) -> AsyncIterator[Store[Any]]:
    opened = await backend.open()
    yield opened
    await opened.close()


@pytest.fixture
async def other_store(backend: Any, store: Store[Any]) -> AsyncIterator[Store[Any]]:
    """A second store on the same data, as another process would open it."""
    opened = await backend.open()
    yield opened
    await opened.close()
