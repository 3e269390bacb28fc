"""The `[http]` table: who may log in over plain HTTP, and the public URL
the node's absolute links use. Limits live in `[limits]` (http_*) and
`[jmap]`; mailstack.schema reads and writes this table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from mailstack.schema import Convert, Invalid, option


def _base_url(value: Any) -> str:
    """``https://host[:port][/path]`` (or ``http://``), without query or
    fragment; a trailing slash is dropped. Empty: none."""
    if not isinstance(value, str):
        raise Invalid("expected a URL in a string")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"expected an http:// or https:// URL, got {value!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise Invalid(f"no query, fragment or credentials in {value!r}")
    return value.rstrip("/")


BaseUrl = Annotated[str, Convert(_base_url)]


@dataclass(frozen=True, slots=True)
class HttpConfig:
    # RFC 7617 §4 and RFC 6750 §5.3: credentials only over TLS; loopback is
    # the machine itself (a local client, or a TLS proxy in front).
    allow_plaintext_on_loopback: bool = option(
        True,
        "HTTP Basic and bearer tokens over plain HTTP from 127.0.0.0/8 and ::1; elsewhere "
        "only over https",
    )
    public_url: BaseUrl = option(
        "",
        "the URL clients reach this node's HTTP service at (e.g. https://mail.example.org), "
        "for the absolute URLs of the JMAP session; empty: the scheme and Host of each request",
    )
