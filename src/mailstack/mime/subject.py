"""What threading reads of a message: its base subject (RFC 5256 §2.1, also
for IMAP SORT SUBJECT and THREAD) and its message ids (RFC 5322 §3.6.4).
"""

from __future__ import annotations

import re

from mailstack.mime.encoded_words import decode_header

_WSP = re.compile(r"\s+")
# subj-blob = "[" *BLOBCHAR "]" *WSP
_BLOB = r"\[[^\[\]]*\]\s*"
# subj-leader = (*subj-blob subj-refwd) / WSP;
# subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
# The blobs are taken possessively: a "[" cannot start "re" or "fw", so the
# refwd can only follow the whole run of blobs, and trying shorter runs
# would cost time quadratic in their number.
_LEADER = re.compile(rf"(?:(?:{_BLOB})*+(?:re|fwd?)\s*(?:{_BLOB})?:|\s)", re.IGNORECASE)
_BLOB_PREFIX = re.compile(_BLOB)
_FWD_HEADER = "[fwd:"
# An id longer than a header line is not one (RFC 5322 §2.1.1: 998 octets).
MAX_ID = 998
# Characters of a subject that its base subject is taken from.
MAX_SUBJECT = 998
_MSG_ID = re.compile(r"<([^<>]*)>")
# Text whose whitespace is single spaces already.
_ONE_SPACE = re.compile(r"[^\s]*(?: [^\s]+)*")
# First and last characters a leader, blob or trailer can have (steps 2-6).
_MAY_LEAD = frozenset(" [rRfF")
_MAY_TRAIL = frozenset(" )]")


def base_subject(subject: str) -> str:
    """The base subject of a Subject field value (raw or decoded), following
    RFC 5256 §2.1 steps 1 to 6, of its first MAX_SUBJECT characters; its
    case is kept (compare with i;ascii-casemap, or ``casefold()`` both
    sides)."""
    return base_subject_and_reply(subject)[0]


def base_subject_and_reply(subject: str) -> tuple[str, bool]:
    """``base_subject``, and whether the subject marked a reply or forward:
    a subj-refwd ("Re:", "Fwd:"), a "(fwd)" trailer or a "[fwd: ...]"
    wrapper was removed (what RFC 5256 REFERENCES step 5 asks of a thread's
    subject)."""
    # (1) encoded words decoded, runs of whitespace made one space; a
    # subject is read up to a header line's length (RFC 5322 §2.1.1), so
    # that a huge one costs no more than that
    text = decode_header(subject[: 4 * MAX_SUBJECT])[:MAX_SUBJECT]
    if not _ONE_SPACE.fullmatch(text):
        text = _WSP.sub(" ", text)
    # Most subjects have nothing to remove (this runs at every delivery).
    if text[:1] not in _MAY_LEAD and text[-1:] not in _MAY_TRAIL:
        return text, False
    reply = False
    while True:
        # (2) trailing "(fwd)" and whitespace
        text = text.rstrip()
        while text[-5:].lower() == "(fwd)":
            reply = True
            text = text[:-5].rstrip()
        while True:
            before = text
            # (3) leading "Re:", "Fwd:", "[blob] Re:" and whitespace
            while (leader := _LEADER.match(text)) is not None and leader.end() > 0:
                reply = reply or not leader.group(0).isspace()
                text = text[leader.end() :]
            # (4) a leading [blob], when something is left after it. When
            # (3) found no leader here, it finds none after the next blob
            # either (the run of blobs ends where it did), so the run goes
            # at once, but for its last blob if nothing else is left.
            end, last = 0, -1
            while (blob := _BLOB_PREFIX.match(text, end)) is not None:
                last, end = end, blob.end()
            if end and text[end:].strip():
                text = text[end:]
            elif last > 0:
                text = text[last:]
            # (5) until neither applies
            if text == before:
                break
        # (6) "[fwd: ... ]" around the whole: strip it and start again at (2)
        if text[: len(_FWD_HEADER)].lower() == _FWD_HEADER and text.endswith("]"):
            reply = True
            text = text[len(_FWD_HEADER) : -1]
            continue
        return text, reply


def message_ids(value: str) -> list[str]:
    """The msg-ids of a Message-ID, In-Reply-To or References value, without
    their angle brackets (whitespace inside removed, RFC 5322 §3.6.4's
    obsolete syntax); phrases and comments between them are skipped."""
    found = []
    for msg_id in _MSG_ID.findall(value):
        if not msg_id.isprintable() or " " in msg_id:
            msg_id = "".join(msg_id.split())
        if msg_id and len(msg_id) <= MAX_ID:
            found.append(msg_id)
    return found
