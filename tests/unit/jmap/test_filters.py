"""The FilterOperator checks every /query shares (jmap/method.py)."""

from __future__ import annotations

import pytest

from mailstack.jmap.method import MAX_FILTER_DEPTH, MethodError, combine, filter_operator


def error(spec: object, depth: int = 0) -> str:
    with pytest.raises(MethodError) as caught:
        filter_operator(spec, depth)
    return caught.value.type


def test_operators_conditions_and_what_is_refused() -> None:
    assert filter_operator({"operator": "OR", "conditions": [{}]}, 0) == ("OR", [{}])
    assert filter_operator({"name": "x"}, 0) is None
    assert error("text") == "invalidArguments"
    assert error({"operator": "XOR", "conditions": []}) == "unsupportedFilter"
    assert error({"operator": "AND", "conditions": 5}) == "invalidArguments"
    assert error({"operator": "AND", "conditions": [], "name": "x"}) == "invalidArguments"
    assert filter_operator({"name": "x"}, MAX_FILTER_DEPTH) is None
    assert error({"name": "x"}, MAX_FILTER_DEPTH + 1) == "unsupportedFilter"


def test_combine() -> None:
    even, big = (lambda n: n % 2 == 0), (lambda n: n > 10)
    assert [n for n in (3, 4, 12, 13) if combine("AND", [even, big])(n)] == [12]
    assert [n for n in (3, 4, 12, 13) if combine("OR", [even, big])(n)] == [4, 12, 13]
    assert [n for n in (3, 4, 12, 13) if combine("NOT", [even, big])(n)] == [3]
