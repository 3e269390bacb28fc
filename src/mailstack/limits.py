"""One Limits object: every bound that protects a server from its peers.

Limits are checked before data is buffered, never after (ARCHITECTURE.md, rule
4). Every field is a `[limits]` key in mailstack.toml; docs/configuration.md
documents each one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class Limits:
    # SMTP (RFC 5321 §4.5.3.1): a command line is 512 octets with CRLF, a text
    # line 1000; we allow longer command lines for extension parameters.
    smtp_command_line: int = 2048
    smtp_text_line: int = 1000
    message_size: int = 50 * 1024 * 1024
    recipients: int = 100
    commands_before_mail: int = 20
    errors_per_session: int = 10
    smtp_idle_timeout: float = 300.0
    smtp_sessions: int = 500
    received_headers: int = 50

    # POP3 (RFC 1939 §3: ten-minute autologout; RFC 2449 §4: 255-octet commands)
    pop3_line: int = 255
    pop3_idle_timeout: float = 600.0
    pop3_sessions: int = 500
    # A SASL response (RFC 5034 §4) is base64, not a command; it may pass pop3_line.
    pop3_sasl_line: int = 12288

    # IMAP (RFC 3501 §5.4: autologout no less than 30 minutes)
    imap_line: int = 64 * 1024
    imap_literal: int = 50 * 1024 * 1024
    imap_nesting: int = 32
    imap_idle_timeout: float = 1800.0
    imap_sessions: int = 2000
    imap_sessions_per_user: int = 50

    # Authentication throttling, shared by SMTP AUTH, POP3 and IMAP
    login_failures: int = 5
    login_failure_delay: float = 2.0

    # DNS
    dns_tcp_idle_timeout: float = 10.0
    dns_tcp_connections: int = 200
    dns_udp_rate: int = 500
    dns_recursive_clients: int = 1000

    # MIME parsing at delivery (mailstack.mime): nesting of multipart and
    # message/rfc822 beyond which parts are opaque, entities and header fields
    # indexed per message, characters of decoded body text kept for SEARCH.
    mime_nesting: int = 50
    mime_parts: int = 10_000
    mime_header_fields: int = 50_000
    mime_search_text: int = 1024 * 1024

    # Message authentication on the MX (mailstack.msgauth): seconds per DNS
    # question and for all of one message's SPF/DKIM/DMARC checks (past them
    # the result is temperror), DKIM-Signature fields verified per message.
    msgauth_dns_timeout: float = 5.0
    msgauth_timeout: float = 20.0
    dkim_signatures: int = 5

    # Limits that 0 switches off (documented so in docs/configuration.md).
    ZERO_MEANS_OFF: ClassVar[frozenset[str]] = frozenset({"dns_udp_rate"})

    def replace(self, **changes: object) -> Limits:
        from dataclasses import replace

        return replace(self, **changes)  # type: ignore[arg-type]
