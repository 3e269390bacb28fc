"""`serve --trace-json FILE`: every session's exchanges as JSON lines, the same
events `--trace` prints as S:/C: text, credentials elided in both."""

from __future__ import annotations

import json
import poplib
import signal
import smtplib
import subprocess
import sys
import time

import pytest

from mailstack.common.trace import TraceEvent
from mailstack.config import DEFAULT_LISTEN

from .test_cli import run

PASSWORD = "hungry-bob-42"


@pytest.mark.timeout(60)
def test_serve_writes_the_trace_as_json_lines_too(tmp_path):
    data = tmp_path / "d"
    run("init", "--data-dir", str(data), "--hostname", "hamburger.edu")
    text = (data / "mailstack.toml").read_text()
    for name, address in DEFAULT_LISTEN.items():
        port0 = "127.0.0.1:0" if name in ("smtp", "pop3") else ""
        text = text.replace(f'{name} = "{address}"', f'{name} = "{port0}"')
    (data / "mailstack.toml").write_text(text)
    run("domain", "add", "hamburger.edu", "--no-dns", "--data-dir", str(data))
    run(
        "user",
        "add",
        "bob@hamburger.edu",
        "--password-stdin",
        "--data-dir",
        str(data),
        stdin=PASSWORD + "\n",
    )
    events_path = tmp_path / "trace.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailstack.cli",
            "serve",
            "--trace",
            "--trace-json",
            str(events_path),
            "--data-dir",
            str(data),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (data / "ports.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        ports = json.loads((data / "ports.json").read_text())
        with smtplib.SMTP("127.0.0.1", ports["smtp"], local_hostname="crepes.fr") as s:
            s.sendmail("alice@crepes.fr", ["bob@hamburger.edu"], b"Subject: hi\r\n\r\nketchup\r\n")
        pop = poplib.POP3("127.0.0.1", ports["pop3"], timeout=10)
        pop.user("bob@hamburger.edu")
        pop.pass_(PASSWORD)
        assert pop.stat()[0] == 1
        pop.quit()
        time.sleep(0.2)  # the server's last lines of the POP3 session
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    events = [TraceEvent.from_json(line) for line in events_path.read_text().splitlines()]
    smtp = [e for e in events if e.protocol == "smtp"]
    assert smtp[0].direction == "note" and smtp[0].summary.startswith("connection from 127.0.0.1:")
    assert smtp[1].direction == "S" and smtp[1].summary.startswith("220 hamburger.edu")
    assert any(e.direction == "C" and e.summary == "ehlo crepes.fr" for e in smtp)
    assert {e.host for e in events} == {"hamburger.edu"}
    pop3 = [e for e in events if e.protocol == "pop3"]
    assert any(e.direction == "C" and e.summary.startswith("PASS ") for e in pop3)
    assert PASSWORD not in events_path.read_text() and PASSWORD not in output
    # One format for both: the text `--trace` printed is the events' text.
    traced = [line for line in output.splitlines() if line.startswith("[")]
    assert traced == "".join(e.text() for e in events).splitlines()


def test_an_unwritable_trace_file_is_a_clear_error(tmp_path):
    data = tmp_path / "d"
    run("init", "--data-dir", str(data), "--hostname", "hamburger.edu")
    result = run(
        "serve",
        "--trace-json",
        str(tmp_path / "no" / "such" / "dir.jsonl"),
        "--data-dir",
        str(data),
        check=False,
    )
    assert result.returncode == 1
    assert "--trace-json: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr
