"""Bad input to the Mailbox, Thread, Email/get, Email/parse and
SearchSnippet methods gets the RFC's errors (method-level or per object),
never serverFail."""

from __future__ import annotations

from typing import Any

import pytest

JUNK: list[Any] = [None, 0, -1, True, "x", "", [], {}, [None], [1, "a"], {"a": None},
                   "#nope", 2**70, {"operator": "XOR"}, {"operator": "AND", "conditions": 5}]
ARGUMENTS = {
    "Mailbox/get": ["ids", "properties"],
    "Mailbox/changes": ["sinceState", "maxChanges"],
    "Mailbox/query": ["filter", "sort", "position", "anchor", "anchorOffset", "limit",
                      "calculateTotal", "sortAsTree", "filterAsTree"],
    "Mailbox/queryChanges": ["sinceQueryState", "filter", "sort", "maxChanges", "upToId"],
    "Mailbox/set": ["create", "update", "destroy", "ifInState", "onDestroyRemoveEmails"],
    "Thread/get": ["ids", "properties"],
    "Thread/changes": ["sinceState", "maxChanges"],
    "Email/get": ["ids", "properties", "bodyProperties", "fetchTextBodyValues",
                  "fetchHTMLBodyValues", "fetchAllBodyValues", "maxBodyValueBytes"],
    "Email/parse": ["blobIds", "properties", "bodyProperties", "maxBodyValueBytes"],
    "SearchSnippet/get": ["filter", "emailIds"],
}
BASE = {
    "Mailbox/changes": {"sinceState": "0"},
    "Mailbox/queryChanges": {"sinceQueryState": "0"},
    "Thread/changes": {"sinceState": "0"},
    "Email/get": {"ids": []},
    "Thread/get": {"ids": []},
    "Email/parse": {"blobIds": []},
    "SearchSnippet/get": {"emailIds": []},
}
KNOWN_ERRORS = {"invalidArguments", "unsupportedFilter", "unsupportedSort", "anchorNotFound",
                "cannotCalculateChanges", "requestTooLarge", "stateMismatch",
                "tooManyChanges"}


@pytest.mark.parametrize("method", sorted(ARGUMENTS))
async def test_junk_arguments_get_rfc_errors(jmap: Any, method: str) -> None:
    for argument in ARGUMENTS[method]:
        for value in JUNK:
            args = {**BASE.get(method, {}), argument: value}
            (response,) = await jmap.request((method, args))
            if response[0] == "error":
                assert response[1]["type"] in KNOWN_ERRORS, (method, argument, value, response)
            else:
                assert response[0] == method


async def test_junk_objects_in_mailbox_set_get_set_errors(jmap: Any) -> None:
    got = await jmap.call("Mailbox/set", create={
        "a": None, "b": [], "c": {"name": None}, "d": {"name": "ok", "sortOrder": -1},
        "e": {"name": "ok2", "isSubscribed": "yes"}, "f": {"name": "x", "parentId": 5},
        "g": {"name": "y", "parentId": "#g"}, "h": {"name": "\x00"}})
    assert set(got["notCreated"]) == set("abcdefgh")
    got = await jmap.call("Mailbox/set", update={"M1": None, "M2": {"name": 5},
                                                 "M3": {"parentId": "M3"}, "zz": {}},
                          destroy=[5, None, "M0"])
    assert set(got["notUpdated"]) == {"M1", "M2", "M3", "zz"}
    assert len(got["notDestroyed"]) == 3
