"""The ``Received:`` trace field (RFC 5321 §4.4) that every hop adds, and the
count of them by which a hop detects a mail loop (RFC 5321 §6.3)."""

from __future__ import annotations

import email.utils
import time

__all__ = ["count_received", "received_header"]


def count_received(data: bytes) -> int:
    """The Received: fields in the header (the part before the first empty line)."""
    if data.startswith(b"\r\n"):
        return 0  # no header at all
    end = data.find(b"\r\n\r\n")
    header = (data if end < 0 else data[: end + 2]).lower()
    return header.count(b"\nreceived:") + header.startswith(b"received:")


_stamp: tuple[int, str] = (0, "")


def _date_time() -> str:
    """RFC 5322 date-time of now, formatted at most once a second."""
    global _stamp
    second = int(time.time())
    if _stamp[0] != second:
        _stamp = (second, email.utils.format_datetime(email.utils.localtime()))
    return _stamp[1]


def received_header(
    *,
    helo: str,
    peer_ip: str,
    by: str,
    protocol: str,
    session_id: str,
    rcpt: list[str],
    tls: str = "",
) -> bytes:
    """RFC 5321 §4.4 time stamp line (FWS-folded), protocol per RFC 3848;
    ``tls`` ("TLSv1.3 with cipher TLS_AES_256_GCM_SHA384") goes in a comment
    after the from-clause, as Postfix writes it, so a reader sees how the hop
    was protected beyond the protocol's S."""
    when = _date_time()
    recipient = f"\r\n\tfor <{rcpt[0]}>" if len(rcpt) == 1 else ""
    using = f"\r\n\t(using {tls})" if tls else ""
    return (
        f"Received: from {helo or 'unknown'} ([{peer_ip}]){using}\r\n"
        f"\tby {by} (mailstack) with {protocol} id {session_id}{recipient};\r\n"
        f"\t{when}\r\n"
    ).encode()
