"""SearchSnippet/get (RFC 8621 §5) against the real store."""

from __future__ import annotations

from typing import Any

from jmap_mail_support import raw_message as message

from mailstack.jmap.snippet import filter_terms, highlight


def test_highlight_escapes_and_marks() -> None:
    assert highlight("Fish & <chips>", ["chips"]) == "Fish &amp; &lt;<mark>chips</mark>&gt;"
    assert highlight("nothing here", ["chips"]) is None
    long = "x " * 300 + "needle" + " y" * 300
    cut = highlight(long, ["needle"], 255)
    assert cut is not None and "<mark>needle</mark>" in cut
    assert len(cut.replace("<mark>", "").replace("</mark>", "")) <= 255


def test_terms_come_from_text_subject_body_but_not_not() -> None:
    spec = {"operator": "AND", "conditions": [
        {"text": "alpha"}, {"subject": "beta"}, {"body": '"gamma delta"'},
        {"operator": "NOT", "conditions": [{"text": "omega"}]}]}
    assert filter_terms(spec) == (["alpha", "beta"], ["alpha", "gamma delta"])


async def test_snippets(jmap: Any) -> None:
    match = await jmap.add(message("Subject: Quarterly <report>",
                                      body="The report is attached & ready.\r\n"))
    body_only = await jmap.add(message("Subject: Other", body="no report here\r\n"))
    nothing = await jmap.add(message("Subject: Nope", body="nothing\r\n"))
    got = await jmap.call("SearchSnippet/get", filter={"text": "report"},
                          emailIds=[match, body_only, nothing, "E999999"])
    assert got["list"] == [
        {"emailId": match, "subject": "Quarterly &lt;<mark>report</mark>&gt;",
         "preview": "The <mark>report</mark> is attached &amp; ready."},
        {"emailId": body_only, "subject": None, "preview": "no <mark>report</mark> here"},
        {"emailId": nothing, "subject": None, "preview": None},
    ]
    assert got["notFound"] == ["E999999"]


async def test_snippet_errors(jmap: Any) -> None:
    error = await jmap.error("SearchSnippet/get", filter={"colour": "x"}, emailIds=[])
    assert error["type"] == "unsupportedFilter"
    error = await jmap.error("SearchSnippet/get", filter=None, emailIds="E1")
    assert error["type"] == "invalidArguments"
