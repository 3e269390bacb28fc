"""store/fulltext.py: how text and needles are folded for the index."""

from __future__ import annotations

import pytest

from mailstack.store import fulltext


def test_text_is_casefolded_and_kept_as_valid_text() -> None:
    assert fulltext.fold("Straße ΣΊΣΥΦΟΣ") == "strasse σίσυφοσ"
    assert fulltext.fold("a\x00b") == "a\ufffdb"  # PostgreSQL's text holds no NUL
    assert fulltext.fold("x\udcffy") == "x\ufffdy"  # nor UTF-8 a lone surrogate


def test_needles_the_index_cannot_answer() -> None:
    assert fulltext.needle("STRASSE") == "strasse"
    assert fulltext.needle("ß") is None  # "ss": under three characters
    assert fulltext.needle("ßa") == "ssa"  # three once folded
    assert fulltext.needle("ab") is None
    assert fulltext.needle("one\ntwo") is None  # could span two lines
    # What the index replaced is never looked up: it could match a replacement.
    assert fulltext.needle("a\x00b") is None
    assert fulltext.needle("a\ufffdb") is None
    assert fulltext.needle("a\udcffb") is None


def test_a_lookup_checks_its_field() -> None:
    assert fulltext.lookup("body", "Walrus") == "walrus"
    assert fulltext.lookup("header", "ab") is None
    with pytest.raises(ValueError, match="no searchable field"):
        fulltext.lookup("subject", "walrus")
