from mailstack.store.files import replace_durably


def test_replace_durably_leaves_the_new_text_and_no_temporary(tmp_path):
    path = tmp_path / "hamburger.edu.zone"
    path.write_text("old")
    replace_durably(path, "$ORIGIN hamburger.edu.\n")
    assert path.read_text() == "$ORIGIN hamburger.edu.\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hamburger.edu.zone"]
