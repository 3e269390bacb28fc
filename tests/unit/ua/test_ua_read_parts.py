"""The reading side without a server: FETCH data, SEARCH keys, BODYSTRUCTURE
attachments, the message view, safe attachment names, the Maildir."""

from __future__ import annotations

import os

import pytest

from mailstack.errors import MailstackError
from mailstack.ua import view
from mailstack.ua.imapread import attachment_names, parse_fetch, search_keys
from mailstack.ua.maildir import Maildir

# -- FETCH data as imaplib hands it over -----------------------------------------------


def test_parse_fetch_with_literals_lists_and_quoted_strings() -> None:
    header = b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\n"
    data = [
        (b'3 (UID 17 FLAGS (\\Seen $Label) RFC822.SIZE 120 '
         b'INTERNALDATE "05-Jan-2026 10:00:00 +0000" '
         b"BODY[HEADER.FIELDS (DATE FROM TO SUBJECT)] {%d}" % len(header), header),
        b")",
        b'4 (UID 18 FLAGS () RFC822.SIZE 9 INTERNALDATE "06-Jan-2026 10:00:00 +0000" '
        b'BODY[HEADER.FIELDS (DATE FROM TO SUBJECT)] "a \\"q\\" b" BODYSTRUCTURE NIL)',
    ]  # fmt: skip
    [(n3, first), (n4, second)] = parse_fetch(data)
    assert (n3, first["UID"], first["FLAGS"], first["RFC822.SIZE"]) == (
        3,
        "17",
        ["\\Seen", "$Label"],
        "120",
    )
    assert first["BODY[HEADER.FIELDS (DATE FROM TO SUBJECT)]"] == header
    assert (n4, second["FLAGS"], second["BODYSTRUCTURE"]) == (4, [], None)
    assert second["BODY[HEADER.FIELDS (DATE FROM TO SUBJECT)]"] == 'a "q" b'


def test_parse_fetch_refuses_what_ends_early() -> None:
    with pytest.raises(MailstackError, match="ended early"):
        parse_fetch([b"1 (UID 5 FLAGS (\\Seen"])
    with pytest.raises(MailstackError, match="malformed"):
        parse_fetch([b"X (UID 5)"])


def test_attachment_names_from_bodystructure() -> None:
    # What mailstack's IMAP server answered for a message `send` made.
    structure = parse_fetch([
        b'1 (BODYSTRUCTURE ((("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 3 1 '
        b"NIL NIL NIL NIL)"
        b'("text" "html" ("charset" "utf-8") NIL NIL "7bit" 2 1 NIL NIL NIL NIL) "alternative" '
        b'("boundary" "x") NIL NIL NIL)("text" "plain" NIL NIL NIL "base64" 6 1 NIL ("attachment" '
        b'("filename" "notes.txt")) NIL NIL)("image" "png" ("name" "a.png") NIL NIL "base64" 8 NIL '
        b'NIL NIL NIL)("application" "pdf" NIL NIL NIL "base64" 8 NIL ("attachment" ("filename*" '
        b"\"utf-8''r%C3%A9sum%C3%A9.pdf\")) NIL NIL) \"mixed\" (\"boundary\" \"y\") NIL NIL NIL))"
    ])[0][1]["BODYSTRUCTURE"]  # fmt: skip
    assert attachment_names(structure) == ["notes.txt", "a.png", "résumé.pdf"]
    plain = parse_fetch([b'1 (BODYSTRUCTURE ("text" "plain" NIL NIL NIL "7bit" 3 1))'])
    assert attachment_names(plain[0][1]["BODYSTRUCTURE"]) == []


# -- --search ---------------------------------------------------------------------------


def test_search_keys() -> None:
    keys, utf8 = search_keys('from:alice subject:"do you" unseen since:2026-01-01 larger:100 word')
    assert keys == [b"FROM", b'"alice"', b"SUBJECT", b'"do you"', b"UNSEEN", b"SENTSINCE",
                    b"1-Jan-2026", b"LARGER", b"100", b"TEXT", b'"word"']  # fmt: skip
    assert not utf8
    keys, utf8 = search_keys("subject:grüße")
    assert keys == [b"SUBJECT", b"{7+}\r\ngr\xc3\xbc\xc3\x9fe"] and utf8  # RFC 7888 literal
    assert search_keys("") == ([b"ALL"], False)
    assert search_keys('subject:"a \\" b"')[0][1] == b'"a \\" b"'


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("colour:red", "unknown term"),
        ("since:yesterday", "YYYY-MM-DD"),
        ("larger:big", "expected larger:OCTETS"),
        ("from:", "expected from:TEXT"),
        ('subject:"open', "No closing quotation"),
    ],
)
def test_bad_search(query: str, said: str) -> None:
    with pytest.raises(MailstackError, match=said):
        search_keys(query)


# -- the view ---------------------------------------------------------------------------

MESSAGE = (
    b"From: =?utf-8?q?=C3=9Cnal?= <u@x.org>\r\nTo: bob@y.org\r\nSubject: menu\r\n"
    b"Date: Mon, 05 Jan 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n"
    b"--c\r\nContent-Type: text/html\r\n\r\n<p>Cr&ecirc;pes</p>\r\n--c--\r\n"
    b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"
    b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\n"
)


def test_show_renders_html_and_lists_attachments() -> None:
    shown = view.show(MESSAGE)
    assert shown.startswith("Date: Mon, 05 Jan 2026 10:00:00 +0000\nFrom: Ünal <u@x.org>\n")
    assert "Crêpes" in shown and "<p>" not in shown
    assert "1. a.txt (text/plain, 5 octets)" in shown
    assert "2. (unnamed) (message/rfc822," in shown and "inner body" not in shown


def test_summary_and_json() -> None:
    row = view.summary(1, "k", MESSAGE, ["\\Seen"])
    assert (row.sender, row.subject, row.attachments) == (
        "Ünal <u@x.org>",
        "menu",
        ["a.txt", "(unnamed)"],
    )
    assert '"from": "Ünal <u@x.org>"' in view.json_list([row])
    table = view.table([row], total=1, page=1, pages=1)
    assert "2026-01-05 10:00" in table and "@\\Seen" in table


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("/abs/path.txt", "path.txt"),
        ("C:\\Windows\\evil.exe", "evil.exe"),
        (".bashrc", "bashrc"),
        ("..", "attachment-3"),
        ("", "attachment-3"),
        (None, "attachment-3"),
        ("bell\x07\nname.txt", "bellname.txt"),
        ("é" * 300, "é" * 100),
    ],
)
def test_safe_filename(name: str | None, safe: str) -> None:
    assert view.safe_filename(name, 3) == safe


def test_save_attachments_never_overwrites_or_follows_links(tmp_path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (tmp_path / "victim").write_bytes(b"keep me")
    os.symlink(tmp_path / "victim", target / "a.txt")
    written = view.save_attachments(MESSAGE, target)
    assert [p.name for p in written] == ["a-2.txt", "attachment-2"]
    assert (tmp_path / "victim").read_bytes() == b"keep me"
    assert (target / "a-2.txt").read_bytes() == b"hello"


# -- the Maildir --------------------------------------------------------------------------


def test_maildir_delivery_uidls_and_seen(tmp_path) -> None:
    box = Maildir(tmp_path / "Mail")
    first = box.deliver(b"Subject: one\r\n\r\n1\r\n")
    box.remember("bob@y.org", "u1", first)
    second = box.deliver(b"Subject: two\r\n\r\n2\r\n")
    box.remember("bob@y.org", "u2", second)
    box.remember("carol@y.org", "u1", second)
    assert box.uidls("bob@y.org") == {"u1": first, "u2": second}
    assert list((tmp_path / "Mail" / "tmp").iterdir()) == []
    messages = box.messages()
    assert [m.key for m in messages] == [first, second]
    box.mark_seen(messages[0])
    assert [m.flags for m in box.messages()] == ["S", ""]
    assert (tmp_path / "Mail" / "cur" / f"{first}:2,S").exists()
    box.keep_only("bob@y.org", {"u2"})
    assert box.uidls("bob@y.org") == {"u2": second}
    assert box.uidls("carol@y.org") == {"u1": second}  # another account's are left alone
