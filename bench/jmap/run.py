#!/usr/bin/env python3
"""JMAP benchmark: a mailbox list view, mailstack beside Cyrus IMAP's JMAP and
beside mailstack's own IMAP, in the same run.

    bench/jmap/run.py [--clients 10] [--duration 10] [--messages 10000]
                   [--rounds 2] [--limit 50] [--skip-cyrus]

One account's INBOX holds ``--messages`` messages (the same bytes on every
server). ``--clients`` concurrent clients (one asyncio process, each with its
own keep-alive HTTP connection, HTTP Basic on every request) send, for a
fixed time, one JMAP request each after the other: Email/query (inMailbox,
receivedAt descending, limit 50) and Email/get of its ids by result reference
with ``preview`` and the header properties a list view shows (subject, from,
to, sentAt, receivedAt, keywords, messageId). The figures are requests per
second over all clients and the 99th percentile latency.

The peers, each started here on free 127.0.0.1 ports with its own
configuration in a temporary directory:

* Cyrus IMAP's JMAP (Debian ``cyrus-imapd`` and ``cyrus-caldav`` for httpd;
  ``httpmodules: jmap``, ``conversations: yes``, passwords in a sasldb),
  filled by IMAP APPEND. When it cannot be started the run says why and
  goes on without it.
* mailstack's own IMAP serving the same data to the same clients: UID SEARCH
  ALL, then UID FETCH of the newest 50 (ENVELOPE, FLAGS, INTERNALDATE and
  the first 256 octets of the text), one session per client.

Rounds alternate between the servers; the best round of each counts.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import imaplib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

USER = "bench@bench.test"
CYRUS_USER = "bench"
PASSWORD = "bench-password"
CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
LIST_PROPERTIES = [
    "id", "threadId", "keywords", "receivedAt", "subject", "from", "to", "sentAt",
    "messageId", "preview",
]  # fmt: skip


def make_message(number: int, size: int = 4096) -> bytes:
    head = (
        f"From: Alice {number % 97} <alice{number % 97}@bench.test>\r\n"
        f"To: Bench <{USER}>\r\nSubject: message {number}\r\n"
        f"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
        f"Message-ID: <{number}@bench.test>\r\n\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog; " * 2 + b"\r\n"
    body = line * ((size - len(head)) // len(line) + 1)
    return head + body[: size - len(head) - 2] + b"\r\n"


def received(number: int) -> str:
    """Internal dates one minute apart, oldest first (IMAP date-time)."""
    when = time.gmtime(1_700_000_000 + number * 60)
    return time.strftime('"%d-%b-%Y %H:%M:%S +0000"', when)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[Any] | None, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start listening on port {port}")
        time.sleep(0.1)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


# -- the clients ----------------------------------------------------------------


async def jmap_clients(
    api_url: str, user: str, clients: int, duration: float, limit: int
) -> tuple[float, list[float]]:
    import aiohttp

    auth = "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}

    async def post(session: aiohttp.ClientSession, body: dict[str, Any]) -> dict[str, Any]:
        async with session.post(api_url, data=json.dumps(body), headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"{api_url}: HTTP {response.status}: {await response.text()}")
            return dict(await response.json(content_type=None))

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as first:
        session_url = api_url.rsplit("/jmap", 1)[0] + "/.well-known/jmap"
        async with first.get(session_url, headers=headers) as response:
            account = (await response.json(content_type=None))["primaryAccounts"][MAIL]
        mailboxes = await post(first, {"using": [CORE, MAIL], "methodCalls": [
            ["Mailbox/get", {"accountId": account, "ids": None, "properties": ["role"]}, "m"]]})
        (inbox,) = [m["id"] for m in mailboxes["methodResponses"][0][1]["list"]
                    if m.get("role") == "inbox"]  # fmt: skip
    body = {
        "using": [CORE, MAIL],
        "methodCalls": [
            ["Email/query", {"accountId": account, "filter": {"inMailbox": inbox},
                             "sort": [{"property": "receivedAt", "isAscending": False}],
                             "limit": limit}, "q"],
            ["Email/get", {"accountId": account, "properties": LIST_PROPERTIES,
                           "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}},
             "g"],
        ],
    }  # fmt: skip
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + duration

    async def client() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                reply = await post(session, body)
                latencies.append(time.perf_counter() - sent)
                got = reply["methodResponses"][1]
                if got[0] != "Email/get" or len(got[1]["list"]) != limit:
                    raise RuntimeError(f"{api_url}: unexpected answer {str(got)[:300]}")

    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - start, latencies


def imap_clients(
    port: int, clients: int, duration: float, limit: int
) -> tuple[float, list[float]]:
    """The same list view over IMAP, one blocking session per client thread."""
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + duration

    def client() -> None:
        imap = imaplib.IMAP4("127.0.0.1", port)
        imap.login(USER, PASSWORD)
        imap.select("INBOX", readonly=True)
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            typ, data = imap.uid("SEARCH", "ALL")
            uids = data[0].split()[-limit:]
            typ, fetched = imap.uid(
                "FETCH", b",".join(uids).decode(),
                "(FLAGS INTERNALDATE ENVELOPE BODY.PEEK[TEXT]<0.256>)",
            )
            latencies.append(time.perf_counter() - sent)
            if typ != "OK" or sum(1 for item in fetched if isinstance(item, tuple)) != limit:
                raise RuntimeError(f"IMAP: unexpected answer {str(fetched)[:300]}")
        imap.logout()

    async def all_clients() -> None:
        await asyncio.gather(*(asyncio.to_thread(client) for _ in range(clients)))

    asyncio.run(all_clients())
    return time.perf_counter() - start, latencies


def client_main(argv: list[str]) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    kind, target, user = argv[0], argv[1], argv[2]
    clients, duration, limit = int(argv[3]), float(argv[4]), int(argv[5])
    if kind == "jmap":
        elapsed, latencies = asyncio.run(jmap_clients(target, user, clients, duration, limit))
    else:
        elapsed, latencies = imap_clients(int(target), clients, duration, limit)
    print(json.dumps({"elapsed": elapsed, "latencies": latencies}))


def measure(name: str, kind: str, target: str, user: str, args: argparse.Namespace) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--client", kind, target, user, str(args.clients),
         str(args.duration), str(args.limit)],
        check=True, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    result = json.loads(out.stdout)
    latencies = result["latencies"]
    rate = len(latencies) / result["elapsed"]
    print(f"  {name:16} {len(latencies):6} requests in {result['elapsed']:.1f} s: "
          f"{rate:8,.1f} req/s, p99 {percentile(latencies, 0.99) * 1000:7.1f} ms, "
          f"median {percentile(latencies, 0.5) * 1000:6.1f} ms", flush=True)  # fmt: skip
    return rate


# -- mailstack ------------------------------------------------------------------


def mailstack_main(argv: list[str]) -> None:
    """Child process: fill a store, start a node with http and imap, print the ports."""
    data_dir, count = Path(argv[0]), int(argv[1])
    from mailstack.app import Node, install_uvloop
    from mailstack.config import Config
    from mailstack.mime import parse_for_store

    install_uvloop()
    config = Config.from_table(
        {"node": {"hostname": "bench.test"},
         "listen": {"http": "127.0.0.1:0", "imap": "127.0.0.1:0"},
         # Ten clients of one account at once: the per-account JMAP cap and
         # the per-client IMAP caps would otherwise be what is measured.
         "jmap": {"max_concurrent_requests": 64},
         "limits": {"imap_sessions_per_user": 5000, "imap_sessions_per_address": 5000,
                    "login_sessions_per_address": 5000}},
        data_dir,
    )  # fmt: skip

    async def main() -> None:
        node = Node(config)
        await node.start()
        store = node.store
        assert store is not None
        await store.domain_add("bench.test")
        account = await store.account_add(USER, PASSWORD)
        inbox = await store.mailbox_get(account.id, "INBOX")
        assert inbox is not None
        from datetime import UTC, datetime

        async def put(n: int) -> int:
            raw = make_message(n)
            when = datetime.fromtimestamp(1_700_000_000 + n * 60, UTC)
            return await store.append(inbox.id, raw, await parse_for_store(raw), (), when)

        for start in range(1, count + 1, 100):
            await asyncio.gather(*(put(n) for n in range(start, min(start + 100, count + 1))))
        print(json.dumps({"http": node.port("http"), "imap": node.port("imap")}), flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await node.stop()

    asyncio.run(main())


@contextlib.contextmanager
def mailstack_server(tmp: Path, count: int) -> Iterator[dict[str, int]]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--mailstack", str(tmp / "mailstack"), str(count)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the mailstack node did not start")
        yield dict(json.loads(line))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


# -- Cyrus ----------------------------------------------------------------------

CYRUS_BIN = Path("/usr/lib/cyrus/bin")


def multiappend(port: int, count: int, batch: int = 500) -> None:
    """File the messages in MULTIAPPEND commands (RFC 3502) with LITERAL+
    (RFC 7888): one APPEND per message costs Cyrus an fsync each."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        reader = sock.makefile("rb")
        reader.readline()

        def command(tag: str, data: bytes) -> None:
            sock.sendall(data)
            while True:
                line = reader.readline()
                if not line:
                    raise RuntimeError("Cyrus closed the connection")
                if line.startswith(tag.encode() + b" "):
                    if not line.startswith(tag.encode() + b" OK"):
                        raise RuntimeError(f"Cyrus: {line.decode(errors='replace').strip()}")
                    return

        command("l", f'l LOGIN {CYRUS_USER} "{PASSWORD}"\r\n'.encode())
        for start in range(1, count + 1, batch):
            pieces = [b"a APPEND INBOX"]
            for n in range(start, min(start + batch, count + 1)):
                raw = make_message(n)
                pieces.append(f" () {received(n)} {{{len(raw)}+}}\r\n".encode() + raw)
            command("a", b"".join(pieces) + b"\r\n")
        command("z", b"z LOGOUT\r\n")


def cyrus_config(root: Path, imap_port: int, http_port: int) -> tuple[str, str]:
    """imapd.conf and cyrus.conf for a Cyrus that stays on loopback: its
    services listen on 127.0.0.1 only, ``servername`` is set (no name of the
    machine's to look up) and ``virtdomains: off`` (no reverse lookups of
    the interface to find a domain)."""
    config = root / "config"
    imapd_conf = root / "imapd.conf"
    imapd = f"""\
configdirectory: {config}
defaultpartition: default
partition-default: {root}/spool
servername: bench.test
admins: cyrus
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {config}/sasldb2
sasl_mech_list: PLAIN LOGIN
httpmodules: jmap
httpallowcompress: no
conversations: yes
conversations_db: twoskip
unixhierarchysep: yes
altnamespace: yes
virtdomains: off
lmtpsocket: {config}/socket/lmtp
idlesocket: {config}/socket/idle
notifysocket: {config}/socket/notify
syslog_prefix: bench-cyrus
"""
    cyrus = f"""\
START {{
  recover cmd="ctl_cyrusdb -r -C {imapd_conf}"
}}
SERVICES {{
  imap cmd="imapd -C {imapd_conf}" listen="127.0.0.1:{imap_port}" prefork=1
  http cmd="httpd -C {imapd_conf}" listen="127.0.0.1:{http_port}" prefork=1
}}
EVENTS {{
}}
DAEMON {{
}}
"""
    return imapd, cyrus


@contextlib.contextmanager
def cyrus_server(tmp: Path, count: int) -> Iterator[str]:
    """Cyrus master with imapd and httpd (JMAP) on free ports; its API URL."""
    for binary in ("master", "imapd", "httpd"):
        if not (CYRUS_BIN / binary).exists():
            raise RuntimeError(
                f"{CYRUS_BIN / binary} is missing (apt-get install cyrus-imapd cyrus-caldav)"
            )
    saslpasswd = shutil.which("saslpasswd2")
    if saslpasswd is None:
        raise RuntimeError("saslpasswd2 is missing (apt-get install sasl2-bin)")
    owner = pwd.getpwnam("cyrus")
    root = tmp / "cyrus"
    config = root / "config"
    for sub in ("db", "proc", "socket", "log", "msg", "user", "quota", "sieve", "lock",
                "ptclient", "sync"):  # fmt: skip
        (config / sub).mkdir(parents=True)
    (root / "spool").mkdir()
    imap_port, http_port = free_port(), free_port()
    sasldb = config / "sasldb2"
    imapd_conf = root / "imapd.conf"
    imapd_text, cyrus_text = cyrus_config(root, imap_port, http_port)
    imapd_conf.write_text(imapd_text)
    (root / "cyrus.conf").write_text(cyrus_text)
    for user in ("cyrus", CYRUS_USER):
        subprocess.run([saslpasswd, "-c", "-p", "-f", str(sasldb), user],
                       input=PASSWORD, text=True, check=True)  # fmt: skip
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", f"{owner.pw_uid}:{owner.pw_gid}", str(root)], check=True)
        for parent in (root, tmp):
            os.chmod(parent, 0o755)
    command = [str(CYRUS_BIN / "master"), "-C", str(imapd_conf), "-M", str(root / "cyrus.conf"),
               "-p", str(root / "master.pid")]  # fmt: skip
    if os.geteuid() == 0:
        command = ["runuser", "-u", "cyrus", "--", *command]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    try:
        wait_listening(imap_port, proc, "Cyrus imapd")
        wait_listening(http_port, proc, "Cyrus httpd")
        admin = imaplib.IMAP4("127.0.0.1", imap_port)
        admin.login("cyrus", PASSWORD)
        typ, data = admin.create(f"user/{CYRUS_USER}")
        if typ != "OK":
            raise RuntimeError(f"Cyrus: CREATE user/{CYRUS_USER}: {data}")
        admin.logout()
        multiappend(imap_port, count)
        yield f"http://127.0.0.1:{http_port}/jmap/"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--mailstack":
        mailstack_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--skip-cyrus", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-jmap-") as name, contextlib.ExitStack() as stack:
        tmp = Path(name)
        started = time.perf_counter()
        ports = stack.enter_context(mailstack_server(tmp, args.messages))
        print(f"mailstack: {args.messages} messages filed in {time.perf_counter() - started:.0f} s")
        servers = [
            ("mailstack JMAP", "jmap", f"http://127.0.0.1:{ports['http']}/jmap/api/", USER),
            ("mailstack IMAP", "imap", str(ports["imap"]), USER),
        ]
        if not args.skip_cyrus:
            try:
                started = time.perf_counter()
                url = stack.enter_context(cyrus_server(tmp, args.messages))
                print(f"Cyrus: {args.messages} messages appended in "
                      f"{time.perf_counter() - started:.0f} s")  # fmt: skip
                servers.append(("Cyrus JMAP", "jmap", url, CYRUS_USER))
            except (RuntimeError, OSError, subprocess.CalledProcessError,
                    imaplib.IMAP4.error) as exc:  # fmt: skip
                print(f"Cyrus JMAP not measured: {exc}")
        best: dict[str, float] = {}
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}:")
            for server, kind, target, user in servers:
                rate = measure(server, kind, target, user, args)
                best[server] = max(best.get(server, 0.0), rate)
        print("best of each: " + ", ".join(f"{k} {v:,.1f} req/s" for k, v in best.items()))
        if "Cyrus JMAP" in best:
            ratio = best["mailstack JMAP"] / best["Cyrus JMAP"]
            print(f"ratio mailstack JMAP / Cyrus JMAP = {ratio:.2f} (target > 1)")


if __name__ == "__main__":
    main()
