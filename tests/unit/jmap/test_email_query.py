"""Email/query and Email/queryChanges (RFC 8621 §4.4-4.5, RFC 8620 §5.5-5.6)
against the real store, through the dispatcher."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import Jmap, message
from mailstack.jmap.email_query import CACHED_QUERIES, TextQuery, collate


def day(n: int) -> datetime:
    return datetime(2026, 12, n, 12, 0, tzinfo=UTC)


async def query(jmap: Jmap, **args: Any) -> list[str]:
    return list((await jmap.call("Email/query", **args))["ids"])


@pytest.fixture
async def three(jmap: Jmap) -> list[str]:
    """Three emails in INBOX, received on days 1, 2, 3 (ids oldest first)."""
    return [
        await jmap.add(message("Alpha", body="apples and pears", to="Carol <carol@x.test>"),
                       when=day(1), flags=("\\Seen",)),
        await jmap.add(message("beta", sender="Zed <zed@example.org>", body="bananas" * 100),
                       when=day(2), flags=("\\Flagged", "$Work")),
        await jmap.add(message("Re: gamma", sender="bob@example.org", body="cherries",
                               extra="Cc: Dave <dave@x.test>\r\nX-Tag: urgent stuff\r\n"),
                       when=day(3)),
    ]


async def test_inbox_newest_first_with_limit_position_and_total(
    jmap: Jmap, three: list[str]
) -> None:
    inbox = await jmap.mailbox_id()
    response = await jmap.call(
        "Email/query", filter={"inMailbox": inbox},
        sort=[{"property": "receivedAt", "isAscending": False}], limit=2, calculateTotal=True,
    )
    assert response["ids"] == [three[2], three[1]]
    assert response["total"] == 3 and response["position"] == 0
    assert response["canCalculateChanges"] is True
    assert response["queryState"] == str(await jmap.store.account_state(jmap.user.id))
    assert await query(jmap, filter={"inMailbox": inbox}, position=2) == [three[0]]
    # RFC 8620 §5.5: a negative position counts from the end.
    assert await query(jmap, position=-1) == [three[0]]
    assert await query(jmap, position=9) == []
    assert await query(jmap, filter={"inMailbox": await jmap.mailbox_id("Trash")}) == []
    assert await query(jmap, filter={"inMailbox": "Mnope"}) == []


async def test_metadata_conditions(jmap: Jmap, three: list[str]) -> None:
    a, b, c = three
    trash = await jmap.add(message("Trashed"), mailbox="Trash", when=day(4))
    inbox = await jmap.mailbox_id()
    assert await query(jmap, filter={"inMailboxOtherThan": [inbox]}) == [trash]
    assert await query(jmap, filter={"before": "2026-12-02T12:00:00Z"}) == [a]
    assert await query(jmap, filter={"after": "2026-12-02T12:00:00Z"}) == [trash, c, b]
    assert await query(jmap, filter={"minSize": 500}) == [b]
    assert set(await query(jmap, filter={"maxSize": 500})) == {a, c, trash}
    assert await query(jmap, filter={"hasKeyword": "$seen"}) == [a]
    assert await query(jmap, filter={"hasKeyword": "$work"}) == [b]  # case-insensitive
    assert await query(jmap, filter={"notKeyword": "$flagged", "inMailbox": inbox}) == [c, a]


async def test_text_conditions_read_the_stored_parse(jmap: Jmap, three: list[str]) -> None:
    a, b, c = three
    assert await query(jmap, filter={"text": "pears"}) == [a]
    assert await query(jmap, filter={"text": "zed"}) == [b]  # From holds it
    assert await query(jmap, filter={"body": "cherries"}) == [c]
    assert await query(jmap, filter={"body": "zed"}) == []
    assert await query(jmap, filter={"from": "zed@example"}) == [b]
    assert await query(jmap, filter={"to": "carol"}) == [a]
    assert await query(jmap, filter={"cc": "dave"}) == [c]
    assert await query(jmap, filter={"bcc": "dave"}) == []
    assert await query(jmap, filter={"subject": "GAMMA"}) == [c]
    assert await query(jmap, filter={"text": '"apples and"'}) == [a]
    assert await query(jmap, filter={"text": '"and apples"'}) == []
    assert await query(jmap, filter={"header": ["X-Tag"]}) == [c]
    assert await query(jmap, filter={"header": ["x-tag", "URGENT"]}) == [c]
    assert await query(jmap, filter={"header": ["x-tag", "calm"]}) == []
    assert await query(jmap, filter={"hasAttachment": True}) == []
    assert len(await query(jmap, filter={"hasAttachment": False})) == 3


async def test_has_attachment(jmap: Jmap) -> None:
    raw = (
        b"From: a@x.test\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
        b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=r.pdf\r\n"
        b"\r\n%PDF\r\n--b--\r\n"
    )
    with_file = await jmap.add(raw)
    await jmap.add(message("plain"))
    assert await query(jmap, filter={"hasAttachment": True}) == [with_file]


async def test_operators(jmap: Jmap, three: list[str]) -> None:
    a, b, c = three
    either = {"operator": "OR", "conditions": [{"hasKeyword": "$seen"}, {"text": "cherries"}]}
    assert await query(jmap, filter=either) == [c, a]
    assert await query(jmap, filter={"operator": "NOT", "conditions": [either]}) == [b]
    both = {"operator": "AND", "conditions": [either, {"minSize": 1}, {"body": "apples"}]}
    assert await query(jmap, filter=both) == [a]
    assert await query(jmap, filter={"operator": "AND", "conditions": []}) == [c, b, a]
    assert await query(jmap, filter={"operator": "OR", "conditions": []}) == []


async def test_sorts_and_collations(jmap: Jmap, three: list[str]) -> None:
    a, b, c = three

    async def by(*comparators: dict[str, Any]) -> list[str]:
        return await query(jmap, sort=list(comparators))

    assert (await by({"property": "size"}))[-1] == b
    assert (await by({"property": "size", "isAscending": False}))[0] == b
    assert await by({"property": "receivedAt"}) == [a, b, c]
    # The base subject: "Re: gamma" sorts as "gamma"; case folded by default.
    assert await by({"property": "subject"}) == [a, b, c]
    # i;octet puts "Alpha" (A = 0x41) before "beta" but "Re: gamma" -> "gamma" after both.
    assert await by({"property": "subject", "collation": "i;octet"}) == [a, b, c]
    # From: the name, else the address: "Alice" < "bob@example.org" < "Zed".
    assert await by({"property": "from"}) == [a, c, b]
    assert await by({"property": "from", "collation": "i;octet"}) == [a, b, c]
    assert (await by({"property": "to", "isAscending": False}))[0] == a  # Carol > Bob
    assert await by({"property": "hasKeyword", "keyword": "$flagged", "isAscending": False},
                    {"property": "receivedAt"}) == [b, a, c]


async def test_sent_at_sort(jmap: Jmap) -> None:
    late = await jmap.add(message("x", date="Tue, 08 Dec 2026 10:00:00 +0000"), when=day(1))
    early = await jmap.add(message("y", date="Sun, 06 Dec 2026 10:00:00 +0000"), when=day(2))
    undated = await jmap.add(b"From: a@x.test\r\nSubject: z\r\n\r\nno date\r\n", when=day(3))
    assert await query(jmap, sort=[{"property": "sentAt"}]) == [undated, early, late]
    assert await query(jmap, sort=[{"property": "sentAt", "isAscending": False}]) == [
        late, early, undated
    ]


async def thread_of(jmap: Jmap, email: str) -> int:
    number = int(email[1:])
    return int((await jmap.store.emails_by_id(jmap.user.id, [number]))[number].thread_id)


REPLY = "In-Reply-To: <plans@example.org>\r\nReferences: <plans@example.org>\r\n"


async def test_threads_collapse_and_thread_keywords(jmap: Jmap) -> None:
    first = await jmap.add(message("Plans", msgid="plans"), when=day(1), flags=("\\Seen",))
    reply = await jmap.add(message("Re: Plans", body="ok", extra=REPLY), when=day(2))
    other = await jmap.add(message("Unrelated"), when=day(3), flags=("\\Seen",))
    assert await thread_of(jmap, first) == await thread_of(jmap, reply)
    assert await thread_of(jmap, first) != await thread_of(jmap, other)
    assert await query(jmap, collapseThreads=True) == [other, reply]
    collapsed = await jmap.call("Email/query", collapseThreads=True, calculateTotal=True)
    assert collapsed["total"] == 2
    assert await query(jmap, filter={"allInThreadHaveKeyword": "$seen"}) == [other]
    assert await query(jmap, filter={"someInThreadHaveKeyword": "$seen"}) == [other, reply, first]
    assert await query(jmap, filter={"noneInThreadHaveKeyword": "$seen"}) == []
    assert await query(
        jmap, sort=[{"property": "allInThreadHaveKeyword", "keyword": "$seen"},
                    {"property": "receivedAt", "isAscending": False}]
    ) == [reply, first, other]
    assert await query(
        jmap, sort=[{"property": "someInThreadHaveKeyword", "keyword": "$seen",
                     "isAscending": False}, {"property": "receivedAt"}]
    ) == [first, reply, other]


async def test_anchor(jmap: Jmap, three: list[str]) -> None:
    a, b, c = three
    response = await jmap.call("Email/query", anchor=b, anchorOffset=0, limit=1)
    assert response["ids"] == [b] and response["position"] == 1
    assert await query(jmap, anchor=b, anchorOffset=1) == [a]
    assert await query(jmap, anchor=b, anchorOffset=-5, position=2) == [c, b, a]
    error = await jmap.error("Email/query", anchor="E999999")
    assert error["type"] == "anchorNotFound"


async def test_deleted_emails_are_invisible(jmap: Jmap, three: list[str]) -> None:
    await jmap.add(message("gone"), flags=("\\Deleted",))
    assert set(await query(jmap)) == set(three)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"filter": {"unknown": 1}}, "unsupportedFilter"),
        ({"filter": {"operator": "XOR", "conditions": []}}, "unsupportedFilter"),
        ({"sort": [{"property": "preview"}]}, "unsupportedSort"),
        ({"sort": [{"property": "subject", "collation": "i;klingon"}]}, "unsupportedSort"),
        ({"sort": [{"property": "hasKeyword"}]}, "invalidArguments"),
        ({"sort": "receivedAt"}, "invalidArguments"),
        ({"filter": {"before": "yesterday"}}, "invalidArguments"),
        ({"filter": {"minSize": -1}}, "invalidArguments"),
        ({"filter": {"hasKeyword": "bad keyword"}}, "invalidArguments"),
        ({"filter": {"header": []}}, "invalidArguments"),
        ({"filter": [1]}, "invalidArguments"),
        ({"limit": -1}, "invalidArguments"),
        ({"position": "0"}, "invalidArguments"),
        ({"collapseThreads": "yes"}, "invalidArguments"),
        ({"accountId": "A999"}, "accountNotFound"),
    ],
)
async def test_bad_arguments(jmap: Jmap, args: dict[str, Any], error: str) -> None:
    assert (await jmap.error("Email/query", **args))["type"] == error


async def test_deep_filter_is_refused_not_recursed(jmap: Jmap) -> None:
    spec: dict[str, Any] = {"hasKeyword": "$seen"}
    for _ in range(200):
        spec = {"operator": "NOT", "conditions": [spec]}
    assert (await jmap.error("Email/query", filter=spec))["type"] == "unsupportedFilter"


async def test_query_changes(jmap: Jmap, three: list[str]) -> None:
    a, b, c = three
    inbox = await jmap.mailbox_id()
    args: dict[str, Any] = {"filter": {"inMailbox": inbox, "notKeyword": "$seen"}}
    before = await jmap.call("Email/query", **args)
    assert before["ids"] == [c, b]
    state = before["queryState"]
    unchanged = await jmap.call("Email/queryChanges", sinceQueryState=state, **args)
    assert unchanged["removed"] == [] and unchanged["added"] == []
    assert unchanged["newQueryState"] == state

    d = await jmap.add(message("delta"), when=day(4))
    seen = await jmap.call("Email/set", update={b: {"keywords/$seen": True}})
    assert seen["updated"] == {b: None}
    changes = await jmap.call("Email/queryChanges", sinceQueryState=state, calculateTotal=True,
                              **args)
    assert changes["oldQueryState"] == state
    assert changes["newQueryState"] == (await jmap.call("Email/query", **args))["queryState"]
    assert b in changes["removed"] and d not in changes["removed"]
    assert changes["added"] == [{"id": d, "index": 0}]
    assert changes["total"] == 2
    # Applying the changes to the old results gives the new ones.
    results = [i for i in before["ids"] if i not in changes["removed"]]
    for item in changes["added"]:
        results.insert(item["index"], item["id"])
    assert results == (await jmap.call("Email/query", **args))["ids"] == [d, c]

    too_many = await jmap.error("Email/queryChanges", sinceQueryState=state, maxChanges=1, **args)
    assert too_many["type"] == "tooManyChanges"
    for bad in ("999999", "x", "-1"):
        error = await jmap.error("Email/queryChanges", sinceQueryState=bad, **args)
        assert error["type"] == "cannotCalculateChanges"
    assert (await jmap.error("Email/queryChanges", **args))["type"] == "invalidArguments"


async def test_query_changes_with_collapsed_threads(jmap: Jmap) -> None:
    first = await jmap.add(message("Plans", msgid="plans"), when=day(1))
    before = await jmap.call("Email/query", collapseThreads=True)
    assert before["ids"] == [first]
    reply = await jmap.add(message("Re: Plans", extra=REPLY), when=day(2))
    changes = await jmap.call(
        "Email/queryChanges", collapseThreads=True, sinceQueryState=before["queryState"]
    )
    # The reply now stands for the thread: the first email left the results.
    assert first in changes["removed"]
    assert changes["added"] == [{"id": reply, "index": 0}]


def test_text_query_terms_and_spans() -> None:
    query = TextQuery.parse('Fish "big CHIPS"  ')
    assert query.terms == ("fish", "big chips")
    assert query.matches("Big chips and fish!")
    assert not query.matches("big fish, chips")
    assert query.spans("FISH and big chips") == [(0, 4), (9, 18)]
    assert TextQuery.parse("").matches(None)


def test_collations() -> None:
    assert collate("i;ascii-casemap", "ÉCOLE Abc") == "École abc"
    assert collate("i;unicode-casemap", "Straße") == collate("i;unicode-casemap", "STRASSE")
    assert collate("i;octet", "B") < collate("i;octet", "a")
    words = ["10 apples", "9 pears", "plums", "0"]
    numeric = sorted(words, key=lambda t: collate("i;ascii-numeric", t))
    assert numeric == ["0", "9 pears", "10 apples", "plums"]


async def test_results_are_kept_by_state_and_bounded(jmap: Jmap, three: list[str]) -> None:
    a, b, c = three
    cache = jmap.node.jmap_shared.email_queries
    assert await query(jmap, filter={"notKeyword": "$seen"}) == [c, b]
    assert len(cache) == 1
    # The same query at the same state is answered from what was kept...
    assert await query(jmap, filter={"notKeyword": "$seen"}) == [c, b]
    assert len(cache) == 1
    # ...and a change of state is a new run.
    await jmap.call("Email/set", update={c: {"keywords/$seen": True}})
    assert await query(jmap, filter={"notKeyword": "$seen"}) == [b]
    for size in range(CACHED_QUERIES + 5):
        await query(jmap, filter={"minSize": size})
    assert len(cache) == CACHED_QUERIES
