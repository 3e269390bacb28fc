"""HTML mail made safe (webmail/sanitize.py): every message of our hostile
corpus (tests/hostile.py) comes out with nothing that runs and nothing that
fetches without consent."""

from __future__ import annotations

import email
from email import policy

import pytest

from hostile import corpus
from mailstack.webmail.sanitize import sanitize

# What must never survive, in any letter case.
FORBIDDEN = (
    "<script", "<style", "<svg", "<math", "<iframe", "<object", "<embed", "<form",
    "<input", "<button", "<base", "<meta", "<link", "<video", "<audio", "<source",
    "<picture", "<template", "<noscript", "onerror", "onload", "onfocus", "ontoggle",
    "onclick", "javascript:", "vbscript:", "data:", "srcset", "formaction", "ping=",
    "background=", "url(", "expression(", "-moz-binding", "position", "z-index",
    "@import", "evil.test",
)  # fmt: skip


def html_parts(raw: bytes) -> list[str]:
    message = email.message_from_bytes(raw, policy=policy.default)
    out = []
    for part in message.walk():
        if part.get_content_type() == "text/html":
            try:
                out.append(part.get_content())
            except (LookupError, ValueError):
                out.append(part.get_payload(decode=True).decode("latin-1"))
    return out


def test_the_corpus_is_big_enough() -> None:
    assert len(corpus()) >= 40


@pytest.mark.parametrize(("name", "raw"), corpus(), ids=[name for name, _ in corpus()])
def test_nothing_that_runs_or_fetches_survives(name: str, raw: bytes) -> None:
    for html in html_parts(raw):
        cleaned = sanitize(html, cid_url=lambda cid: f"/part/{cid}").html.lower()
        for bad in FORBIDDEN:
            assert bad not in cleaned, f"{name}: {bad!r} survived in {cleaned!r}"


def test_remote_images_are_blocked_until_allowed_then_proxied() -> None:
    html = '<p>hi <img src="https://shop.example/logo.png" alt="logo"></p>'
    blocked = sanitize(html)
    assert blocked.blocked_images == 1 and "shop.example" not in blocked.html
    assert 'alt="logo"' in blocked.html
    allowed = sanitize(html, proxy_url=lambda url: f"/proxy/image?u={len(url)}")
    assert allowed.proxied_images == 1 and 'src="/proxy/image?u=29"' in allowed.html


def test_css_calls_nothing_but_colours_and_arithmetic() -> None:
    html = (
        '<p style="color: rgb(200, 0, 0); width: calc(100% - 2px); height: attr(x); '
        "font-family: \\75 rl(x); margin: /* */ 1px; border-width: var(--x)\">x</p>"
    )
    out = sanitize(html).html
    assert "rgb(200, 0, 0)" in out and "calc(100% - 2px)" in out
    for gone in ("attr(", "var(", "font-family", "margin", "\\"):
        assert gone not in out


def test_what_mail_needs_survives() -> None:
    html = (
        '<table border="1" cellpadding="4"><tr><td style="color: #c00; font-weight: bold; '
        'position: absolute">cell</td></tr></table>'
        '<a href="https://example.org/a?b=c">link</a> <img src="cid:logo@example.org">'
        "<blockquote>quoted</blockquote><ul><li>one</li></ul>"
    )
    out = sanitize(html, cid_url=lambda cid: f"/part/{cid}").html
    assert 'style="color:#c00;font-weight:bold"' in out.replace(" ", "")
    assert 'href="https://example.org/a?b=c"' in out
    assert 'target="_blank"' in out and 'rel="noopener noreferrer"' in out
    assert 'src="/part/logo@example.org"' in out
    assert "<blockquote>quoted</blockquote>" in out and "<li>one</li>" in out
