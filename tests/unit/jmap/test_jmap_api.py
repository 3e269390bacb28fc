"""The JMAP dispatcher (RFC 8620 §3) without HTTP: request checks, method
calls in order, result references (§3.7, with `*`), creation ids, errors."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mailstack.config import Config
from mailstack.errors import StoreUnavailable
from mailstack.jmap import api
from mailstack.jmap.api import RequestError, decode, parse_request, pointer, process
from mailstack.jmap.method import (
    Args,
    Call,
    Method,
    MethodError,
    check_objects_in_get,
    check_objects_in_set,
    created_id,
)

CORE = "urn:ietf:params:jmap:core"
TEST = "urn:example:test"
USER: Any = SimpleNamespace(id=7, address="bob@example.org")


def node(**jmap: Any) -> Any:
    return SimpleNamespace(config=Config.from_table({"jmap": jmap}, Path("/nonexistent")))


async def make(call: Call, args: Args) -> Args:
    """A toy /set: creates every creation id, numbering from 100."""
    created = {}
    for number, creation_id in enumerate(args.get("create", {}), start=100):
        created[creation_id] = {"id": f"X{number}"}
        call.created_ids[creation_id] = f"X{number}"
    return {"created": created}


async def listing(call: Call, args: Args) -> Args:
    return {"list": [{"id": "a", "tags": ["x", "y"]}, {"id": "b", "tags": ["z"]}], "ids": ["a"]}


async def fail(call: Call, args: Args) -> Args:
    raise RuntimeError("secret internals /var/lib/db")


async def away(call: Call, args: Args) -> Args:
    raise StoreUnavailable("the PostgreSQL store is unavailable: 127.0.0.1:5432 refused")


async def refuse(call: Call, args: Args) -> Args:
    raise MethodError("invalidArguments", "no", arguments=["x"])


async def chain(call: Call, args: Args) -> Args:
    call.also.append(("Core/echo", {"followed": True}))
    return {"done": True}


async def echo(call: Call, args: Args) -> Args:
    return args


METHODS = {
    "Core/echo": Method(CORE, echo),
    "Thing/set": Method(TEST, make),
    "Thing/get": Method(TEST, listing),
    "Thing/fail": Method(TEST, fail),
    "Thing/away": Method(TEST, away),
    "Thing/refuse": Method(TEST, refuse),
    "Thing/chain": Method(TEST, chain),
}
KNOWN = api.capabilities(METHODS)


async def run(body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    request = parse_request(body, known=KNOWN, max_calls=16)
    return await process(node(), USER, request, session_state="s1", methods=METHODS, **kwargs)


def request(*calls: list[Any], using: tuple[str, ...] = (CORE, TEST), **extra: Any) -> Args:
    return {"using": list(using), "methodCalls": list(calls), **extra}


# --- the body and the Request type (§3.3, §3.6.1) -----------------------


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"\xff{}", b'{"a":1,"a":2}', b"[NaN]", b'{"a": Infinity}', b'"\\ud800"',
     b"[" * 100000],
)
def test_a_body_that_is_not_i_json_is_not_json(body):
    with pytest.raises(RequestError) as info:
        decode(body)
    assert info.value.problem() == {
        "type": "urn:ietf:params:jmap:error:notJSON",
        "status": 400,
        "detail": info.value.detail,
    }


def test_a_surrogate_pair_is_fine():
    assert decode(b'["\\ud83d\\ude00"]') == ["\U0001f600"]


@pytest.mark.parametrize(
    "value",
    [
        [],
        {"methodCalls": []},
        {"using": "core", "methodCalls": []},
        {"using": [1], "methodCalls": []},
        {"using": [CORE]},
        {"using": [CORE], "methodCalls": {}},
        {"using": [CORE], "methodCalls": [["Core/echo", {}]]},
        {"using": [CORE], "methodCalls": [["Core/echo", [], "c"]]},
        {"using": [CORE], "methodCalls": [[1, {}, "c"]]},
        {"using": [CORE], "methodCalls": [["Core/echo", {}, 0]]},
        {"using": [CORE], "methodCalls": [], "createdIds": []},
        {"using": [CORE], "methodCalls": [], "createdIds": {"a": 1}},
    ],
)
def test_what_is_not_a_request_is_not_request(value):
    with pytest.raises(RequestError) as info:
        parse_request(value, known=KNOWN, max_calls=16)
    assert info.value.type == "urn:ietf:params:jmap:error:notRequest"


def test_an_unknown_capability_is_a_request_level_error():
    with pytest.raises(RequestError) as info:
        parse_request(request(using=(CORE, "urn:example:nope")), known=KNOWN, max_calls=16)
    problem = info.value.problem()
    assert problem["type"] == "urn:ietf:params:jmap:error:unknownCapability"
    assert problem["status"] == 400
    assert "urn:example:nope" in problem["detail"]


def test_too_many_calls_is_the_limit_error_naming_the_limit():
    calls = [["Core/echo", {}, str(n)] for n in range(3)]
    parse_request(request(*calls), known=KNOWN, max_calls=3)
    with pytest.raises(RequestError) as info:
        parse_request(request(*calls), known=KNOWN, max_calls=2)
    problem = info.value.problem()
    assert problem["type"] == "urn:ietf:params:jmap:error:limit"
    assert problem["limit"] == "maxCallsInRequest"


def test_properties_outside_the_type_are_ignored():
    parsed = parse_request(
        request(["Core/echo", {}, "c"], **{"@type": "Request", "id": "r1"}),
        known=KNOWN,
        max_calls=16,
    )
    assert parsed.method_calls == [("Core/echo", {}, "c")]


# --- method calls (§3.5, §3.6.2) ----------------------------------------


async def test_calls_run_in_order_and_answer_with_their_call_ids():
    response = await run(request(["Core/echo", {"a": 1}, "0"], ["Core/echo", {"b": [2]}, "1"]))
    assert response == {
        "methodResponses": [["Core/echo", {"a": 1}, "0"], ["Core/echo", {"b": [2]}, "1"]],
        "sessionState": "s1",
    }


async def test_the_real_core_echo():
    request_ = parse_request(
        request(["Core/echo", {"hello": True}, "c"], using=(CORE,)),
        known=api.capabilities(api.method_table()),
        max_calls=16,
    )
    response = await process(node(), USER, request_, session_state="x")
    assert response["methodResponses"] == [["Core/echo", {"hello": True}, "c"]]


async def test_an_unknown_method_is_unknown_method_and_the_next_call_runs():
    response = await run(request(["Nope/get", {}, "0"], ["Core/echo", {}, "1"]))
    assert response["methodResponses"] == [
        ["error", {"type": "unknownMethod"}, "0"],
        ["Core/echo", {}, "1"],
    ]


async def test_a_method_whose_capability_is_not_used_is_unknown():
    response = await run(request(["Thing/get", {}, "0"], using=(CORE,)))
    assert response["methodResponses"] == [["error", {"type": "unknownMethod"}, "0"]]


async def test_a_method_error_carries_its_type_and_extra_properties():
    response = await run(request(["Thing/refuse", {}, "0"]))
    assert response["methodResponses"] == [
        ["error", {"type": "invalidArguments", "description": "no", "arguments": ["x"]}, "0"]
    ]


async def test_a_failing_handler_is_server_fail_without_its_text(caplog):
    with caplog.at_level(logging.ERROR, logger="mailstack.jmap"):
        response = await run(request(["Thing/fail", {}, "0"], ["Core/echo", {}, "1"]))
    assert response["methodResponses"] == [
        ["error", {"type": "serverFail"}, "0"],
        ["Core/echo", {}, "1"],
    ]
    assert "secret internals" not in api.encode(response).decode()
    assert any("Thing/fail" in r.getMessage() for r in caplog.records)


async def test_a_store_away_is_server_unavailable_and_the_next_call_runs():
    """RFC 8620 §3.6.2: serverUnavailable, a temporary error (a PostgreSQL
    restart), not serverFail; the store's words stay in the log."""
    response = await run(request(["Thing/away", {}, "0"], ["Core/echo", {}, "1"]))
    assert response["methodResponses"] == [
        ["error", {"type": "serverUnavailable"}, "0"],
        ["Core/echo", {}, "1"],
    ]
    assert "5432" not in api.encode(response).decode()


async def test_follow_up_invocations_answer_with_the_same_call_id():
    response = await run(request(["Thing/chain", {}, "c"], ["Core/echo", {"n": 2}, "d"]))
    assert response["methodResponses"] == [
        ["Thing/chain", {"done": True}, "c"],
        ["Core/echo", {"followed": True}, "c"],
        ["Core/echo", {"n": 2}, "d"],
    ]


# --- result references (§3.7) -------------------------------------------


def ref(result_of: str, name: str, path: str) -> Args:
    return {"resultOf": result_of, "name": name, "path": path}


async def test_a_result_reference_takes_a_value_from_an_earlier_response():
    response = await run(
        request(["Thing/get", {}, "g"], ["Core/echo", {"#ids": ref("g", "Thing/get", "/ids")}, "e"])
    )
    assert response["methodResponses"][1] == ["Core/echo", {"ids": ["a"]}, "e"]


async def test_star_maps_over_an_array_and_flattens_arrays():
    response = await run(
        request(
            ["Thing/get", {}, "g"],
            ["Core/echo", {"#ids": ref("g", "Thing/get", "/list/*/id")}, "e"],
            ["Core/echo", {"#tags": ref("g", "Thing/get", "/list/*/tags")}, "f"],
        )
    )
    assert response["methodResponses"][1][1] == {"ids": ["a", "b"]}
    assert response["methodResponses"][2][1] == {"tags": ["x", "y", "z"]}


@pytest.mark.parametrize(
    "reference",
    [
        ref("missing", "Thing/get", "/ids"),
        ref("g", "Thing/set", "/ids"),
        ref("g", "Thing/get", "/nothing"),
        ref("g", "Thing/get", "/list/2/id"),
        ref("g", "Thing/get", "/list/01/id"),
        ref("g", "Thing/get", "/list/-"),
        ref("g", "Thing/get", "ids"),
        {"resultOf": "g", "name": "Thing/get"},
        "g",
    ],
)
async def test_a_reference_that_cannot_be_evaluated_is_invalid_result_reference(reference):
    response = await run(request(["Thing/get", {}, "g"], ["Core/echo", {"#ids": reference}, "e"]))
    assert response["methodResponses"][1][0] == "error"
    assert response["methodResponses"][1][1]["type"] == "invalidResultReference"
    assert response["methodResponses"][1][2] == "e"


async def test_a_reference_to_an_error_response_fails():
    response = await run(
        request(["Nope/get", {}, "g"], ["Core/echo", {"#ids": ref("g", "Nope/get", "/ids")}, "e"])
    )
    assert response["methodResponses"][1][1]["type"] == "invalidResultReference"


async def test_an_argument_both_plain_and_referenced_is_invalid_arguments():
    response = await run(
        request(
            ["Thing/get", {}, "g"],
            ["Core/echo", {"ids": [], "#ids": ref("g", "Thing/get", "/ids")}, "e"],
        )
    )
    assert response["methodResponses"][1][1]["type"] == "invalidArguments"
    assert response["methodResponses"][1][1]["arguments"] == ["ids"]


def test_json_pointer_escapes_and_the_whole_document():
    document = {"a/b": {"m~n": 1}, "*": 2, "": 3}
    assert pointer(document, "") is document
    assert pointer(document, "/a~1b/m~0n") == 1
    assert pointer(document, "/*") == 2  # not an array: `*` is a plain name
    assert pointer(document, "/") == 3
    assert pointer([[1, 2], [3]], "/*") == [1, 2, 3]
    assert pointer([{"a": [{"b": 1}, {"b": 2}]}, {"a": [{"b": 3}]}], "/*/a/*/b") == [1, 2, 3]
    with pytest.raises(LookupError):
        pointer({"a": 1}, "/a/b")


# --- creation ids (§3.3, §5.3) ------------------------------------------


async def test_creation_ids_stand_for_created_ids_in_later_calls():
    response = await run(
        request(
            ["Thing/set", {"create": {"k1": {}, "k2": {}}}, "0"],
            ["Core/echo", {"ids": ["#k1", "#unknown", "Z"], "update": {"#k2": {"p": 1}}}, "1"],
            ["Core/echo", {"destroy": ["#k2"]}, "2"],
        )
    )
    assert response["methodResponses"][1][1] == {
        "ids": ["X100", "#unknown", "Z"],
        "update": {"X101": {"p": 1}},
    }
    assert response["methodResponses"][2][1] == {"destroy": ["X101"]}
    assert "createdIds" not in response


async def test_created_ids_come_back_when_given_and_count_from_the_request():
    response = await run(
        request(
            ["Core/echo", {"ids": ["#old"]}, "0"],
            ["Thing/set", {"create": {"new": {}}}, "1"],
            createdIds={"old": "X1"},
        )
    )
    assert response["methodResponses"][0][1] == {"ids": ["X1"]}
    assert response["createdIds"] == {"old": "X1", "new": "X100"}


def test_created_id_for_handlers():
    call = Call(node(), USER, frozenset(), "c", {"k": "E5"})
    assert created_id(call, "#k") == "E5"
    assert created_id(call, "#other") == "#other"
    assert created_id(call, "E9") == "E9"
    assert created_id(call, None) is None


def test_objects_in_get_and_set_are_bounded():
    call = Call(node(max_objects_in_get=3, max_objects_in_set=2), USER, frozenset(), "c")
    check_objects_in_get(call, 3)
    with pytest.raises(MethodError) as info:
        check_objects_in_get(call, 4)
    assert info.value.type == "requestTooLarge"
    check_objects_in_set(call, {"create": {"a": {}}, "destroy": ["x"]})
    with pytest.raises(MethodError):
        check_objects_in_set(call, {"create": {"a": {}}, "update": {"b": {}}, "destroy": ["x"]})
