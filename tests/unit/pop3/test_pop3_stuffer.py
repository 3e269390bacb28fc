"""ByteStuffer: RETR's text a chunk at a time is the text of the whole."""

from __future__ import annotations

import random

import pytest

from mailstack.pop3.proto import ByteStuffer, format_message, top_end


def _whole(raw: bytes) -> bytes:
    return format_message(raw).split(b"\r\n", 1)[1]


def _chunked(raw: bytes, cuts: list[int]) -> bytes:
    stuffer = ByteStuffer()
    out = []
    start = 0
    for cut in [*sorted(cuts), len(raw)]:
        out.append(stuffer.feed(raw[start:cut]))
        start = cut
    return b"".join(out) + stuffer.end()


@pytest.mark.parametrize("raw", [
    b"", b".", b"\r", b"\n", b".\r\n.", b"a\r\n.b\r\n..c\r\n", b"x\n.y\n", b"a\r\r\n.\r",
    b"Subject: s\r\n\r\n.\r\n.\r\n", b"\r\n.\r\n", b"no end", b"..\n\r.\r\n",
    b"a\r\n\nb", b"a\r\n.\n", b"clean\r\nlines\r\n",
])
def test_every_way_of_cutting_gives_the_same_text(raw):
    want = _whole(raw)
    for i in range(len(raw) + 1):
        for j in range(i, len(raw) + 1):
            assert _chunked(raw, [i, j]) == want, (raw, i, j)


def test_random_messages_in_random_chunks():
    rng = random.Random(1939)
    for _ in range(300):
        raw = bytes(rng.choice(b"ab.\r\n") for _ in range(rng.randrange(60)))
        cuts = [rng.randrange(len(raw) + 1) for _ in range(rng.randrange(6))]
        assert _chunked(raw, cuts) == _whole(raw), (raw, cuts)


def test_top_end():
    raw = b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\nthree"
    assert top_end(raw, 0) == raw.index(b"one")
    assert top_end(raw, 2) == raw.index(b"three")
    assert top_end(raw, 3) is None
    assert top_end(b"A: 1\r\n", 0) is None
