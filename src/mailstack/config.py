"""Typed configuration: `mailstack.toml` over defaults that run unprivileged.

The file has a few node-wide tables (`[node]`, `[listen]`, `[tls]`,
`[store]`, `[limits]`) and one table per protocol package (`[smtp]`,
`[pop3]`, `[imap]`, `[dns]`), each parsed by that package's own section class
(`<pkg>/config.py`: `from_table()` and `defaults_toml()`). docs/configuration.md
documents every key.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailstack.errors import ConfigError
from mailstack.limits import Limits

CONFIG_NAME = "mailstack.toml"

# listen name -> default address. Port 0 asks the OS for any free port.
DEFAULT_LISTEN: dict[str, str] = {
    "smtp": "127.0.0.1:2525",
    "submission": "127.0.0.1:5870",
    "submissions": "127.0.0.1:4650",
    "pop3": "127.0.0.1:1100",
    "pop3s": "127.0.0.1:9950",
    "imap": "127.0.0.1:1430",
    "imaps": "127.0.0.1:9930",
    "dns": "127.0.0.1:5300",
    "http": "127.0.0.1:8025",
}

# Each protocol package's section: table name -> "module:Class".
SECTIONS: dict[str, str] = {
    "smtp": "mailstack.smtp.config:SmtpConfig",
    "pop3": "mailstack.pop3.config:Pop3Config",
    "imap": "mailstack.imap.config:ImapConfig",
    "dns": "mailstack.dns.config:DnsConfig",
    "queue": "mailstack.queue.config:QueueConfig",
    "submission": "mailstack.queue.config:SubmissionConfig",
}


def default_data_dir() -> Path:
    if env := os.environ.get("MAILSTACK_DATA"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "mailstack"


def parse_hostport(text: str, key: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"listen.{key}: expected HOST:PORT, got {text!r}")
    host = host.strip("[]")
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"listen.{key}: bad port {port!r}") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"listen.{key}: port {number} out of range")
    return host, number


def section_class(name: str) -> Any:
    module, _, cls = SECTIONS[name].partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ModuleNotFoundError as exc:
        # Only a package this version does not have; a broken import still raises.
        if exc.name is None or not module.startswith(exc.name):
            raise
        return None


@dataclass
class Config:
    data_dir: Path
    hostname: str
    listen: dict[str, tuple[str, int]]
    limits: Limits = field(default_factory=Limits)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    store_backend: str = "sqlite"
    store_path: Path | None = None
    sections: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __getattr__(self, name: str) -> Any:
        # config.smtp, config.dns, ...: the protocol sections
        sections = self.__dict__.get("sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(name)

    @property
    def cert_path(self) -> Path:
        return self.tls_cert or self.data_dir / "tls" / "cert.pem"

    @property
    def key_path(self) -> Path:
        return self.tls_key or self.data_dir / "tls" / "key.pem"

    @property
    def database_path(self) -> Path:
        return self.store_path or self.data_dir / "mailstack.db"

    @classmethod
    def defaults(cls, data_dir: Path) -> Config:
        return cls.from_table({}, data_dir)

    @classmethod
    def from_table(cls, table: dict[str, Any], data_dir: Path, path: Path | None = None) -> Config:
        node = table.get("node", {})
        data_dir = Path(node.get("data_dir", data_dir)).expanduser()
        hostname = str(node.get("hostname") or socket.gethostname() or "localhost")

        listen_table = table.get("listen", DEFAULT_LISTEN if "listen" not in table else {})
        listen = {}
        for key, value in listen_table.items():
            if key not in DEFAULT_LISTEN:
                raise ConfigError(
                    f"listen.{key}: unknown service (known: {', '.join(DEFAULT_LISTEN)})"
                )
            if value:
                listen[key] = parse_hostport(str(value), key)

        limits_table = table.get("limits", {})
        known = {f.name: f for f in dataclasses.fields(Limits)}
        for key, value in limits_table.items():
            if key not in known:
                raise ConfigError(f"limits.{key}: unknown limit")
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"limits.{key}: must be a number")
            if value < 0 or (value == 0 and key not in Limits.ZERO_MEANS_OFF):
                raise ConfigError(f"limits.{key}: must be a positive number")
        limits = Limits(**limits_table)

        tls = table.get("tls", {})
        store = table.get("store", {})
        backend = store.get("backend", "sqlite")
        if backend != "sqlite":
            raise ConfigError(f"store.backend: {backend!r} is not available (known: sqlite)")

        def resolve(value: str | None) -> Path | None:
            if not value:
                return None
            p = Path(value).expanduser()
            return p if p.is_absolute() else data_dir / p

        sections = {}
        for name in SECTIONS:
            klass = section_class(name)
            if klass is not None:
                sections[name] = klass.from_table(table.get(name, {}))
        return cls(
            data_dir=data_dir,
            hostname=hostname,
            listen=listen,
            limits=limits,
            tls_cert=resolve(tls.get("cert")),
            tls_key=resolve(tls.get("key")),
            store_backend=backend,
            store_path=resolve(store.get("path")),
            sections=sections,
            path=path,
        )

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            with open(path, "rb") as f:
                table = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file (run `mailstack init`)") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        return cls.from_table(table, path.parent, path)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def defaults_toml(data_dir: Path, hostname: str) -> str:
    """The text `mailstack init` writes: every default spelled out."""
    out = [
        "# mailstack configuration; every key is documented in docs/configuration.md.",
        "",
        "[node]",
        "# The name this node gives in greetings (SMTP 220, POP3, IMAP) and Received: headers.",
        f"hostname = {_toml_value(hostname)}",
        f"data_dir = {_toml_value(str(data_dir))}",
        "",
        "[listen]",
        '# service = "HOST:PORT"; an empty string or a missing key leaves it off;',
        "# port 0 means any free port (the real ones go to DATA/ports.json).",
    ]
    out += [f"{key} = {_toml_value(value)}" for key, value in DEFAULT_LISTEN.items()]
    out += [
        "",
        "[tls]",
        "# PEM files; relative paths are under data_dir. init makes a self-signed pair.",
        'cert = "tls/cert.pem"',
        'key = "tls/key.pem"',
        "",
        "[store]",
        'backend = "sqlite"',
        'path = "mailstack.db"',
        "",
        "[limits]",
    ]
    for f in dataclasses.fields(Limits):
        out.append(f"{f.name} = {_toml_value(f.default)}")
    for name in SECTIONS:
        klass = section_class(name)
        if klass is not None:
            out += ["", klass.defaults_toml().rstrip()]
    return "\n".join(out) + "\n"
