"""Running a node as an operator does: a private data directory, the log
lines fail2ban and a person read (text and JSON), `mailstack status`."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import smtplib
import ssl
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from support import TestNode, mailstack_cli, make_config, open_fast_store, start_serve

MESSAGE = b"From: alice@crepes.fr\r\nTo: bob@crepes.fr\r\nSubject: log\r\n\r\nhi\r\n"
_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse(line: str) -> tuple[str, dict[str, str]]:
    """An event line as a program reads it: the event's name and its fields."""
    event = line.split("=", 1)[0].rsplit(" ", 1)[0]
    fields = {k: json.loads(v) if v.startswith('"') else v for k, v in _FIELD.findall(line)}
    return event, fields


def events(caplog: Any, name: str) -> list[dict[str, str]]:
    found = []
    for record in caplog.records:
        event, fields = parse(record.getMessage())
        if event == name:
            found.append(fields)
    return found


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def test_mx_logs_each_message_and_each_refused_recipient(node_factory, caplog):
    caplog.set_level(logging.INFO)
    node = await node_factory(listen=("smtp",), hostname="crepes.fr")
    await node.add_user("bob@crepes.fr")

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", node.port("smtp"), local_hostname="mx.a.example") as s:
            s.ehlo()
            assert s.mail("carol@a.example")[0] == 250
            assert s.rcpt("bob@crepes.fr")[0] == 250
            assert s.rcpt("eve@elsewhere.example")[0] == 550
            assert s.data(MESSAGE)[0] == 250

    await asyncio.to_thread(send)
    [accepted] = events(caplog, "message accepted")
    assert accepted["protocol"] == "smtp" and re.fullmatch(r"\d+-\d+", accepted["id"])
    assert accepted["from"] == "<carol@a.example>" and accepted["to"] == "<bob@crepes.fr>"
    assert accepted["size"] == str(len(MESSAGE)) and accepted["client"] == "127.0.0.1"
    assert accepted["helo"] == "mx.a.example" and accepted["tls"] == "no"
    [refused] = events(caplog, "recipient refused")
    assert refused["to"] == "<eve@elsewhere.example>" and refused["client"] == "127.0.0.1"
    assert refused["reply"] == "550 5.7.1 Relaying denied"


async def test_submission_logs_the_user_tls_and_queue_id_and_refusals(node_factory, caplog):
    caplog.set_level(logging.INFO)
    node = await node_factory(
        listen=("submission",), hostname="crepes.fr", queue={"enabled": False}
    )
    await node.add_user("alice@crepes.fr")

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", node.port("submission"), local_hostname="pc") as s:
            s.starttls(context=tls_context())
            s.login("alice@crepes.fr", "hungry")
            s.sendmail("alice@crepes.fr", ["bob@hamburger.example"], MESSAGE)
            assert s.mail("mallory@crepes.fr")[0] == 550
            s.rset()
            s.mail("alice@crepes.fr")
            s.rcpt("alice@crepes.fr")
            # A From: that is not hers: refused at the end of data.
            assert s.data(b"From: bob@crepes.fr\r\n\r\nhi\r\n")[0] == 550

    await asyncio.to_thread(send)
    [accepted] = events(caplog, "message accepted")
    assert accepted["user"] == "alice@crepes.fr" and accepted["tls"].startswith("TLSv1.")
    assert accepted["queued"] == str((await node.store.queue_list())[0].id)
    [refused] = events(caplog, "message refused")
    assert refused["reply"] == "550 5.7.1 From: address is not yours"
    [sender] = events(caplog, "sender refused")
    assert sender["from"] == "<mallory@crepes.fr>"
    [login] = events(caplog, "login ok")
    assert login == {"protocol": "submission", "user": "alice@crepes.fr", "client": "127.0.0.1"}


async def test_an_existing_data_directory_is_made_private_at_start(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    data = tmp_path / "data"
    config = make_config(data, ("smtp",))
    store = await open_fast_store(config)
    await store.close()
    # As an older mailstack (or cp -r under umask 022) left it.
    for path in [data, data / "tls", *data.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    node = TestNode(config, store_factory=open_fast_store)
    await node.start()
    try:
        assert mode(data) == 0o700 and mode(data / "tls") == 0o700
        for name in ("mailstack.db", "tls/key.pem", "tls/cert.pem", "ports.json"):
            assert mode(data / name) == 0o600, name
        [line] = events(caplog, "data directory made private")
        assert "mailstack.db" in line["names"] and "tls/key.pem" in line["names"]
    finally:
        await node.stop()
    caplog.clear()
    node = TestNode(config, store_factory=open_fast_store)
    await node.start()  # nothing to fix: nothing said
    await node.stop()
    assert events(caplog, "data directory made private") == []


def test_init_serve_status_and_json_log_as_a_user_runs_them(tmp_path):
    data = tmp_path / "data"
    env = dict(os.environ)
    umask = os.umask(0o022)  # the usual umask: mailstack must not rely on a stricter one
    try:
        subprocess.run(
            [sys.executable, "-m", "mailstack.cli", "init", "--data-dir", str(data),
             "--hostname", "mx.crepes.fr"],
            check=True, capture_output=True, env=env, timeout=60,
        )
        config = (data / "mailstack.toml").read_text()
        # Every service on a free port, the log as JSON lines in a file.
        config = re.sub(r'"127\.0\.0\.1:\d+"', '"127.0.0.1:0"', config)
        config = config.replace('file = ""', 'file = "mailstack.log"')
        config = config.replace("json = false", "json = true")
        (data / "mailstack.toml").write_text(config)
        mailstack_cli(data, "domain", "add", "crepes.fr")
        mailstack_cli(
            data, "user", "add", "bob@crepes.fr", "--password-stdin", stdin="hungry-bob\n"
        )
        proc, ports = start_serve(data)
    finally:
        os.umask(umask)
    try:
        with smtplib.SMTP("127.0.0.1", ports["smtp"], local_hostname="mx.a.example") as s:
            s.sendmail("carol@a.example", ["bob@crepes.fr"], MESSAGE)
        status = subprocess.run(
            [sys.executable, "-m", "mailstack.cli", "status", "--json", "--data-dir", str(data)],
            capture_output=True, text=True, timeout=60,
        )
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["running"] and report["pid"] == proc.pid
        smtp = next(s for s in report["services"] if s["name"] == "smtp")
        assert smtp == {"name": "smtp", "address": f"127.0.0.1:{ports['smtp']}", "answers": True}
        assert report["queue"]["messages"] == 0
        assert report["log"] == str(data / "mailstack.log")
        for name in ("", "mailstack.db", "mailstack.db-wal", "mailstack.db-shm", "mailstack.toml",
                     "tls/key.pem", "ports.json", "mailstack.pid", "mailstack.log"):
            assert mode(data / name) == (0o700 if name == "" else 0o600), name
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lines = [json.loads(line) for line in (data / "mailstack.log").read_text().splitlines()]
    [accepted] = [line for line in lines if line.get("event") == "message accepted"]
    assert accepted["level"] == "INFO" and accepted["logger"] == "mailstack.smtp"
    assert accepted["to"] == "<bob@crepes.fr>" and accepted["size"] == len(MESSAGE)
    assert accepted["message"].startswith("message accepted protocol=smtp id=")
    stopped = subprocess.run(
        [sys.executable, "-m", "mailstack.cli", "status", "--data-dir", str(data)],
        capture_output=True, text=True, timeout=60,
    )
    assert stopped.returncode == 3 and "is not running" in stopped.stdout
