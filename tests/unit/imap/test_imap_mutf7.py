"""Modified UTF-7 (RFC 3501 §5.1.3): one spelling per name."""

from __future__ import annotations

import pytest

from mailstack.errors import ImapError
from mailstack.imap.proto import mutf7


@pytest.mark.parametrize(
    ("wire", "name"),
    [("INBOX", "INBOX"), ("&-", "&"), ("caf&AOk-", "café"), ("&AOkA6Q-", "éé"), ("Sent", "Sent")],
)
def test_canonical_names_round_trip(wire: str, name: str) -> None:
    assert mutf7.decode(wire) == name
    assert mutf7.encode(name) == wire


@pytest.mark.parametrize(
    "wire",
    [
        "&AGE-",  # "a", which must spell itself
        "&ACY-",  # "&", which is "&-"
        "&AOk-&AOk-",  # two runs where one spells both
        "&AOl-",  # stray bits after the last character
        "&AOk",  # no end
        "&A?k-",  # not base64
    ],
)
def test_other_spellings_are_refused(wire: str) -> None:
    with pytest.raises(ImapError) as refused:
        mutf7.decode(wire)
    assert refused.value.bad
