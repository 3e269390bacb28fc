"""One Limits object: every bound that protects a server from its peers.

Limits are checked before data is buffered, never after (ARCHITECTURE.md, rule
4). Every field is a `[limits]` key in mailstack.toml (mailstack.schema reads
and writes it); docs/configuration.md documents each one. Sizes are octets,
times seconds; only the DNS reply rates may be 0, which switches them off.
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
    # RFC 4954 §4: an AUTH command or response line may be 12,288 octets.
    smtp_sasl_line: int = count(12288, "octets in an SMTP AUTH command or response line")
    message_size: int = count(50 * 1024 * 1024, "octets in a message (advertised as SIZE)")
    recipients: int = count(100, "RCPT commands accepted per message")
    commands_before_mail: int = count(
        20, "SMTP commands other than MAIL/RCPT/DATA/BDAT since the last MAIL before 421"
    )
    errors_per_session: int = count(10, "5xx replies to one SMTP client before 421 and close")
    smtp_idle_timeout: float = seconds(300.0, "an SMTP session waiting for a command")
    smtp_sessions: int = count(500, "concurrent SMTP sessions")
    smtp_sessions_per_address: int = count(50, "concurrent SMTP sessions from one client address")
    smtp_sessions_per_prefix: int = count(
        200, "concurrent SMTP sessions from one client network (client_ipv4/6_prefix)"
    )
    received_headers: int = count(50, "Received: fields that mark a message as looping")
    # Postfix's header_size_limit and bounce_size_limit (issue 15 item 6).
    header_size: int = count(102_400, "octets in the header section of a message the MX takes")
    dsn_returned_size: int = count(50_000, "octets of the original message a DSN returns")
    # Address harvesting on the MX: unknown recipients of one session are
    # answered ever more slowly past the tarpit, then the session is closed.
    unknown_recipients: int = count(20, "unknown recipients in one SMTP session before 421")
    unknown_recipient_tarpit: int = count(
        3, "unknown recipients in one SMTP session before each next answer is delayed"
    )
    unknown_recipient_delay: float = seconds(
        1.0, "the delay after unknown_recipient_tarpit; it grows by as much with each"
    )

    # POP3 (RFC 1939 §3: ten-minute autologout; RFC 2449 §4: 255-octet commands)
    pop3_line: int = count(255, "octets in a POP3 command line")
    pop3_idle_timeout: float = seconds(600.0, "POP3 autologout")
    pop3_sessions: int = count(500, "concurrent POP3 sessions")
    pop3_sessions_per_address: int = count(50, "concurrent POP3 sessions from one client address")
    pop3_sessions_per_prefix: int = count(
        200, "concurrent POP3 sessions from one client network (client_ipv4/6_prefix)"
    )
    # A SASL response (RFC 5034 §4) is base64, not a command; it may pass pop3_line.
    pop3_sasl_line: int = count(12288, "octets in a POP3 AUTH response line")

    # IMAP (RFC 3501 §5.4: autologout no less than 30 minutes)
    imap_line: int = count(64 * 1024, "octets in an IMAP command line, literals excluded")
    imap_literal: int = count(50 * 1024 * 1024, "octets in an IMAP literal")
    imap_nesting: int = count(32, "depth of parenthesised lists in an IMAP command")
    imap_idle_timeout: float = seconds(1800.0, "IMAP autologout; IDLE resets it")
    imap_sessions: int = count(2000, "concurrent IMAP sessions")
    imap_sessions_per_user: int = count(50, "concurrent IMAP sessions of one account")
    imap_sessions_per_address: int = count(
        200, "concurrent IMAP sessions from one client address"
    )
    imap_sessions_per_prefix: int = count(
        500, "concurrent IMAP sessions from one client network (client_ipv4/6_prefix)"
    )
    imap_search_contexts: int = count(
        16, "SEARCH/SORT results one IMAP session keeps updated (RFC 5267 UPDATE)"
    )
    imap_sort_keys: int = count(
        100_000, "messages whose SORT/THREAD keys the node keeps in memory"
    )
    imap_inflated: int = count(
        1024 * 1024 * 1024,
        "octets one IMAP session may send inflated under COMPRESS=DEFLATE (RFC 4978)",
    )
    imap_metadata_size: int = count(
        64 * 1024, "octets in the value of one METADATA entry (RFC 5464 [METADATA MAXSIZE])"
    )
    imap_metadata_entries: int = count(
        100, "METADATA entries one user sees on one mailbox or the server ([METADATA TOOMANY])"
    )

    # HTTP (mailstack.http): the request head, bodies of routes that set no
    # bound of their own (JMAP's are in [jmap]), and how long a client may
    # take. RFC 9112 §2.3 and §5 leave the bounds of a head to the server.
    http_line: int = count(8190, "octets in an HTTP request line or one header field")
    http_headers: int = count(100, "header fields in one HTTP request")
    http_body: int = count(1024 * 1024, "octets in an HTTP request body, JMAP aside")
    http_idle_timeout: float = seconds(
        75.0, "an HTTP connection waiting for a request, or for the rest of its head"
    )
    http_body_timeout: float = seconds(60.0, "reading one HTTP request body")

    # Per-client caps and throttles count by address and by network prefix.
    client_ipv4_prefix: int = option(
        24, "length of the IPv4 prefix that counts as one client network", minimum=8, maximum=32
    )
    client_ipv6_prefix: int = option(
        56, "length of the IPv6 prefix that counts as one client network", minimum=16, maximum=128
    )

    # Authentication throttling, shared by SMTP AUTH, POP3 and IMAP
    login_failures: int = count(5, "failed logins from one client before each next is delayed")
    login_failure_delay: float = seconds(2.0, "the delay after login_failures")
    login_failures_per_prefix: int = count(
        20, "failed logins from one client network before each next from it is delayed"
    )
    login_sessions_per_address: int = count(
        10, "sessions not yet logged in from one client address (POP3, IMAP, submission)"
    )

    # DNS: TCP connections (RFC 7766 §6.2.3), response rate limiting over UDP
    # (as BIND and Knot do it), the server's cache of whole replies.
    dns_tcp_idle_timeout: float = seconds(10.0, "a DNS TCP connection waiting for a query")
    dns_tcp_write_timeout: float = seconds(10.0, "a DNS TCP reply waiting for the client to read")
    dns_tcp_connections: int = count(200, "concurrent DNS TCP connections")
    dns_tcp_connections_per_client: int = count(
        20, "concurrent DNS TCP connections from one client address (an IPv6 client's /64)"
    )
    dns_recursive_clients: int = count(1000, "recursive questions being resolved at once")
    dns_reply_cache: int = count(32 * 1024 * 1024, "octets of whole DNS replies kept to replay")
    dns_udp_rate: int = option(
        500, "UDP replies a second to one client network, of all kinds; 0 = no limit", minimum=0
    )
    dns_rrl_rate: int = option(
        20, "UDP replies a second per client network and response; 0 = no limit", minimum=0
    )
    dns_rrl_slip: int = option(
        2, "every Nth rate-limited reply goes out empty with TC=1; 0 = never", minimum=0
    )
    dns_rrl_leak: int = option(
        0, "every Nth rate-limited reply goes out whole; 0 = never", minimum=0
    )
    dns_rrl_ipv4_prefix: int = option(
        24, "IPv4 prefix length that makes one client network", minimum=1, maximum=32
    )
    dns_rrl_ipv6_prefix: int = option(
        56, "IPv6 prefix length that makes one client network", minimum=1, maximum=128
    )
    dns_rrl_table: int = count(100_000, "response rate accounts kept (least recent dropped)")
    dns_tsig_seen: int = count(100_000, "TSIG MACs of UPDATEs remembered to refuse replays")

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
