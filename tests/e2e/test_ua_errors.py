"""Every error of the issue's "Bad input" list: one line on stderr, a non-zero
exit, never a traceback; and a message never half sent."""

from __future__ import annotations

import socket

import pytest

from .test_ua_e2e import PASSWORD, World, mailbox, mailstack, make_world


@pytest.fixture
async def world(node_factory, tmp_path) -> World:
    return await make_world(node_factory, tmp_path)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line(result, status: int = 1) -> str:
    err = result.stderr.decode()
    assert result.returncode == status, err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("mailstack: "), err
    return err.strip()


def send(world: World, *more: str) -> list[str]:
    return ["send", "--from", "alice@crepes.fr", "--to", "bob@hamburger.edu", "--body", "x",
            "--password-file", world.password_file, *more]  # fmt: skip


def imap(world: World, *more: str) -> list[str]:
    return ["read", "--imap", world.at("imap"), "--tls", "none", "--user", "bob@hamburger.edu",
            "--password-file", world.password_file, *more]  # fmt: skip


async def test_wrong_password(world):
    wrong = {"MAILSTACK_PASSWORD": "ketchup"}
    base = ["--password-file", world.password_file]
    args = [a for a in send(world, "--server", world.at("submission"), "--ca-file", world.ca)
            if a not in base]  # fmt: skip
    line = one_line(await mailstack(*args, env=wrong))
    assert "refused the login of alice@crepes.fr: 535 5.7.8" in line
    reading = [a for a in imap(world) if a not in base]
    line = one_line(await mailstack(*reading, env=wrong))
    assert "the IMAP server refused the login of bob@hamburger.edu" in line
    line = one_line(await mailstack(
        "read", "--pop3", world.at("pop3"), "--tls", "none", "--user", "bob@hamburger.edu",
        "--maildir", str(world.tmp / "M"), env=wrong,
    ))  # fmt: skip
    assert "the POP3 server refused the login of bob@hamburger.edu: -ERR" in line
    assert await mailbox(world.node, "bob@hamburger.edu") == []


async def test_unreachable_server(world):
    port = closed_port()
    line = one_line(await mailstack(*send(world, "--server", f"127.0.0.1:{port}", "--insecure")))
    assert line == f"mailstack: cannot connect to 127.0.0.1:{port}: Connection refused"
    line = one_line(await mailstack(
        "read", "--imap", f"127.0.0.1:{port}", "--user", "bob@hamburger.edu",
        "--password-file", world.password_file,
    ))  # fmt: skip
    assert line == f"mailstack: cannot connect to 127.0.0.1:{port}: Connection refused"
    # SRV discovery through a DNS server that is not there.
    line = one_line(await mailstack(*send(world, "--dns", f"127.0.0.1:{port}")))
    assert "_submissions._tcp.crepes.fr" in line


async def test_certificate_that_does_not_verify(world):
    line = one_line(await mailstack(*send(world, "--server", world.at("submission"))))
    assert "the certificate of 127.0.0.1 does not verify: self-signed certificate" in line
    line = one_line(await mailstack(
        "read", "--imap", world.at("imaps"), "--tls", "implicit", "--user", "bob@hamburger.edu",
        "--password-file", world.password_file,
    ))  # fmt: skip
    assert "does not verify" in line and "--ca-file" in line
    assert await mailbox(world.node, "bob@hamburger.edu") == []


async def test_every_recipient_refused(world):
    result = await mailstack(
        "send", "--from", "alice@crepes.fr", "--to", "nobody@crepes.fr", "--body", "x",
        "--server", world.at("submission"), "--ca-file", world.ca,
        "--password-file", world.password_file,
    )  # fmt: skip
    line = one_line(result, status=2)
    assert line.startswith("mailstack: nobody@crepes.fr: refused: 550 5.1.1 ")
    assert result.stdout == b""


async def test_direct_to_a_domain_that_does_not_exist(world):
    result = await mailstack(
        "send", "--direct", "--from", "alice@crepes.fr", "--to", "bob@nowhere.crepes.fr",
        "--body", "x", "--dns", world.dns, "--port", str(world.node.port("smtp")),
    )  # fmt: skip
    line = one_line(result, status=2)
    refused = "550 5.1.2 domain nowhere.crepes.fr does not exist"
    assert line == f"mailstack: bob@nowhere.crepes.fr: refused: {refused}"


async def test_attachment_that_does_not_exist(world):
    missing = world.tmp / "nope.pdf"
    line = one_line(await mailstack(*send(world, "--attach", str(missing), "--dry-run")))
    assert line == f"mailstack: --attach {missing}: no such file"


async def test_folder_that_does_not_exist(world):
    line = one_line(await mailstack(*imap(world, "--folder", "Recettes")))
    assert line.startswith("mailstack: no folder 'Recettes' on the server")


@pytest.mark.parametrize(
    ("more", "said"),
    [
        (["--server", "nonsense:port"], "--server 'nonsense:port': expected HOST:PORT"),
        (["--to", "not an address"], "--to 'not an address' is not an address"),
        (["--header", "Subject: twice"], "--header Subject: set by send's own options"),
        (["--html-file", "/no/such.html"], "--html-file /no/such.html: no such file"),
        (["--ca-file", "/no/such.pem", "--server", "127.0.0.1:1"], "--ca-file /no/such.pem"),
    ],
)
async def test_bad_send_options(world, more, said):
    assert said in one_line(await mailstack(*send(world, *more)))


async def test_bad_read_options(world):
    assert "unknown term" in one_line(await mailstack(*imap(world, "--search", "colour:red")))
    assert "YYYY-MM-DD" in one_line(await mailstack(*imap(world, "--search", "since:yesterday")))
    line = one_line(await mailstack(*imap(world, "7")))
    assert line == "mailstack: no message 7 in the folder"
    line = one_line(await mailstack(
        "read", "--pop3", world.at("pop3"), "--user", "bob@hamburger.edu",
        "--password-file", world.password_file,
    ))  # fmt: skip
    assert "give --maildir DIR" in line
    no_password = await mailstack(
        "read", "--imap", world.at("imap"), "--user", "bob@hamburger.edu"
    )
    assert "no password for bob@hamburger.edu" in one_line(no_password)
    assert PASSWORD not in no_password.stderr.decode()
