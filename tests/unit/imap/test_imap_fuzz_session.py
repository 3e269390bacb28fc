"""Random commands to a selected session: every one gets a tagged OK, NO or
BAD, and none is ever a server error (no exception escapes a handler)."""

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imap_fuzz_store import open_store
from transcript import Client, setup_account

WORDS = [
    "FETCH", "STORE", "SEARCH", "COPY", "MOVE", "UID", "EXPUNGE", "SELECT", "EXAMINE",
    "LIST", "LSUB", "STATUS", "APPEND", "CREATE", "DELETE", "RENAME", "ENABLE", "ID",
    "NAMESPACE", "CHECK", "NOOP", "1", "2", "*", "1:*", "3:2", "0", "4294967295", "INBOX",
    "Trash", '"a/b"', "()", "(", ")", "FLAGS", "+FLAGS", "-FLAGS.SILENT", "\\Seen",
    "\\Deleted", "$kw", "BODY[]", "BODY.PEEK[1.MIME]", "BODY[HEADER.FIELDS (To)]",
    "BINARY[1]", "BINARY.SIZE[2]", "<0.5>", "ENVELOPE", "BODYSTRUCTURE", "RFC822",
    "MODSEQ", "(CHANGEDSINCE 1)", "(UNCHANGEDSINCE 1)", "OR", "NOT", "SINCE", "1-Jan-2000",
    "HEADER", "SUBJECT", "x", "{1+}\r\nx", "CHARSET", "UTF-8", "RETURN", "(MIN COUNT)",
    "(MESSAGES SIZE)", "%", '""', "CONDSTORE", "QRESYNC", "(QRESYNC (1 1))",
    "SORT", "THREAD", "REFERENCES", "ORDEREDSUBJECT", "(REVERSE DATE)", "(DISPLAYFROM)",
    "(UPDATE)", "(PARTIAL 1:2)", "(PARTIAL -1:-5)", "(SAVE)", "$", "CANCELUPDATE", '"z1"',
    "CATENATE", '(URL "/INBOX/;UID=1")', "(TEXT {1+}\r\nx)", "EMAILID", "THREADID", "E1",
    "(MAILBOXID)", "IMAP4rev2", "UTF8=ACCEPT", "UTF8", "(~{1+}\r\nx)", "COMPRESS",
]  # fmt: skip

_state: dict = {}


async def _client() -> Client:
    if "client" not in _state:
        store = await open_store(Path(tempfile.mkdtemp()) / "fuzz.db")
        await setup_account(store, 3)
        client = Client(store)
        await client.login()
        await client.send("s1 SELECT INBOX")
        _state["client"] = client
    return _state["client"]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=8))
def test_random_commands_never_fail_the_server(words):
    async def one() -> list[str]:
        client = await _client()
        if client.session.selected is None:
            await client.send("s2 SELECT INBOX")
        return await client.send("z1 " + " ".join(words))

    loop = _state.setdefault("loop", asyncio.new_event_loop())
    got = loop.run_until_complete(one())
    tagged = [line for line in got if line.startswith("z1 ")]
    assert tagged, got
    assert tagged[-1].split()[1] in ("OK", "NO", "BAD"), got
    assert "SERVERBUG" not in tagged[-1], got
