"""SAVEDATE (RFC 8514): FETCH SAVEDATE and the SAVEDBEFORE / SAVEDON /
SAVEDSINCE / SAVEDATESUPPORTED search keys, on the real store."""

import datetime

from transcript import logged_in, message

from mailstack.imap.proto.commands import FetchItem, SearchKey
from mailstack.imap.proto.parser import parse_command

from support import append

LONG_AGO = datetime.datetime(2001, 9, 9, 1, 46, 40, tzinfo=datetime.UTC)


def test_grammar():
    fetch = parse_command(b"a FETCH 1 (SAVEDATE UID)\r\n").args
    assert fetch.items == (FetchItem("SAVEDATE"), FetchItem("UID"))
    search = parse_command(b"a SEARCH SAVEDON 9-Sep-2001 SAVEDATESUPPORTED\r\n").args
    assert search.key == SearchKey(
        "AND", (SearchKey("SAVEDON", (datetime.date(2001, 9, 9),)), SearchKey("SAVEDATESUPPORTED"))
    )


def _date(line: str) -> str:
    return line.split('SAVEDATE "', 1)[1].split('"', 1)[0].strip()


async def test_fetch_and_search_save_dates(store):
    c, account, inbox = await logged_in(store, 0)
    got = await c.send("c1 CAPABILITY")
    assert "SAVEDATE" in got[0].split()
    await append(store, inbox.id, message(1), (), LONG_AGO)
    await c.send("s1 SELECT INBOX")
    got = await c.send("f1 FETCH 1 (INTERNALDATE SAVEDATE)")
    assert got[0].startswith('* 1 FETCH (INTERNALDATE " 9-Sep-2001 01:46:40 +0000" SAVEDATE "')
    saved = datetime.datetime.strptime(_date(got[0]), "%d-%b-%Y %H:%M:%S %z")
    assert saved.year > 2001
    day = saved.strftime("%d-%b-%Y")
    next_day = (saved + datetime.timedelta(days=1)).strftime("%d-%b-%Y")
    await c.transcript(
        f"""
        C: a1 SEARCH SAVEDON {day}
        S: * SEARCH 1
        S: a1 OK SEARCH completed
        C: a2 SEARCH SAVEDON 9-Sep-2001
        S: * SEARCH
        S: a2 OK SEARCH completed
        C: a3 SEARCH ON 9-Sep-2001
        S: * SEARCH 1
        S: a3 OK SEARCH completed
        C: a4 SEARCH SAVEDSINCE {day}
        S: * SEARCH 1
        S: a4 OK SEARCH completed
        C: a5 SEARCH SAVEDBEFORE {day}
        S: * SEARCH
        S: a5 OK SEARCH completed
        C: a6 SEARCH SAVEDBEFORE {next_day}
        S: * SEARCH 1
        S: a6 OK SEARCH completed
        C: a7 SEARCH SAVEDSINCE {next_day}
        S: * SEARCH
        S: a7 OK SEARCH completed
        C: a8 UID SEARCH SAVEDATESUPPORTED
        S: * SEARCH 1
        S: a8 OK SEARCH completed
        C: a9 SEARCH NOT SAVEDON {day}
        S: * SEARCH
        S: a9 OK SEARCH completed
        C: b1 SEARCH SAVEDON 31-Feb-2020
        S: b1 BAD...
        C: b2 SEARCH SAVEDSINCE
        S: b2 BAD...
        """
    )


async def test_copy_and_move_save_anew(store):
    c, account, inbox = await logged_in(store, 0)
    await append(store, inbox.id, message(1), (), LONG_AGO)
    await c.send("s1 SELECT INBOX")
    first = _date((await c.send("f1 FETCH 1 SAVEDATE"))[0])
    await c.send("c1 CREATE Kept")
    await c.send("c2 COPY 1 Kept")
    await c.send("c3 MOVE 1 Kept")
    await c.send("s2 SELECT Kept")
    got = await c.send("f2 FETCH 1:2 (UID SAVEDATE INTERNALDATE)")
    assert len(got) == 3 and got[-1].startswith("f2 OK")
    for line in got[:2]:
        assert 'INTERNALDATE " 9-Sep-2001 01:46:40 +0000"' in line
        copied = datetime.datetime.strptime(_date(line), "%d-%b-%Y %H:%M:%S %z")
        assert copied >= datetime.datetime.strptime(first, "%d-%b-%Y %H:%M:%S %z")
