"""One Limits object: every bound that protects a server from its peers.

Limits are checked before data is buffered, never after (ARCHITECTURE.md, rule
4). Every field is a `[limits]` key in mailstack.toml (mailstack.schema reads
and writes it); docs/configuration.md documents each one. Sizes are octets,
times seconds; only `dns_udp_rate` may be 0, which switches it off.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mailstack.schema import option


def count(default: int, doc: str) -> int:
    """A limit on a number of things: at least one."""
    return option(default, doc, minimum=1)


def seconds(default: float, doc: str) -> float:
    """A limit on time: more than zero seconds."""
    return option(default, doc, positive=True)


@dataclass(frozen=True, slots=True)
class Limits:
    # SMTP (RFC 5321 §4.5.3.1): a command line is 512 octets with CRLF, a text
    # line 1000; we allow longer command lines for extension parameters.
    smtp_command_line: int = count(2048, "octets in an SMTP command line, CRLF included")
    smtp_text_line: int = count(1000, "octets in a text line the SMTP client sends")
    message_size: int = count(50 * 1024 * 1024, "octets in a message (advertised as SIZE)")
    recipients: int = count(100, "RCPT commands accepted per message")
    commands_before_mail: int = count(
        20, "SMTP commands other than MAIL/RCPT/DATA/BDAT since the last MAIL before 421"
    )
    errors_per_session: int = count(10, "5xx replies to one SMTP client before 421 and close")
    smtp_idle_timeout: float = seconds(300.0, "an SMTP session waiting for a command")
    smtp_sessions: int = count(500, "concurrent SMTP sessions")
    received_headers: int = count(50, "Received: fields that mark a message as looping")

    # POP3 (RFC 1939 §3: ten-minute autologout; RFC 2449 §4: 255-octet commands)
    pop3_line: int = count(255, "octets in a POP3 command line")
    pop3_idle_timeout: float = seconds(600.0, "POP3 autologout")
    pop3_sessions: int = count(500, "concurrent POP3 sessions")
    # A SASL response (RFC 5034 §4) is base64, not a command; it may pass pop3_line.
    pop3_sasl_line: int = count(12288, "octets in a POP3 AUTH response line")

    # IMAP (RFC 3501 §5.4: autologout no less than 30 minutes)
    imap_line: int = count(64 * 1024, "octets in an IMAP command line, literals excluded")
    imap_literal: int = count(50 * 1024 * 1024, "octets in an IMAP literal")
    imap_nesting: int = count(32, "depth of parenthesised lists in an IMAP command")
    imap_idle_timeout: float = seconds(1800.0, "IMAP autologout; IDLE resets it")
    imap_sessions: int = count(2000, "concurrent IMAP sessions")
    imap_sessions_per_user: int = count(50, "concurrent IMAP sessions of one account")

    # Authentication throttling, shared by SMTP AUTH, POP3 and IMAP
    login_failures: int = count(5, "failed logins from one client before each next is delayed")
    login_failure_delay: float = seconds(2.0, "the delay after login_failures")

    # DNS
    dns_tcp_idle_timeout: float = seconds(10.0, "a DNS TCP connection waiting for a query")
    dns_tcp_connections: int = count(200, "concurrent DNS TCP connections")
    dns_udp_rate: int = option(
        500, "DNS queries per second from one client address; 0 = no limit", minimum=0
    )
    dns_recursive_clients: int = count(1000, "recursive questions being resolved at once")

    # MIME parsing at delivery (mailstack.mime): nesting of multipart and
    # message/rfc822 beyond which parts are opaque, entities and header fields
    # indexed per message, characters of decoded body text kept for SEARCH.
    mime_nesting: int = count(50, "multipart and message/rfc822 depth parsed at delivery")
    mime_parts: int = count(10_000, "MIME entities indexed per message")
    mime_header_fields: int = count(50_000, "header fields indexed per message")
    mime_search_text: int = count(1024 * 1024, "characters of body text kept for SEARCH")

    # Message authentication on the MX (mailstack.msgauth): seconds per DNS
    # question and for all of one message's SPF/DKIM/DMARC checks (past them
    # the result is temperror), DKIM-Signature fields verified per message.
    msgauth_dns_timeout: float = seconds(5.0, "one DNS question of SPF/DKIM/DMARC checks")
    msgauth_timeout: float = seconds(20.0, "all SPF/DKIM/DMARC checks of one message")
    dkim_signatures: int = count(5, "DKIM-Signature fields verified per message")

    # SMTP message data while it arrives: past the threshold one message's
    # octets go to a spool file; smtp_memory bounds what all sessions hold.
    smtp_spool_threshold: int = count(
        1024 * 1024, "octets of one SMTP message kept in memory before it is spooled to disk"
    )
    smtp_memory: int = count(
        64 * 1024 * 1024, "octets of SMTP message data all sessions hold in memory together"
    )

    # The store's write-ahead log (SQLite WAL): past this size a checkpoint
    # waits for readers, at most wal_checkpoint_wait, and empties it.
    wal_size: int = count(64 * 1024 * 1024, "octets of write-ahead log before it is emptied")
    wal_checkpoint_wait: float = seconds(
        5.0, "how long emptying the write-ahead log waits for readers"
    )

    def replace(self, **changes: object) -> Limits:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
