"""Postfix as a peer: a private instance (its own configuration, queue and
mail directories under the run's temporary directory) that listens on
127.0.0.1 only and delivers durably to a Maildir with virtual(8), the way
the issue's reference figure was taken. Needs Debian's `postfix` package
and root (Postfix's master starts as root and drops to the postfix user).

Nothing here looks up DNS: peer-name lookups are off and the only domain is
virtual, so no packet leaves loopback.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from bench.peers import postfix_no_dns

MASTER_CF = Path("/etc/postfix/master.cf")


def available() -> bool:
    return (
        shutil.which("postfix") is not None
        and MASTER_CF.exists()
        and os.geteuid() == 0
    )


def _master_cf(port: int) -> str:
    """Debian's services, none chrooted, with smtpd on our port only."""
    lines = []
    for line in MASTER_CF.read_text().splitlines():
        if not line.strip() or line.startswith(("#", " ", "\t")):
            continue
        fields = line.split()
        if fields[0] == "smtp" and fields[1] == "inet":
            continue
        if len(fields) >= 8 and fields[4] == "y":
            fields[4] = "n"
        lines.append(" ".join(fields))
    lines.append(f"127.0.0.1:{port} inet n - n - - smtpd")
    return "\n".join(lines) + "\n"


def main_cf(workdir: Path, uid: int, gid: int, postdrop: str) -> str:
    """The peer's main.cf: virtual(8) delivery for hamburger.edu only, and no
    DNS at all (bench/peers.py)."""
    etc, spool, data, mail = (workdir / name for name in ("etc", "spool", "data", "mail"))
    return f"""\
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = {postdrop}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = hamburger.edu
mydomain = hamburger.edu
myorigin = hamburger.edu
mydestination =
relay_domains =
mynetworks = 127.0.0.0/8
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
default_process_limit = 200
message_size_limit = 209715200
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = hamburger.edu
virtual_mailbox_base = {mail}
virtual_mailbox_maps = texthash:{etc / "vmailbox"}
virtual_mailbox_limit = 0
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
maillog_file_prefixes = {workdir}
maillog_file = {workdir / "maillog"}
alias_maps =
alias_database =
biff = no
""" + postfix_no_dns()


def start(workdir: Path, port: int) -> Path:
    """Start an instance; returns its configuration directory (for stop())."""
    etc, spool, data, mail = (workdir / name for name in ("etc", "spool", "data", "mail"))
    workdir.chmod(0o755)  # a TemporaryDirectory is root's alone; Postfix's daemons are not root
    for directory in (etc, spool, data, mail):
        directory.mkdir(parents=True)
    user = pwd.getpwnam("postfix")
    os.chown(data, user.pw_uid, user.pw_gid)
    os.chown(mail, user.pw_uid, user.pw_gid)
    (etc / "vmailbox").write_text("bob@hamburger.edu hamburger.edu/bob/\n")
    (etc / "master.cf").write_text(_master_cf(port))
    (etc / "main.cf").write_text(
        main_cf(workdir, user.pw_uid, user.pw_gid, grp.getgrnam("postdrop").gr_name)
    )
    started = subprocess.run(["postfix", "-c", str(etc), "start"], capture_output=True, text=True)
    if started.returncode:
        log = workdir / "maillog"
        raise RuntimeError(
            f"postfix did not start: {started.stderr.strip()}"
            + (f"\n{log.read_text()}" if log.exists() else "")
        )
    return etc


def stop(etc: Path) -> None:
    subprocess.run(["postfix", "-c", str(etc), "stop"], capture_output=True)
