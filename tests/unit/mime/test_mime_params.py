"""Content-Type, Content-Disposition and RFC 2231 parameters."""

from __future__ import annotations

from mailstack.mime.params import (
    parse_content_type,
    parse_disposition,
    parse_language,
    strip_comments,
)


def test_content_type_basics():
    assert parse_content_type("text/plain") == ("text", "plain", [])
    assert parse_content_type(' Text/HTML ; Charset = "UTF-8" ; format=flowed') == (
        "text", "html", [("charset", "UTF-8"), ("format", "flowed")])
    assert parse_content_type('multipart/mixed; boundary="a;b=c"; x=1') == (
        "multipart", "mixed", [("boundary", "a;b=c"), ("x", "1")])
    assert parse_content_type('text/plain; name="a \\"q\\" b"') == (
        "text", "plain", [("name", 'a "q" b')])


def test_malformed_content_types():
    for value in ("", "text", "/plain", "text/", "te xt/plain", "text;/plain", "text/pl ain"):
        assert parse_content_type(value) is None, value
    # Broken parameters are dropped, the type survives.
    assert parse_content_type("text/plain; ; junk; =v; ok=1; charset") == (
        "text", "plain", [("ok", "1")])
    assert parse_content_type('text/plain; name="unterminated') == (
        "text", "plain", [("name", "unterminated")])


def test_duplicate_parameters_keep_the_first():
    assert parse_content_type("a/b; x=1; X=2")[2] == [("x", "1")]


def test_rfc2231_continuations():
    # RFC 2231 §3: plain continuations are concatenated in index order.
    assert parse_content_type('a/b; name*1="def"; name*0="abc"')[2] == [("name", "abcdef")]
    # §4: charset and language in the first extended segment, %XX octets.
    assert parse_content_type("a/b; name*=iso-8859-1'fr'caf%E9")[2] == [("name", "café")]
    assert parse_content_type("a/b; name*0*=utf-8''%E2%82; name*1*=%AC")[2] == [("name", "€")]
    # An unknown charset still gives text.
    assert parse_content_type("a/b; name*=x-bogus''abc")[2] == [("name", "abc")]
    # A continuation without its start keeps nothing it cannot place.
    assert parse_content_type("a/b; name*1=x")[2] == []
    # Encoded words in quoted values are kept raw (RFC 3501 wants them raw).
    assert parse_content_type('a/b; name="=?utf-8?q?x?="')[2] == [("name", "=?utf-8?q?x?=")]


def test_disposition_and_language():
    assert parse_disposition("Attachment; FileName=a.txt") == (
        "attachment", [("filename", "a.txt")])
    assert parse_disposition("inline") == ("inline", [])
    assert parse_disposition("; filename=x") is None
    assert parse_language("en-US (English), fr") == ["en-US", "fr"]
    assert parse_language(" , ") is None


def test_strip_comments():
    assert strip_comments('a (b (c) d) "e (f)" g') == 'a  "e (f)" g'
    assert strip_comments("a (unclosed") == "a "
    assert strip_comments("plain") == "plain"
