"""Whatever a message looks like, FETCH ENVELOPE/BODY/BODYSTRUCTURE is valid
IMAP that an independent parser (imapclient's) reads back."""

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imap_fuzz_store import open_store
from imapclient.response_parser import parse_fetch_response
from transcript import Client, setup_account

from support import append

HEADERS = [
    b"Subject: =?utf-8?b?w6l0w6k=?=",
    b'Subject: caf\xc3\xa9 "quoted" \\ back',
    b'From: "Doe, John" <john@x.org>, Group: a@b.c, <d@e.f>;',
    b"From: broken <<@>",
    b"To: undisclosed-recipients:;",
    b"Content-Type: multipart/mixed; boundary=zz",
    b'Content-Type: multipart/alternative; boundary="zz"',
    b"Content-Type: message/rfc822",
    b"Content-Type: text/plain; charset*=utf-8''%E2%82%AC; name*0=a; name*1=b",
    b"Content-Type: text/html",
    b"Content-Type: ;;;",
    b'Content-Disposition: attachment; filename="x y.pdf"',
    b"Content-Language: en, fr",
    b"Content-Transfer-Encoding: base64",
    b"Content-ID: <id@x>",
    b"In-Reply-To: <a@b>",
    b"Date: garbage",
    b" folded continuation",
]
BODIES = [
    b"",
    b"plain text\r\n",
    b"--zz\r\nContent-Type: text/plain\r\n\r\none\r\n--zz\r\n\r\ntwo\r\n--zz--\r\n",
    b"--zz\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx\r\n--zz--\r\n",
    b"Subject: inner\r\nContent-Type: multipart/mixed; boundary=yy\r\n\r\n"
    b"--yy\r\n\r\ni\r\n--yy--\r\n",
    b"--zz\r\n--zz\r\n--zz--",
    b"\x00\xff\r\n.\r\n",
]

_state: dict = {}


async def _client() -> tuple[Client, int]:
    if "client" not in _state:
        store = await open_store(Path(tempfile.mkdtemp()) / "fuzz.db")
        _account, inbox = await setup_account(store, 0)
        client = Client(store)
        await client.login()
        _state["client"] = client
        _state["inbox"] = inbox.id
    return _state["client"], _state["inbox"]


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.sampled_from(HEADERS), max_size=6),
    st.sampled_from(BODIES),
    st.sampled_from([b"\r\n", b"\n"]),
)
def test_structure_responses_parse(headers, body, eol):
    raw = eol.join(headers) + eol + eol + body.replace(b"\r\n", eol)

    async def one() -> list[bytes]:
        client, inbox = await _client()
        uid = await append(client.store, inbox, raw)
        await client.send("s SELECT INBOX")
        await client.session.run(
            b"f UID FETCH %d (ENVELOPE BODY BODYSTRUCTURE BODY.PEEK[1.MIME] BODY.PEEK[2.TEXT])\r\n"
            % uid
        )
        out = bytes(client.channel.out)
        client.channel.out.clear()
        return out

    loop = _state.setdefault("loop", asyncio.new_event_loop())
    out = loop.run_until_complete(one())
    assert out.endswith(b"f OK FETCH completed\r\n"), out
    response = out[: out.rindex(b"f OK")]
    assert response.startswith(b"* ")
    # imapclient reads what imaplib gives it: "N (...)" with the literals cut
    # out as (line, literal) pairs.
    parts: list = []
    rest = response[2:].rstrip(b"\r\n").replace(b" FETCH ", b" ", 1)
    while b"}\r\n" in rest:
        head, _, tail = rest.partition(b"}\r\n")
        size = int(head[head.rindex(b"{") + 1 :])
        parts.append((head + b"}", tail[:size]))
        rest = tail[size:]
    parts.append(rest)
    parsed = parse_fetch_response(parts)
    item = next(iter(parsed.values()))
    assert b"BODYSTRUCTURE" in item and b"ENVELOPE" in item and b"BODY" in item
