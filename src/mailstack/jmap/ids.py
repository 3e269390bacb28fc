"""JMAP ids for store objects (RFC 8620 §1.2: 1-255 characters of the
URL-safe base64 alphabet; we start each with a letter naming its type, so
an id of one type is never taken for another's).

| type | form |
| --- | --- |
| account | ``A`` + account id |
| mailbox | ``M`` + mailbox id |
| email | ``E`` + email id |
| thread | ``T`` + thread id |
| blob: an email's whole message | ``G`` + email id |
| blob: an uploaded blob | ``U`` + upload id |
| record (Identity, VacationResponse, EmailSubmission, PushSubscription) | ``R`` + record id |
"""

from __future__ import annotations

ACCOUNT = "A"
MAILBOX = "M"
EMAIL = "E"
THREAD = "T"
EMAIL_BLOB = "G"
UPLOAD_BLOB = "U"
RECORD = "R"


def encode(kind: str, number: int) -> str:
    return f"{kind}{number}"


def decode(kind: str, jmap_id: object) -> int | None:
    """The number behind an id of this kind; None for anything else
    (another kind, not a string, not canonical: ``E01`` is not ``E1``)."""
    if not isinstance(jmap_id, str) or not jmap_id.startswith(kind):
        return None
    digits = jmap_id[len(kind) :]
    if not digits.isascii() or not digits.isdigit() or (len(digits) > 1 and digits[0] == "0"):
        return None
    return int(digits)
