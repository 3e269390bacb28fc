"""The `[imap]` table: the IMAP server's options (RFC 3501 STARTTLS and
LOGINDISABLED, RFC 2971 ID). Limits live in `[limits]`; mailstack.schema reads
and writes this table."""

from __future__ import annotations

from dataclasses import dataclass

from mailstack.schema import ShortText, option


@dataclass(frozen=True, slots=True)
class ImapConfig:
    # Elsewhere than loopback, logins need STARTTLS or imaps (RFC 3501 §6.2.3, LOGINDISABLED).
    allow_plaintext_on_loopback: bool = option(
        True,
        "LOGIN/AUTHENTICATE without TLS from 127.0.0.0/8 and ::1; elsewhere STARTTLS or "
        "imaps first (the server advertises LOGINDISABLED)",
    )
    starttls: bool = option(
        True, "offer STARTTLS (RFC 3501 §6.2.1) when the node has a certificate"
    )
    implementation: ShortText = option(
        "mailstack", "server name sent in the ID response (RFC 2971); empty sends NIL"
    )
    login_cache_seconds: float = option(
        600.0,
        "seconds a successful login is remembered (an HMAC of the password, never the "
        "password, with the stored hash it matched) so logging in again skips Argon2id; a "
        "changed password takes effect at once; the node's authenticator applies it to every "
        "protocol's logins. 0 = verify every time",
        minimum=0,
    )
    expunged_retention: int = option(
        16 * 1024 * 1024,
        "octets of messages kept after one session expunged them while another session of "
        "the node had their mailbox selected, so that session can still FETCH them until it "
        "is told (RFC 2180 §4.1.1); the oldest go first. 0 keeps none: such a FETCH gets "
        "NO [EXPUNGEISSUED]",
        minimum=0,
    )
    notify_overflow: int = option(
        1000,
        "untagged responses one NOTIFY update may hold (RFC 5465); past it the session gets "
        "OK [NOTIFICATIONOVERFLOW] and its NOTIFY ends (§5.8), so a burst of changes to many "
        "mailboxes never queues without bound",
        minimum=1,
    )
    metadata_admin: ShortText = option(
        "",
        "the server's /shared/admin METADATA entry (RFC 5464 §6.2.1), a URI such as "
        "mailto:admin@example.org; empty: mailto:postmaster@ the node's hostname",
    )
