"""The lab with `resolution = "recursive"`: every name server asked to
recurse passes the question on one level down (`[dns.resolver] chain`), as in
the lectures' recursive figure; the `recursive` scenario's transcript shows
the chain and the answer coming back up it, then the cache."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from .test_lab import lab, steps

OFFSET = random.Random().randrange(20500, 60500, 1000)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("lab-recursive")
    default = resources.files("mailstack.lab").joinpath("default.toml").read_text()
    topology = root / "recursive.toml"
    topology.write_text('resolution = "recursive"\n' + default)
    up = lab(root, "up", "--detach", "--port-offset", str(OFFSET), "--topology", str(topology))
    assert up.returncode == 0, up.stderr + up.stdout
    try:
        yield root
    finally:
        lab(root, "down")


def test_recursive_goes_down_the_chain_and_back(root: Path) -> None:
    result = lab(root, "run", "recursive")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    out = result.stdout
    chain = [line.split(": ")[0] for line in steps(out)]
    hop = r"\d+\. "
    assert re.fullmatch(hop + r"cis\.poly\.edu -> dns\.poly\.edu", chain[0])
    assert re.fullmatch(hop + r"dns\.poly\.edu -> [ab]\.root-servers\.net", chain[1])
    assert re.fullmatch(hop + r"[ab]\.root-servers\.net -> ns\.edu", chain[2])
    assert re.fullmatch(hop + r"ns\.edu -> dns\.umass\.edu", chain[3])
    assert re.fullmatch(hop + r"dns\.umass\.edu -> dns\.cs\.umass\.edu", chain[4])
    # ... and back up, each reply to the one that asked.
    assert re.fullmatch(hop + r"dns\.cs\.umass\.edu -> dns\.umass\.edu", chain[5])
    assert re.fullmatch(hop + r"dns\.poly\.edu -> cis\.poly\.edu", chain[9])
    assert all(step.endswith("[rd]") for step in steps(out)[:5])
    assert "gaia.cs.umass.edu. A 127.0.2.10" in steps(out)[9]
    # Once more: from dns.poly.edu's cache.
    assert [line.split(":")[0] for line in steps(out)[10:]] == [
        "1. cis.poly.edu -> dns.poly.edu",
        "2. dns.poly.edu -> cis.poly.edu",
    ]
    assert "from dns.poly.edu's cache" in out


def test_iterative_on_a_recursive_lab_says_why_not(root: Path) -> None:
    result = lab(root, "run", "iterative")
    assert result.returncode == 1
    assert 'this lab resolves recursively (resolution = "recursive")' in result.stdout


def test_mail_still_flows_in_a_recursive_lab(root: Path) -> None:
    # The mail servers' own resolvers still walk the hierarchy.
    result = lab(root, "run", "open-relay")
    assert result.returncode == 0, result.stdout[-3000:]
