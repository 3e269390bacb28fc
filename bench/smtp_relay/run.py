"""Relay benchmark: submission on node A, the queue, MX delivery to node B.

    python -m bench.smtp_relay.run                       # 10,000 x 2 KiB, 50 submitters
    python -m bench.smtp_relay.run --messages 2000 --peers mailstack

Node B (`mailstack serve`: the MX for hamburger.edu on 127.0.0.3 and the DNS
server holding its MX record) receives for every peer; what changes is the
relay on the sending side:

* ``mailstack``: node A on 127.0.0.2, `submission` with AUTH PLAIN (plain
  text is allowed on loopback for the benchmark), DKIM signing, the durable
  queue, MX lookup through B's DNS server, delivery over SMTP.
* ``postfix``: Postfix on 127.0.0.6 (if installed) with its own queue
  directory under a temporary config directory, relaying everything for
  hamburger.edu to ``[127.0.0.3]:port`` of node B (so no DNS lookup);
  clients are let in by ``mynetworks`` (no AUTH, no signing).

Both nodes and Postfix have (self-signed) certificates, so the relay hop runs
over opportunistic STARTTLS in both cases; with ``--tls`` the submitters use
STARTTLS too. The load generator is ours and runs in this process: N
concurrent sessions, each authenticates once (mailstack) and then sends its
share of the messages with MAIL/RCPT/DATA pipelined. Figures: the submission
rate (until the last ``250``), the time from the last ``250`` until node B
holds every message (the queue drained), and the end-to-end rate (first
submission to last delivery). Node B's message count is read from its SQLite
file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mailstack.common.tls import make_self_signed

from bench.peers import postfix_no_dns

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CLI = [sys.executable, "-m", "mailstack.cli"]

ZONE = """$ORIGIN hamburger.edu.
$TTL 300
@ IN SOA ns.hamburger.edu. hostmaster.hamburger.edu. 1 3600 600 86400 300
@ IN NS ns.hamburger.edu.
ns IN A 127.0.0.3
@ IN MX 10 mail.hamburger.edu.
mail IN A 127.0.0.3
"""


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, proc: subprocess.Popen | None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def mailstack(data: Path, *args: str, stdin: bytes | None = None) -> None:
    subprocess.run([*CLI, *args, "--data-dir", str(data)], input=stdin, check=True,
                   capture_output=True)  # fmt: skip


def serve(data: Path) -> subprocess.Popen:
    return subprocess.Popen([*CLI, "serve", "--data-dir", str(data)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


class Receiver:
    """Node B: the MX and DNS server of hamburger.edu, ten mailboxes."""

    def __init__(self, workdir: Path) -> None:
        self.data = workdir / "hamburger"
        (self.data / "zones").mkdir(parents=True)
        (self.data / "tls").mkdir()
        (self.data / "zones" / "hamburger.edu.zone").write_text(ZONE)
        self.smtp_port = free_port("127.0.0.3")
        self.dns_port = free_port("127.0.0.3")
        (self.data / "mailstack.toml").write_text(
            '[node]\nhostname = "mail.hamburger.edu"\n'
            f'[listen]\nsmtp = "127.0.0.3:{self.smtp_port}"\ndns = "127.0.0.3:{self.dns_port}"\n'
            "[limits]\nsmtp_sessions = 1000\n"
            "smtp_sessions_per_address = 1000\nsmtp_sessions_per_prefix = 1000\n"
            # The same work for every relay: no SPF/DKIM lookups for crepes.fr.
            '[smtp]\nmessage_auth = "off"\n'
        )
        make_self_signed(self.data / "tls" / "cert.pem", self.data / "tls" / "key.pem",
                         "mail.hamburger.edu")  # fmt: skip
        mailstack(self.data, "domain", "add", "hamburger.edu")
        for n in range(10):
            mailstack(self.data, "user", "add", f"bob{n}@hamburger.edu", "--password-stdin",
                      stdin=b"bench-password\n")  # fmt: skip
        self.proc = serve(self.data)
        wait_port("127.0.0.3", self.smtp_port, self.proc)

    def count(self) -> int:
        conn = sqlite3.connect(f"file:{self.data / 'mailstack.db'}?mode=ro", uri=True, timeout=30)
        try:
            return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def start_mailstack_relay(workdir: Path, receiver: Receiver, concurrency: int) -> tuple[Any, int]:
    data = workdir / "crepes"
    data.mkdir()
    port = free_port("127.0.0.2")
    (data / "mailstack.toml").write_text(
        '[node]\nhostname = "mail.crepes.fr"\n'
        f'[listen]\nsubmission = "127.0.0.2:{port}"\n'
        "[limits]\nsmtp_sessions = 1000\n"
        # Every submitter is on 127.0.0.1: the per-client caps are the node's.
        "smtp_sessions_per_address = 1000\nsmtp_sessions_per_prefix = 1000\n"
        "login_sessions_per_address = 1000\n"
        "[submission]\nallow_plaintext_on_loopback = true\n"
        f"[queue]\nport = {receiver.smtp_port}\nconnections_per_domain = {concurrency}\n"
        f'[dns.resolver]\nforwarders = ["127.0.0.3:{receiver.dns_port}"]\n'
    )
    (data / "tls").mkdir()
    make_self_signed(data / "tls" / "cert.pem", data / "tls" / "key.pem", "mail.crepes.fr")
    mailstack(data, "domain", "add", "crepes.fr")
    mailstack(
        data, "user", "add", "alice@crepes.fr", "--password-stdin", stdin=b"bench-password\n"
    )
    proc = serve(data)
    wait_port("127.0.0.2", port, proc)
    return proc, port


def postfix_main_cf(workdir: Path, receiver_port: int, concurrency: int) -> str:
    """The relay's main.cf: everything for hamburger.edu goes to node B's
    port, and no DNS at all (bench/peers.py)."""
    queue = workdir / "postfix-queue"
    return (
        "compatibility_level = 3.6\n"
        f"queue_directory = {queue}\n"
        f"data_directory = {workdir / 'postfix-data'}\n"
        "mail_owner = postfix\nsetgid_group = postdrop\n"
        "myhostname = relay.crepes.fr\nmydomain = crepes.fr\nmydestination =\n"
        "inet_interfaces = loopback-only\ninet_protocols = ipv4\n"
        "mynetworks = 127.0.0.0/8\n"
        f"relayhost = [127.0.0.3]:{receiver_port}\n"
        "smtp_tls_security_level = may\n"
        f"smtpd_tls_cert_file = {workdir / 'postfix-cert.pem'}\n"
        f"smtpd_tls_key_file = {workdir / 'postfix-key.pem'}\n"
        "smtpd_tls_security_level = may\n"
        f"default_destination_concurrency_limit = {concurrency}\n"
        "default_process_limit = 200\n"
        "smtpd_client_connection_count_limit = 0\n"
        f"maillog_file = {workdir / 'postfix.log'}\nmaillog_file_prefixes = {workdir}\n"
        "alias_maps =\nalias_database =\nlocal_recipient_maps =\n"
        + postfix_no_dns()
    )


def start_postfix(workdir: Path, receiver: Receiver, concurrency: int) -> tuple[Any, int]:
    if shutil.which("postfix") is None:
        raise RuntimeError("postfix is not installed")
    config = workdir / "postfix"
    queue = workdir / "postfix-queue"
    config.mkdir()
    queue.mkdir()
    port = free_port("127.0.0.6")
    shutil.copy("/etc/postfix/master.cf", config / "master.cf")
    master = (
        (config / "master.cf")
        .read_text()
        .replace(
            "smtp      inet  n       -       y       -       -       smtpd",
            f"127.0.0.6:{port}      inet  n       -       n       -       -       smtpd",
        )
    )
    (config / "master.cf").write_text(master)
    (config / "main.cf").write_text(postfix_main_cf(workdir, receiver.smtp_port, concurrency))
    make_self_signed(workdir / "postfix-cert.pem", workdir / "postfix-key.pem", "relay.crepes.fr")
    (workdir / "postfix-data").mkdir()
    shutil.chown(workdir / "postfix-data", "postfix")
    subprocess.run(["postfix", "-c", str(config), "set-permissions"], check=False,
                   capture_output=True)  # fmt: skip
    started = subprocess.run(
        ["postfix", "-c", str(config), "start"], capture_output=True, text=True
    )
    if started.returncode:
        raise RuntimeError(f"postfix did not start: {(started.stderr + started.stdout).strip()}")
    wait_port("127.0.0.6", port, None)

    class Stop:
        def terminate(self) -> None:
            subprocess.run(["postfix", "-c", str(config), "stop"], capture_output=True)

        def wait(self, timeout: float) -> None:
            time.sleep(1)

    return Stop(), port


async def read_reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return line


def make_message(size: int, n: int) -> bytes:
    head = (
        f"From: alice@crepes.fr\r\nTo: bob{n % 10}@hamburger.edu\r\n"
        f"Subject: bench {n}\r\nMessage-ID: <bench.{n}@crepes.fr>\r\n"
        "Date: Sat, 21 Nov 2026 12:00:00 +0000\r\n\r\n"
    ).encode()
    line = b"Do you like ketchup? How about pickles? " * 2 + b"\r\n"
    body = (line * (size // len(line) + 1))[: max(0, size - len(head))]
    return head + body[: body.rfind(b"\r\n") + 2]


async def session(
    host: str, port: int, numbers: list[int], size: int, auth: bool, tls: bool
) -> int:
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    await read_reply(reader)
    writer.write(b"EHLO alice-pc.crepes.fr\r\n")
    await read_reply(reader)
    if tls:
        writer.write(b"STARTTLS\r\n")
        reply = await read_reply(reader)
        if not reply.startswith(b"220"):
            raise RuntimeError(f"STARTTLS refused: {reply!r}")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the node's self-signed certificate
        await writer.start_tls(context)
        writer.write(b"EHLO alice-pc.crepes.fr\r\n")
        await read_reply(reader)
    if auth:
        token = base64.b64encode(b"\0alice@crepes.fr\0bench-password").decode()
        writer.write(f"AUTH PLAIN {token}\r\n".encode())
        reply = await read_reply(reader)
        if not reply.startswith(b"235"):
            raise RuntimeError(f"login refused: {reply!r}")
    for n in numbers:
        rcpt = f"bob{n % 10}@hamburger.edu"
        writer.write(f"MAIL FROM:<alice@crepes.fr>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        for _ in range(3):
            reply = await read_reply(reader)
        if not reply.startswith(b"354"):
            raise RuntimeError(f"refused: {reply!r}")
        writer.write(make_message(size, n) + b".\r\n")
        reply = await read_reply(reader)
        if not reply.startswith(b"250"):
            raise RuntimeError(f"not accepted: {reply!r}")
    writer.write(b"QUIT\r\n")
    await read_reply(reader)
    writer.close()
    return len(numbers)


async def load(
    host: str, port: int, sessions: int, messages: int, size: int, auth: bool, tls: bool
) -> None:
    shares = [list(range(i, messages, sessions)) for i in range(sessions)]
    done = await asyncio.gather(*(session(host, port, s, size, auth, tls) for s in shares if s))
    assert sum(done) == messages


def measure(peer: str, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)
        receiver = Receiver(workdir)
        relay = None
        try:
            if peer == "mailstack":
                relay, port = start_mailstack_relay(workdir, receiver, args.concurrency)
                host, auth = "127.0.0.2", True
            else:
                relay, port = start_postfix(workdir, receiver, args.concurrency)
                host, auth = "127.0.0.6", False
            start = time.perf_counter()
            asyncio.run(load(host, port, args.submitters, args.messages, args.size, auth, args.tls))
            submitted = time.perf_counter()
            deadline = submitted + args.timeout
            while receiver.count() < args.messages and time.perf_counter() < deadline:
                time.sleep(0.05)
            delivered = time.perf_counter()
            count = receiver.count()
        finally:
            if relay is not None:
                relay.terminate()
                relay.wait(30)
            receiver.stop()
    return {
        "submitted_per_second": args.messages / (submitted - start),
        "drain_seconds": delivered - submitted,
        "end_to_end_per_second": count / (delivered - start),
        "delivered": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--submitters", type=int, default=50)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--concurrency", type=int, default=20,
                        help="connections to the destination (both relays)")  # fmt: skip
    parser.add_argument("--peers", nargs="+", default=["mailstack", "postfix"])
    parser.add_argument("--tls", action="store_true", help="submitters use STARTTLS")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for delivery")
    args = parser.parse_args()
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    print(f"{args.messages} messages of {args.size} octets, {args.submitters} submitters, "
          f"{args.concurrency} connections to the MX")  # fmt: skip
    print(f"{'relay':>10} {'submit msg/s':>13} {'drain s':>8} {'end-to-end msg/s':>17} "
          f"{'delivered':>10}")  # fmt: skip
    for peer in args.peers:
        try:
            row = measure(peer, args)
        except RuntimeError as exc:
            print(f"{peer:>10}  skipped: {exc}")
            continue
        print(f"{peer:>10} {row['submitted_per_second']:>13.0f} {row['drain_seconds']:>8.1f} "
              f"{row['end_to_end_per_second']:>17.0f} {int(row['delivered']):>10}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
