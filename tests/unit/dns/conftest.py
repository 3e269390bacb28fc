from __future__ import annotations

from pathlib import Path

import pytest

from mailstack.dns.authority import Authority
from mailstack.dns.zone import Zone

DATA = Path(__file__).parent / "data"


@pytest.fixture
def example_zone() -> Zone:
    return Zone.from_file(DATA / "example.zone")


@pytest.fixture
def authority(example_zone: Zone) -> Authority:
    return Authority([example_zone])
