"""A new user's first hour (issue 11): a real host name, domains that are
domains, records that resolve, all-or-nothing `domain add`, checked
addresses and passwords, aliases that are not dead, and postmaster."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from mailstack import cli
from mailstack.cli import main
from mailstack.names import MIN_PASSWORD_LENGTH
from mailstack.store import NewDomain

from support import wait_served

PASSWORD = "long enough\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_run(*args: str, stdin: int | str | None = None) -> subprocess.CompletedProcess[str]:
    """As a user runs it, from a script: stdin is no terminal."""
    return subprocess.run(
        [sys.executable, "-m", "mailstack.cli", *args],
        stdin=subprocess.DEVNULL if stdin is None else None,
        input=stdin if isinstance(stdin, str) else None,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def node_dir(tmp_path: Path, capsys) -> Path:
    data = tmp_path / "node"
    assert run(capsys, "init", "--data-dir", str(data), "--hostname", "mail.crepes.fr")[0] == 0
    return data


def state(capsys, data: Path) -> tuple[str, str, str, str]:
    """Everything `domain add` could have made: domains, keys, zones, aliases."""
    where = ("--data-dir", str(data))
    outputs = []
    for argv in (("domain", "list"), ("domain", "dkim-list"), ("dns", "zone", "list")):
        code, out, err = run(capsys, *argv, *where)
        assert code == 0, err
        outputs.append(out)
    outputs.append(run(capsys, "alias", "list", *where)[1])
    return outputs[0], outputs[1], outputs[2], outputs[3]


# -- 1. the host name -----------------------------------------------------------


def test_init_refuses_a_single_label_host_name(tmp_path, capsys, monkeypatch) -> None:
    data = tmp_path / "node"
    code, _, err = run(capsys, "init", "--data-dir", str(data), "--hostname", "vm")
    assert code == 1 and "single label" in err and "mail.example.org" in err
    assert not (data / "mailstack.toml").exists()
    # Derived from the machine when not given; a machine called "vm" is refused too.
    monkeypatch.setattr(cli.socket, "getfqdn", lambda: "vm")
    code, _, err = run(capsys, "init", "--data-dir", str(data))
    assert code == 1 and "'vm'" in err and "--hostname" in err and "Traceback" not in err
    monkeypatch.setattr(cli.socket, "getfqdn", lambda: "box.hamburger.edu")
    code, out, _ = run(capsys, "init", "--data-dir", str(data))
    assert code == 0 and "host name box.hamburger.edu" in out


def test_first_serve_on_a_machine_without_a_real_name_starts(tmp_path, capsys, monkeypatch):
    """`make serve` must start with the embedded defaults on any machine: with
    no fully-qualified name and no terminal, the node is mail.localhost
    (RFC 6761 §6.3: loopback, where the defaults listen), and says so."""
    import mailstack.app

    served = []

    async def serve(config, *, trace=False, ready=None):
        served.append(config)

    monkeypatch.setattr(mailstack.app, "run", serve)
    monkeypatch.setattr(cli.socket, "getfqdn", lambda: "vm")
    monkeypatch.setenv("MAILSTACK_DATA", str(tmp_path / "data"))
    code, out, _ = run(capsys, "serve")
    assert code == 0 and "mail.localhost" in out and "init --hostname" in out
    [config] = served
    assert config.hostname == cli.EMBEDDED_HOSTNAME == "mail.localhost"
    assert (tmp_path / "data" / "mailstack.toml").exists()
    # init itself still refuses to guess.
    code, _, err = run(capsys, "init", "--data-dir", str(tmp_path / "other"))
    assert code == 1 and "--hostname" in err


def test_cert_self_signed_follows_the_host_name(node_dir, capsys) -> None:
    config = node_dir / "mailstack.toml"
    config.write_text(config.read_text().replace('"mail.crepes.fr"', '"mx.crepes.fr"'))
    code, out, _ = run(capsys, "cert", "self-signed", "--data-dir", str(node_dir))
    assert code == 0 and "--ca-file" in out
    cert = x509.load_pem_x509_certificate((node_dir / "tls" / "cert.pem").read_bytes())
    [cn] = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert cn.value == "mx.crepes.fr"


# -- 2 and 3: names checked before anything is made --------------------------------


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("com", "single label"),
        ("co.uk", "public suffix"),
        ("github.io", "public suffix"),
        ("127.0.0.1", "IP address"),
        ("[::1]", "IP address"),
        ("lan", "single label"),
        ("bad..name", "empty label"),
        ("exa mple.com", "letters, digits"),
        ("x-.example", "letters, digits"),
        ("a" * 64 + ".example", "over 63"),
    ],
)
def test_domain_add_refuses_what_is_no_mail_domain(node_dir, capsys, name, says) -> None:
    code, _, err = run(capsys, "domain", "add", name, "--data-dir", str(node_dir))
    assert code == 1 and says in err and "Traceback" not in err
    assert state(capsys, node_dir) == ("", "", "", "")


def test_force_admits_a_single_label_but_never_an_address(node_dir, capsys) -> None:
    where = ("--data-dir", str(node_dir), "--force", "--no-dns")
    assert run(capsys, "domain", "add", "lan", *where)[0] == 0
    assert run(capsys, "domain", "add", "127.0.0.1", *where)[0] == 1
    assert state(capsys, node_dir)[0] == "lan\n"


def test_a_failing_domain_add_leaves_nothing(node_dir, capsys) -> None:
    # The postmaster named does not exist: refused before anything is made ...
    where = ("--data-dir", str(node_dir))
    code, _, err = run(
        capsys, "domain", "add", "crepes.fr", "--postmaster", "chef@crepes.fr", *where
    )
    assert code == 1 and "no such local account" in err
    # ... and a bad selector fails while the keys are being made.
    code, _, err = run(capsys, "domain", "add", "crepes.fr", "--selector", "bad selector", *where)
    assert code == 1 and "selector" in err
    assert state(capsys, node_dir) == ("", "", "", "")
    code, out, _ = run(capsys, "domain", "add", "crepes.fr", *where)
    assert code == 0 and "postmaster@crepes.fr: the first user" in out
    domains, dkim, zones, _ = state(capsys, node_dir)
    assert domains == "crepes.fr\n" and dkim.count("crepes.fr") == 2 and "crepes.fr." in zones
    code, _, err = run(capsys, "domain", "add", "crepes.fr", *where)
    assert code == 1 and "exists" in err


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("a@b@crepes.fr", "not a mail address"),
        ("a b@crepes.fr", "not a mail address"),
        ('"a b"@crepes.fr', "dot-atom"),
        ("alice", "not a mail address"),
        ("x" * 65 + "@crepes.fr", "over 64"),
    ],
)
def test_user_add_refuses_bad_addresses(node_dir, capsys, address, says) -> None:
    where = ("--data-dir", str(node_dir))
    assert run(capsys, "domain", "add", "crepes.fr", "--no-dns", *where)[0] == 0
    result = cli_run("user", "add", address, "--password-stdin", *where, stdin=PASSWORD)
    assert result.returncode == 1 and says in result.stderr
    assert "Traceback" not in result.stderr
    assert run(capsys, "user", "list", "--data-dir", str(node_dir))[1] == ""


def test_user_add_passwords(node_dir, capsys) -> None:
    where = ("--data-dir", str(node_dir))
    assert run(capsys, "domain", "add", "crepes.fr", "--no-dns", *where)[0] == 0
    # No terminal to ask on and no --password-stdin: one line, no EOFError.
    result = cli_run("user", "add", "alice@crepes.fr", *where)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "mailstack: no terminal to ask for the password: give it with --password-stdin"
    ]
    short = "x" * (MIN_PASSWORD_LENGTH - 1) + "\n"
    result = cli_run("user", "add", "alice@crepes.fr", "--password-stdin", *where, stdin=short)
    assert result.returncode == 1 and f"at least {MIN_PASSWORD_LENGTH} characters" in result.stderr
    assert run(capsys, "user", "list", *where)[1] == ""
    enough = "x" * MIN_PASSWORD_LENGTH + "\n"
    result = cli_run("user", "add", "alice@crepes.fr", "--password-stdin", *where, stdin=enough)
    assert result.returncode == 0, result.stderr
    result = cli_run("user", "passwd", "alice@crepes.fr", "--password-stdin", *where, stdin=short)
    assert result.returncode == 1 and "at least" in result.stderr


# -- 9 and 10: aliases and postmaster --------------------------------------------


def test_alias_whose_source_is_an_account_is_refused(node_dir, capsys) -> None:
    where = ("--data-dir", str(node_dir))
    assert run(capsys, "domain", "add", "crepes.fr", "--no-dns", *where)[0] == 0
    for user in ("alice@crepes.fr", "bob@crepes.fr"):
        result = cli_run("user", "add", user, "--password-stdin", *where, stdin=PASSWORD)
        assert result.returncode == 0, result.stderr
    code, _, err = run(capsys, "alias", "add", "bob@crepes.fr", "alice@crepes.fr", *where)
    assert code == 1 and "bob@crepes.fr is an account" in err
    code, _, err = run(capsys, "alias", "add", "x@@crepes.fr", "alice@crepes.fr", *where)
    assert code == 1 and "not a mail address" in err
    assert run(capsys, "alias", "add", "@crepes.fr", "alice@crepes.fr", *where)[0] == 0


def test_domain_add_postmaster_option(node_dir, capsys) -> None:
    where = ("--data-dir", str(node_dir))
    assert run(capsys, "domain", "add", "crepes.fr", "--no-dns", *where)[0] == 0
    result = cli_run("user", "add", "alice@crepes.fr", "--password-stdin", *where, stdin=PASSWORD)
    assert "postmaster@crepes.fr -> alice@crepes.fr" in result.stdout
    code, out, _ = run(
        capsys, "domain", "add", "quiche.fr", "--no-dns", "--postmaster", "alice@crepes.fr", *where
    )
    assert code == 0 and "postmaster@quiche.fr -> alice@crepes.fr" in out
    assert run(capsys, "alias", "list", *where)[1].splitlines() == [
        "postmaster@crepes.fr -> alice@crepes.fr",
        "postmaster@quiche.fr -> alice@crepes.fr",
    ]


async def test_postmaster_is_never_refused_for_a_local_domain(node_factory) -> None:
    node = await node_factory(listen=("smtp",), hostname="mx.hamburger.edu")
    await node.store.domain_create(NewDomain("hamburger.edu"))
    await node.store.domain_create(NewDomain("crepes.fr"))

    def rcpt(*addresses: str) -> list[int]:
        with smtplib.SMTP("127.0.0.1", node.port("smtp"), local_hostname="a.example") as s:
            s.ehlo()
            s.mail("")
            return [s.rcpt(address)[0] for address in addresses]

    everyone = ("postmaster@hamburger.edu", "PostMaster@crepes.fr", "Postmaster")
    # Nobody to read it yet: try later (RFC 5321 §4.5.1 rules out a 5xx).
    assert await asyncio.to_thread(rcpt, *everyone) == [450, 450, 450]
    assert await asyncio.to_thread(rcpt, "postmaster@elsewhere.example") == [550]
    bob = await node.store.account_add("bob@hamburger.edu", "hungry-bob", postmaster=True)
    assert await asyncio.to_thread(rcpt, *everyone) == [250, 250, 250]

    def send(*rcpt_to: str) -> None:
        with smtplib.SMTP("127.0.0.1", node.port("smtp"), local_hostname="a.example") as s:
            s.sendmail("", list(rcpt_to), b"Subject: bounce\r\n\r\nfor the postmaster\r\n")

    inbox = await node.store.mailbox_get(bob.id, "INBOX")
    # <Postmaster> alone is delivered (the envelope keeps RCPT's text) ...
    await asyncio.to_thread(send, "Postmaster")
    assert len(await node.store.messages(inbox.id)) == 1
    # ... and one copy reaches the mailbox however many addresses lead there.
    await asyncio.to_thread(send, *everyone)
    assert len(await node.store.messages(inbox.id)) == 2


# -- 1: records that resolve, a check that fails what does not, republish --------


async def test_records_resolve_check_fails_the_unresolved_and_republish(
    node_factory, tmp_path
) -> None:
    dns_node = await node_factory(listen=("dns",), hostname="ns.test")
    data = tmp_path / "cli"
    data.mkdir()
    config = data / "mailstack.toml"

    def configure(hostname: str) -> None:
        config.write_text(
            f'[node]\nhostname = "{hostname}"\n\n[listen]\nsmtp = "127.0.0.2:2525"\n'
            f'[store]\npath = "{dns_node.config.database_path}"\n'
        )

    def mailstack(*argv: str) -> int:
        return main([*argv, "--data-dir", str(data)])

    server = ("--server", f"127.0.0.1:{dns_node.port('dns')}")
    configure("mail.hamburger.edu")
    assert await asyncio.to_thread(mailstack, "domain", "add", "hamburger.edu") == 0
    await wait_served(dns_node.port("dns"), "_dmarc.hamburger.edu")
    assert await asyncio.to_thread(mailstack, "domain", "check", "hamburger.edu", *server) == 0

    # A host name outside the node's zones, which nobody publishes: the MX
    # does not resolve and `domain check` says so.
    configure("mail.nowhere.example")
    assert await asyncio.to_thread(mailstack, "domain", "add", "crepes.fr") == 0
    await wait_served(dns_node.port("dns"), "_dmarc.crepes.fr")
    assert await asyncio.to_thread(mailstack, "domain", "check", "crepes.fr", *server) == 1

    # The host name changes to one in a zone the node serves: republish puts
    # the MX, SRV and NS on it and its A into hamburger.edu.
    configure("mx.hamburger.edu")
    assert await asyncio.to_thread(mailstack, "domain", "republish") == 0
    zone = await dns_node.store.zone_get("crepes.fr")
    texts = [r.to_text() for r in zone.records]
    assert "crepes.fr. 3600 IN MX 10 mx.hamburger.edu." in texts
    assert not any("nowhere" in text for text in texts[1:])
    hamburger = [r.to_text() for r in (await dns_node.store.zone_get("hamburger.edu")).records]
    assert "mx.hamburger.edu. 3600 IN A 127.0.0.2" in hamburger
    for _ in range(50):  # the DNS service polls the store once a second
        code = await asyncio.to_thread(mailstack, "domain", "check", "crepes.fr", *server)
        if code == 0:
            break
        await asyncio.sleep(0.2)
    assert code == 0


def test_domain_add_needs_an_address_for_a_host_it_publishes(node_dir, capsys) -> None:
    config = node_dir / "mailstack.toml"
    text = config.read_text().replace('smtp = "127.0.0.1:2525"', 'smtp = "0.0.0.0:2525"')
    others = ("submission", "submissions", "pop3", "pop3s", "imap", "imaps", "dns", "http", "https")
    for name in others:
        text = "\n".join(
            f'{name} = ""' if line.startswith(f"{name} = ") else line for line in text.splitlines()
        )
    config.write_text(text + "\n")
    where = ("--data-dir", str(node_dir))
    code, _, err = run(capsys, "domain", "add", "crepes.fr", *where)
    assert code == 1 and "--address" in err
    assert state(capsys, node_dir) == ("", "", "", "")
    code, out, _ = run(capsys, "domain", "add", "crepes.fr", "--address", "192.0.2.7", *where)
    assert code == 0
    code, out, _ = run(capsys, "domain", "dns", "crepes.fr", "--address", "192.0.2.7", *where)
    assert "mail.crepes.fr. 3600 IN A 192.0.2.7" in out


def test_init_checks_the_host_name_given(tmp_path) -> None:
    result = cli_run("init", "--data-dir", str(tmp_path / "n"), "--hostname", "bad..host")
    assert result.returncode == 1 and "empty label" in result.stderr


# -- 12: the quickstart's submission, trusting the node's self-signed certificate


async def test_quickstart_submission_needs_tls_and_trusts_the_node_certificate(
    node_factory,
) -> None:
    node = await node_factory(listen=("submission",), hostname="mail.hamburger.edu")
    await node.add_user("bob@hamburger.edu", "hungry-bob")
    cert = str(node.config.cert_path)

    def plaintext_refused() -> str:
        with smtplib.SMTP("127.0.0.1", node.port("submission"), timeout=10) as s:
            s.ehlo("crepes.fr")
            with pytest.raises(smtplib.SMTPException) as refused:
                s.login("bob@hamburger.edu", "hungry-bob")
            return str(refused.value)

    assert "AUTH" in await asyncio.to_thread(plaintext_refused)

    def submit() -> None:
        context = ssl.create_default_context(cafile=cert)
        with smtplib.SMTP("127.0.0.1", node.port("submission"), timeout=10) as s:
            s.starttls(context=context)
            s.login("bob@hamburger.edu", "hungry-bob")
            message = b"From: bob@hamburger.edu\r\nSubject: hi\r\n\r\nme\r\n"
            s.sendmail("bob@hamburger.edu", ["bob@hamburger.edu"], message)

    await asyncio.to_thread(submit)
    if shutil.which("swaks") is None:
        return
    swaks = await asyncio.to_thread(
        subprocess.run,
        ["swaks", "--server", "127.0.0.1", "--port", str(node.port("submission")),
         "--tls", "--tls-verify", "--tls-ca-path", cert,
         "--auth-user", "bob@hamburger.edu", "--auth-password", "hungry-bob",
         "--from", "bob@hamburger.edu", "--to", "bob@hamburger.edu"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert swaks.returncode == 0, swaks.stdout + swaks.stderr
    account = await node.store.account_get("bob@hamburger.edu")
    inbox = await node.store.mailbox_get(account.id, "INBOX")
    assert len(await node.store.messages(inbox.id)) == 2
