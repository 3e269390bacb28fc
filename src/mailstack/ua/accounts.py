"""Accounts the user agent remembers, and how it gets a password.

``~/.config/mailstack/accounts.toml`` (``$XDG_CONFIG_HOME``, or the file
``$MAILSTACK_ACCOUNTS`` names) holds one ``[account.NAME]`` table per
account, read with the schema engine of mailstack.toml (unknown keys are
errors), and optionally ``default = "NAME"``::

    default = "bob"

    [account.bob]
    user = "bob@hamburger.edu"
    from = "Bob <bob@hamburger.edu>"
    submission = "mail.hamburger.edu:587"
    imap = "mail.hamburger.edu:993"
    password_file = "~/.config/mailstack/bob.password"

A password may be written in the file itself only when the file is readable
by its owner alone (mode 0600): otherwise the file is refused.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mailstack.errors import ConfigError, MailstackError
from mailstack.schema import load, option

__all__ = ["Account", "accounts_path", "get_password", "load_account"]

PASSWORD_ENV = "MAILSTACK_PASSWORD"


@dataclass(frozen=True, slots=True)
class Account:
    """One `[account.NAME]` table."""

    user: str | None = option(None, "the login name (read/send --user)")
    sender: str | None = option(None, "send's --from", key="from")
    submission: str | None = option(None, "HOST:PORT of the submission server (send --server)")
    imap: str | None = option(None, "HOST:PORT of the IMAP server (read --imap)")
    pop3: str | None = option(None, "HOST:PORT of the POP3 server (read --pop3)")
    tls: Literal["starttls", "implicit", "none"] | None = option(None, "--tls")
    ca_file: str | None = option(None, "--ca-file: the PEM that verifies the servers")
    insecure: bool = option(False, "--insecure: do not verify certificates")
    dns: str | None = option(None, "--dns HOST:PORT for SRV and MX lookups")
    maildir: str | None = option(None, "--maildir: where POP3 downloads go")
    password_file: str | None = option(None, "a file whose first line is the password")
    password_env: str | None = option(None, "an environment variable that holds the password")
    password: str | None = option(None, "the password itself (only in a file of mode 0600)")


def accounts_path() -> Path:
    if env := os.environ.get("MAILSTACK_ACCOUNTS"):
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mailstack" / "accounts.toml"


def load_account(name: str | None) -> Account | None:
    """The account ``name`` (or the file's default when ``name`` is None)."""
    path = accounts_path()
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            document = tomllib.load(f)
    except FileNotFoundError:
        if name is None:
            return None
        raise ConfigError(f"--account {name}: no accounts file {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    unknown = set(document) - {"default", "account"}
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]} (known: default, account)")
    tables = document.get("account", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: account: expected [account.NAME] tables")
    chosen = name or document.get("default")
    if chosen is None:
        return None
    if not isinstance(chosen, str) or chosen not in tables:
        raise ConfigError(f"{path}: no [account.{chosen}]")
    account = load(Account, tables[chosen], f"{path}: account.{chosen}")
    if account.password is not None and stat.S_IMODE(mode) & 0o077:
        raise ConfigError(f"{path} holds a password but others may read it (chmod 600 {path})")
    return account


def get_password(
    *,
    password_file: str | None,
    account: Account | None,
    user: str,
) -> str:
    """The password: --password-file, $MAILSTACK_PASSWORD, the account's
    way, else asked at the terminal."""
    file = password_file or (account.password_file if account else None)
    if file is not None:
        path = Path(file).expanduser()
        try:
            return path.read_text("utf-8").splitlines()[0] if path.stat().st_size else ""
        except FileNotFoundError:
            raise MailstackError(f"password file {path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise MailstackError(f"password file {path}: cannot read it ({exc})") from None
    if (env := os.environ.get(PASSWORD_ENV)) is not None:
        return env
    if account is not None and account.password_env:
        value = os.environ.get(account.password_env)
        if value is None:
            raise MailstackError(f"${account.password_env} (the account's password_env) is unset")
        return value
    if account is not None and account.password is not None:
        return account.password
    if not sys.stdin.isatty():
        raise MailstackError(
            f"no password for {user}: give --password-file, ${PASSWORD_ENV} or a terminal"
        )
    return getpass.getpass(f"password for {user}: ")
