"""The command line as a user types it: init, serve, domain, user, alias."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from mailstack import __version__
from mailstack.config import DEFAULT_LISTEN


def run(*args: str, stdin: str | None = None, env: dict | None = None, check: bool = True):
    result = subprocess.run(
        [sys.executable, "-m", "mailstack.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_version_and_help():
    assert run("--version").stdout.strip() == f"mailstack {__version__}"
    top = run("--help").stdout
    for command in ("init", "serve", "domain", "user", "alias"):
        assert command in top
    for sub in (("domain", "add"), ("user", "add"), ("alias", "add"), ("serve",), ("init",)):
        assert "--config" in run(*sub, "--help").stdout


def test_init_writes_every_default(tmp_path):
    data = tmp_path / "data"
    out = run("init", "--data-dir", str(data), "--hostname", "hamburger.edu").stdout
    assert "mailstack.toml" in out
    config = tomllib.loads((data / "mailstack.toml").read_text())
    assert config["node"]["hostname"] == "hamburger.edu"
    assert config["listen"] == DEFAULT_LISTEN
    assert config["limits"]["recipients"] == 100
    assert (data / "tls" / "cert.pem").exists() and (data / "mailstack.db").exists()
    assert oct((data / "tls" / "key.pem").stat().st_mode & 0o777) == "0o600"
    again = run("init", "--data-dir", str(data), "--hostname", "hamburger.edu", check=False)
    assert again.returncode == 1 and "exists" in again.stderr


def test_domain_user_alias_lifecycle(tmp_path):
    data = str(tmp_path / "d")
    run("init", "--data-dir", data, "--hostname", "mail.hamburger.edu")
    run("domain", "add", "hamburger.edu", "--data-dir", data)
    assert run("domain", "list", "--data-dir", data).stdout.split() == ["hamburger.edu"]
    # Options after the subcommand's own arguments, and --config too.
    config = str(Path(data) / "mailstack.toml")
    run(
        "user", "add", "bob@hamburger.edu", "--password-stdin", "--config", config,
        stdin="hungry-bob\n",
    )  # fmt: skip
    assert run("user", "list", "--data-dir", data).stdout.startswith("bob@hamburger.edu")
    failed = run(
        "user",
        "add",
        "eve@nowhere.example",
        "--password-stdin",
        "--data-dir",
        data,
        stdin="long enough\n",
        check=False,
    )
    assert failed.returncode == 1 and "not a local domain" in failed.stderr
    assert "Traceback" not in failed.stderr
    # The domain's first user became its postmaster (RFC 5321 §4.5.1).
    listed = run("alias", "list", "--data-dir", data).stdout
    assert listed == "postmaster@hamburger.edu -> bob@hamburger.edu\n"
    run("alias", "add", "chef@hamburger.edu", "bob@hamburger.edu", "--data-dir", data)
    run("alias", "remove", "chef@hamburger.edu", "--data-dir", data)
    run("alias", "remove", "postmaster@hamburger.edu", "--data-dir", data)
    assert run("alias", "list", "--data-dir", data).stdout == ""
    busy = run("domain", "remove", "hamburger.edu", "--data-dir", data, check=False)
    assert busy.returncode == 1
    run("user", "remove", "bob@hamburger.edu", "--data-dir", data)
    run("domain", "remove", "hamburger.edu", "--data-dir", data)
    assert run("domain", "list", "--data-dir", data).stdout == ""


def test_mailstack_config_environment_variable(tmp_path):
    data = tmp_path / "d"
    run("init", "--data-dir", str(data), "--hostname", "mail.crepes.fr")
    env = {"MAILSTACK_CONFIG": str(data / "mailstack.toml")}
    run("domain", "add", "crepes.fr", env=env)
    assert run("domain", "list", "--data-dir", str(data)).stdout.split() == ["crepes.fr"]


def test_bad_config_is_a_clear_error(tmp_path):
    (tmp_path / "mailstack.toml").write_text('[listen]\nsmtp = "nowhere"\n')
    result = run("domain", "list", "--data-dir", str(tmp_path), check=False)
    assert result.returncode == 1
    assert "listen.smtp" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.timeout(60)
def test_serve_prints_addresses_and_cli_changes_apply_live(tmp_path):
    data = tmp_path / "d"
    run("init", "--data-dir", str(data), "--hostname", "hamburger.edu")
    text = (data / "mailstack.toml").read_text()
    for name, address in DEFAULT_LISTEN.items():
        port0 = "127.0.0.1:0" if name in ("smtp", "pop3", "imap") else ""
        text = text.replace(f'{name} = "{address}"', f'{name} = "{port0}"')
    (data / "mailstack.toml").write_text(text)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailstack.cli", "serve", "--trace", "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (data / "ports.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        ports = json.loads((data / "ports.json").read_text())
        assert set(ports) >= {"smtp"} and "dns" not in ports
        # Refused first: the node keeps that answer, and must drop it when
        # another process changes the directory.
        with smtplib.SMTP("127.0.0.1", ports["smtp"], local_hostname="crepes.fr") as s:
            s.ehlo()
            s.mail("alice@crepes.fr")
            assert s.rcpt("bob@hamburger.edu")[0] == 550
        # A domain and user added by another process work without a restart.
        run("domain", "add", "hamburger.edu", "--data-dir", str(data))
        run(
            "user",
            "add",
            "bob@hamburger.edu",
            "--password-stdin",
            "--data-dir",
            str(data),
            stdin="hungry-bob\n",
        )
        with smtplib.SMTP("127.0.0.1", ports["smtp"], local_hostname="crepes.fr") as s:
            s.sendmail("alice@crepes.fr", ["bob@hamburger.edu"], b"Subject: hi\r\n\r\nketchup\r\n")
        run("alias", "add", "chef@hamburger.edu", "bob@hamburger.edu", "--data-dir", str(data))
        with smtplib.SMTP("127.0.0.1", ports["smtp"], local_hostname="crepes.fr") as s:
            s.ehlo()
            s.mail("alice@crepes.fr")
            assert s.rcpt("chef@hamburger.edu")[0] == 250
        run("user", "remove", "bob@hamburger.edu", "--data-dir", str(data))
        with smtplib.SMTP("127.0.0.1", ports["smtp"], local_hostname="crepes.fr") as s:
            s.ehlo()
            s.mail("alice@crepes.fr")
            assert s.rcpt("bob@hamburger.edu") == (550, b"5.1.1 User unknown")
            assert s.rcpt("chef@hamburger.edu")[0] == 550
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert f"127.0.0.1:{ports['smtp']}" in output
    assert "S: 220 hamburger.edu ESMTP mailstack" in output
    assert "C: mail FROM:<alice@crepes.fr>" in output


def test_output_into_a_closed_pipe_is_no_traceback(tmp_path):
    data = str(tmp_path / "d")
    run("init", "--data-dir", data, "--hostname", "mail.a.example")
    run("domain", "add", "a.example", "--no-dns", "--data-dir", data)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailstack.cli", "domain", "list", "--data-dir", data],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # `| head -c 0`: the reader is gone before anything is written
    _, stderr = proc.communicate(timeout=60)
    assert b"Traceback" not in stderr and b"BrokenPipe" not in stderr, stderr
