"""What both backends thread new messages by (RFC 8621 §3; RFC 5256 §2.1
base subjects): each keeps an index per account, ``thread_keys``, that maps
every message id a message carries (its own Message-ID, and those of
In-Reply-To and References) with its base subject to its thread.

A new message joins the thread of an earlier message of the account when one
of its ids is one of the other's (it refers to the earlier one, the earlier
one refers to it, or both refer to the same message) and their base subjects
agree; else it starts a thread whose id is its own email id. A thread with
no email left is never joined again. A thread is never split or merged.
"""

from __future__ import annotations

from typing import Any

from mailstack.store.contract.messages import EmailKeys, ParseCodec

# Ids of a message that go into the index: its own, the first of References
# (the thread's root) and the nearest ancestors; a long References field of
# a deep thread would otherwise cost a row per ancestor per message.
MAX_THREAD_KEYS = 20
# Characters of base subject kept in the index (the rest is never compared).
MAX_SUBJECT = 256


def thread_ids(keys: EmailKeys) -> list[str]:
    if not keys.references:
        return [keys.message_id] if keys.message_id else []
    refs = list(keys.references)
    if len(refs) > MAX_THREAD_KEYS - 1:
        refs = refs[:1] + refs[-(MAX_THREAD_KEYS - 2) :]
    own = [keys.message_id] if keys.message_id else []
    return list(dict.fromkeys(own + refs))


def thread_subject(keys: EmailKeys) -> str:
    return keys.base_subject[:MAX_SUBJECT]



def email_keys(codec: ParseCodec[Any], parsed: bytes) -> EmailKeys:
    """What threading needs of a parse; a parse the codec cannot read
    (never the case for one it made) starts a thread of its own."""
    try:
        return codec.keys(parsed)
    except ValueError:
        return EmailKeys(None, (), "")
