"""What threading reads of a message: its base subject (RFC 5256 §2.1, also
for IMAP SORT SUBJECT and THREAD) and its message ids (RFC 5322 §3.6.4).
"""

from __future__ import annotations

import re

from mailstack.mime.encoded_words import decode_header

_WSP = re.compile(r"\s+")
# subj-trailer = "(fwd)" / WSP
_TRAILER = re.compile(r"(?:\(fwd\)|\s)+$", re.IGNORECASE)
# subj-blob = "[" *BLOBCHAR "]" *WSP
_BLOB = r"\[[^\[\]]*\]\s*"
# subj-leader = (*subj-blob subj-refwd) / WSP;
# subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
_LEADER = re.compile(rf"(?:(?:{_BLOB})*(?:re|fwd?)\s*(?:{_BLOB})?:|\s)", re.IGNORECASE)
_BLOB_PREFIX = re.compile(_BLOB)
_FWD_HEADER = "[fwd:"
# An id longer than a header line is not one (RFC 5322 §2.1.1: 998 octets).
MAX_ID = 998
_MSG_ID = re.compile(r"<([^<>]*)>")


def base_subject(subject: str) -> str:
    """The base subject of a Subject field value (raw or decoded), following
    RFC 5256 §2.1 steps 1 to 6; its case is kept (compare with
    i;ascii-casemap, or ``casefold()`` both sides)."""
    return base_subject_and_reply(subject)[0]


def base_subject_and_reply(subject: str) -> tuple[str, bool]:
    """``base_subject``, and whether the subject marked a reply or forward:
    a subj-refwd ("Re:", "Fwd:"), a "(fwd)" trailer or a "[fwd: ...]"
    wrapper was removed (what RFC 5256 REFERENCES step 5 asks of a thread's
    subject)."""
    # (1) encoded words decoded, runs of whitespace made one space
    text = _WSP.sub(" ", decode_header(subject))
    reply = False
    while True:
        # (2) trailing "(fwd)" and whitespace
        trailer = _TRAILER.search(text)
        if trailer is not None:
            reply = reply or "(fwd)" in trailer.group(0).lower()
            text = text[: trailer.start()]
        while True:
            before = text
            # (3) leading "Re:", "Fwd:", "[blob] Re:" and whitespace
            while (leader := _LEADER.match(text)) is not None and leader.end() > 0:
                reply = reply or not leader.group(0).isspace()
                text = text[leader.end() :]
            # (4) a leading [blob], when something is left after it
            blob = _BLOB_PREFIX.match(text)
            if blob is not None and text[blob.end() :].strip():
                text = text[blob.end() :]
            # (5) until neither applies
            if text == before:
                break
        # (6) "[fwd: ... ]" around the whole: strip it and start again at (2)
        if text[: len(_FWD_HEADER)].lower() == _FWD_HEADER and text.endswith("]"):
            text = text[len(_FWD_HEADER) : -1]
            reply = True
            continue
        return text, reply


def message_ids(value: str) -> list[str]:
    """The msg-ids of a Message-ID, In-Reply-To or References value, without
    their angle brackets (whitespace inside removed, RFC 5322 §3.6.4's
    obsolete syntax); phrases and comments between them are skipped."""
    found = []
    for match in _MSG_ID.finditer(value):
        msg_id = _WSP.sub("", match.group(1))
        if msg_id and len(msg_id) <= MAX_ID:
            found.append(msg_id)
    return found
