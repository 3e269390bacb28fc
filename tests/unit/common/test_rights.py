"""RFC 4314 rights: the letters, the virtual c and d (§2.1.1), SETACL's
+/- modifications (§3.1), the flag each right guards (§4), SASLprep (§3)."""

import pytest

from mailstack.common import rights


def test_normalize_orders_and_expands_virtual_rights():
    # §2.1.1: "d" is e and t, "c" is k and x (the RFC's own examples).
    assert rights.normalize("lrswida") == "lrswitea"
    assert rights.normalize("d") == "te"
    assert rights.normalize("c") == "kx"
    assert rights.normalize("cd") == "kxte"
    assert rights.normalize("arl") == "lra"
    assert rights.normalize("") == ""


@pytest.mark.parametrize("bad", ["lrQs", "q", "0", "l r", "+"])
def test_unknown_rights_are_refused(bad):
    with pytest.raises(rights.BadRights):
        rights.normalize(bad)


def test_uppercase_is_called_out():
    with pytest.raises(rights.BadRights, match="Uppercase"):
        rights.normalize("lrQ")


def test_show_adds_virtual_rights_when_a_member_is_granted():
    # §2.1.1 example: lrswikda -> lrswikcdeta (as a set).
    shown = rights.show("lrswikda")
    assert set(shown) == set("lrswikcdeta")
    assert shown.endswith("cd")
    assert rights.show("lr") == "lr"
    assert rights.show("x") == "xc"
    assert rights.show("e") == "ed"
    assert set(rights.show(rights.OWNER_RIGHTS)) == set("lrswipkxtecda")


def test_modifications():
    # §3.1 example: Chris lrswi, +cda -> lrswicdakxet
    assert set(rights.apply_modification("lrswi", "+cda")) == set("lrswiakxet")
    assert rights.apply_modification("lrswi", "-w") == "lrsi"
    assert rights.apply_modification("lrswi", "-d") == "lrswi"
    assert rights.apply_modification("lrswite", "-d") == "lrswi"
    assert rights.apply_modification("lrswi", "lr") == "lr"
    assert rights.apply_modification("lrswi", "") == ""
    with pytest.raises(rights.BadRights):
        rights.apply_modification("lr", "+Z")


def test_flag_rights():
    assert rights.flag_right("\\Seen") == "s"
    assert rights.flag_right("\\SEEN") == "s"
    assert rights.flag_right("\\Deleted") == "t"
    assert rights.flag_right("\\Flagged") == "w"
    assert rights.flag_right("$Forwarded") == "w"


def test_saslprep():
    assert rights.saslprep("bob@hamburger.edu") == "bob@hamburger.edu"
    assert rights.saslprep("I\u00adX") == "IX"  # RFC 4013 §3 example: soft hyphen mapped out
    assert rights.saslprep("\u2168") == "IX"  # NFKC
    assert rights.saslprep("a\u00a0b") == "a b"  # non-ASCII space -> space
    assert rights.saslprep("\u0007") is None  # prohibited control
    assert rights.saslprep("\u0627\u0031") is None  # RFC 4013 §3: bidi rule
    assert rights.saslprep("") == ""
