"""Typed configuration: `mailstack.toml` over defaults that run unprivileged.

The file has a few node-wide tables (`[node]`, `[listen]`, `[tls]`, `[store]`,
`[log]`, `[limits]`) and one table per package (`[smtp]`, `[submission]`, `[pop3]`,
`[imap]`, `[dns]`, `[queue]`), each a frozen dataclass declared with
mailstack.schema in its own package (`<pkg>/config.py`). TABLES lists them: it
is the whole schema of the file, which `Config.from_table` validates (unknown
tables and keys are refused), `defaults_toml` writes for `mailstack init`, and
docs/configuration.md documents key for key (tests/unit/test_config.py).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from mailstack.certs.config import AcmeConfig
from mailstack.dns.config import DnsConfig
from mailstack.errors import ConfigError
from mailstack.http.config import HttpConfig
from mailstack.imap.config import ImapConfig
from mailstack.jmap.config import JmapConfig
from mailstack.limits import Limits
from mailstack.pop3.config import Pop3Config
from mailstack.queue.config import QueueConfig
from mailstack.schema import Convert, Invalid, address_text, keys, load, option, to_toml
from mailstack.smtp.config import SmtpConfig, SubmissionConfig
from mailstack.webmail.config import WebmailConfig

CONFIG_NAME = "mailstack.toml"


def default_data_dir() -> Path:
    if env := os.environ.get("MAILSTACK_DATA"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "mailstack"


def _listener(value: Any) -> tuple[str, int] | None:
    """`"HOST:PORT"` (an IPv6 host in brackets); an empty string leaves it off."""
    if not isinstance(value, str):
        raise Invalid("expected HOST:PORT in a string")
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise Invalid(f"expected HOST:PORT, got {value!r}")
    try:
        number = int(port)
    except ValueError:
        raise Invalid(f"bad port {port!r}") from None
    if not 0 <= number <= 65535:
        raise Invalid(f"port {number} out of range")
    return host.strip("[]"), number


def _listener_text(address: tuple[str, int] | None) -> str:
    return "" if address is None else address_text(address)


Listener = Annotated[tuple[str, int] | None, Convert(_listener, _listener_text)]


@dataclass(frozen=True, slots=True)
class NodeConfig:
    hostname: str = option(
        "",
        "the name this node gives in greetings (SMTP 220, POP3, IMAP), Received: headers "
        "and its self-signed certificate; empty means the machine's host name",
    )
    data_dir: str = option(
        "",
        "where the store, TLS files, zone files and ports.json live; empty means the "
        "directory holding this file",
    )


# Port 0 asks the OS for any free port. Each key is a service of app.SERVICES.
@dataclass(frozen=True, slots=True)
class ListenConfig:
    smtp: Listener = option(("127.0.0.1", 2525), "SMTP receiver, MX role (RFC 5321)")
    submission: Listener = option(
        ("127.0.0.1", 5870), "message submission with STARTTLS (RFC 6409)"
    )
    submissions: Listener = option(
        ("127.0.0.1", 4650), "message submission over implicit TLS (RFC 8314)"
    )
    pop3: Listener = option(("127.0.0.1", 1100), "POP3 with STLS (RFC 1939, RFC 2595)")
    pop3s: Listener = option(("127.0.0.1", 9950), "POP3 over implicit TLS (RFC 8314)")
    imap: Listener = option(("127.0.0.1", 1430), "IMAP with STARTTLS (RFC 3501, RFC 9051)")
    imaps: Listener = option(("127.0.0.1", 9930), "IMAP over implicit TLS (RFC 8314)")
    dns: Listener = option(
        ("127.0.0.1", 5300), "DNS over UDP and TCP, authoritative and resolver (RFC 1035)"
    )
    http: Listener = option(
        ("127.0.0.1", 8025), "HTTP: JMAP and the node's web routes, plain (loopback only)"
    )
    https: Listener = option(
        ("127.0.0.1", 4430), "HTTP over implicit TLS with the node's certificate (RFC 9110)"
    )


@dataclass(frozen=True, slots=True)
class TlsConfig:
    cert: str = option(
        "tls/cert.pem",
        "PEM certificate chain; a relative path is under data_dir. init makes a self-signed pair",
    )
    key: str = option("tls/key.pem", "PEM private key (mode 0600)")


def postgres_url(value: Any) -> str:
    """A libpq URL without a password: the password comes from a file or the
    environment (``password_file``, ``password_env``), never from this file."""
    if not isinstance(value, str):
        raise Invalid("expected a postgresql:// URL in a string")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres"):
        raise Invalid(f"expected a postgresql:// URL, got {value!r}")
    try:
        parts.port  # noqa: B018 (a bad port raises)
    except ValueError:
        raise Invalid(f"bad port in {value!r}") from None
    if parts.password is not None or "password=" in parts.query:
        raise Invalid("keep the password out of the URL: use password_file or password_env")
    return value


PostgresUrl = Annotated[str, Convert(postgres_url)]


@dataclass(frozen=True, slots=True)
class StoreConfig:
    backend: Literal["sqlite", "postgresql"] = option(
        "sqlite",
        "the store: sqlite is the embedded one; postgresql is shared by several nodes",
    )
    path: str = option("mailstack.db", "the SQLite database; a relative path is under data_dir")
    url: PostgresUrl = option(
        "",
        "(postgresql) where the database is: postgresql://USER@HOST:PORT/DATABASE, "
        "without a password",
    )
    password_file: str = option(
        "",
        "(postgresql) a file holding the database password (one line; a relative path is "
        "under data_dir); empty: no file",
    )
    password_env: str = option(
        "",
        "(postgresql) an environment variable holding the database password; empty: none",
    )
    pool_size: int = option(
        10, "(postgresql) connections each node keeps to the database at most", minimum=2,
        maximum=1000,
    )
    node: str = option(
        "",
        "(postgresql) this node's name in `mailstack cluster status` and on the queue "
        "entries it claims, unique among the nodes; empty means HOST:PID",
    )
    lease: float = option(
        60.0,
        "(postgresql) seconds after a node's last heartbeat (every lease/4 seconds) that "
        "the queue entries it claimed pass to the other nodes",
        minimum=1,
        maximum=86400,
    )

    def __post_init__(self) -> None:
        if self.backend == "postgresql" and not self.url:
            raise Invalid("backend postgresql needs a url", key="url")
        if self.password_file and self.password_env:
            raise Invalid("name one of password_file and password_env", key="password_env")


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = option(
        "info", "the least severe messages logged (serve -v logs debug whatever this says)"
    )
    file: str = option(
        "",
        "append the log to this file (mode 0600; a relative path is under data_dir); "
        "empty means standard error",
    )
    json: bool = option(
        False, "one JSON object per line, each event's fields as its keys, instead of text"
    )


# The tables of mailstack.toml, in the order `mailstack init` writes them.
TABLES: dict[str, type] = {
    "node": NodeConfig,
    "listen": ListenConfig,
    "tls": TlsConfig,
    "store": StoreConfig,
    "log": LogConfig,
    "limits": Limits,
    "smtp": SmtpConfig,
    "submission": SubmissionConfig,
    "queue": QueueConfig,
    "pop3": Pop3Config,
    "imap": ImapConfig,
    "dns": DnsConfig,
    "acme": AcmeConfig,
    "webmail": WebmailConfig,
    "http": HttpConfig,
    "jmap": JmapConfig,
}


def _unknown(name: str, value: Any) -> ConfigError:
    """The error for a top-level name the schema lacks: a misspelt table, or a
    key written above every table header."""
    known = ", ".join(TABLES)
    if isinstance(value, dict):
        return ConfigError(f"[{name}]: unknown table (known: {known})")
    homes = [table for table, klass in TABLES.items() if name in (k.name for k in keys(klass))]
    hint = f"; it belongs under [{homes[0]}]" if homes else f" (tables: {known})"
    return ConfigError(f"{name}: a key outside any table{hint}")


def _listen_table(listen: dict[str, Any]) -> dict[str, Any]:
    """A [listen] table names every service that runs: a key left out is off,
    and a key whose service this version lacks stops the node at start."""
    for name in listen:
        if name not in DEFAULT_LISTEN:
            services = ", ".join(DEFAULT_LISTEN)
            raise ConfigError(f"listen.{name}: this version has no {name} service ({services})")
    return dict.fromkeys(DEFAULT_LISTEN, "") | listen


# listen name -> the default "HOST:PORT".
DEFAULT_LISTEN: dict[str, str] = {
    name: _listener_text(address) for name, address in dataclasses.asdict(ListenConfig()).items()
}


@dataclass(frozen=True, slots=True)
class Config:
    """A node's configuration: every table of the file, read and checked."""

    data_dir: Path
    hostname: str
    # The services that listen, each on (host, port).
    listen: dict[str, tuple[str, int]]
    tls: TlsConfig
    store: StoreConfig
    log: LogConfig
    limits: Limits
    smtp: SmtpConfig
    submission: SubmissionConfig
    queue: QueueConfig
    pop3: Pop3Config
    imap: ImapConfig
    dns: DnsConfig
    acme: AcmeConfig
    webmail: WebmailConfig
    http: HttpConfig
    jmap: JmapConfig
    path: Path | None = None

    @property
    def cert_path(self) -> Path:
        return self._under_data_dir(self.tls.cert) or self.data_dir / "tls" / "cert.pem"

    @property
    def key_path(self) -> Path:
        return self._under_data_dir(self.tls.key) or self.data_dir / "tls" / "key.pem"

    @property
    def database_path(self) -> Path:
        return self._under_data_dir(self.store.path) or self.data_dir / "mailstack.db"

    def store_password(self) -> str | None:
        """The PostgreSQL password from ``password_file`` or ``password_env``;
        None when neither is set (trust, peer or a ~/.pgpass of libpq's)."""
        if self.store.password_env:
            try:
                return os.environ[self.store.password_env]
            except KeyError:
                raise ConfigError(
                    f"store.password_env: the environment has no {self.store.password_env}"
                ) from None
        path = self._under_data_dir(self.store.password_file)
        if path is None:
            return None
        try:
            return path.read_text().splitlines()[0] if path.stat().st_size else ""
        except OSError as exc:
            raise ConfigError(f"store.password_file: cannot read {path}: {exc.strerror}") from None

    @property
    def log_path(self) -> Path | None:
        """The log file, or None when the log goes to standard error."""
        return self._under_data_dir(self.log.file)

    def _under_data_dir(self, value: str) -> Path | None:
        if not value:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.data_dir / path

    @classmethod
    def defaults(cls, data_dir: Path) -> Config:
        return cls.from_table({}, data_dir)

    @classmethod
    def from_table(cls, table: dict[str, Any], data_dir: Path, path: Path | None = None) -> Config:
        for name, value in table.items():
            if name not in TABLES:
                raise _unknown(name, value)
        if isinstance(table.get("listen"), dict):
            table = table | {"listen": _listen_table(table["listen"])}
        sections: dict[str, Any] = {
            name: load(klass, table.get(name, {}), name) for name, klass in TABLES.items()
        }
        node: NodeConfig = sections.pop("node")
        listen: ListenConfig = sections.pop("listen")
        return cls(
            data_dir=Path(node.data_dir or data_dir).expanduser(),
            hostname=node.hostname or socket.gethostname() or "localhost",
            listen={
                name: address
                for name, address in dataclasses.asdict(listen).items()
                if address is not None
            },
            path=path,
            **sections,
        )

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            with open(path, "rb") as f:
                table = tomllib.load(f)
            return cls.from_table(table, path.parent, path)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file (run `mailstack init`)") from None
        except (tomllib.TOMLDecodeError, ConfigError) as exc:
            raise ConfigError(f"{path}: {exc}") from None


def defaults_toml(data_dir: Path, hostname: str) -> str:
    """The text `mailstack init` writes: every key, its default and its documentation."""
    sections: dict[str, object] = {name: klass() for name, klass in TABLES.items()}
    sections["node"] = NodeConfig(hostname=hostname, data_dir=str(data_dir))
    header = "# mailstack configuration; every key is documented in docs/configuration.md.\n"
    body = "\n\n".join(to_toml(name, section) for name, section in sections.items())
    return f"{header}\n{body}\n"
