"""Master zone files are replaced atomically and durably, by the store."""

from mailstack.store.zonefiles import replace_durably, save_zone_file


class Text:
    def __init__(self, text: str) -> None:
        self.text = text

    def to_text(self) -> str:
        return self.text


def test_replace_durably_leaves_the_new_text_and_no_temporary(tmp_path):
    path = tmp_path / "hamburger.edu.zone"
    path.write_text("old")
    replace_durably(path, "$ORIGIN hamburger.edu.\n")
    assert path.read_text() == "$ORIGIN hamburger.edu.\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hamburger.edu.zone"]


async def test_save_zone_file_makes_the_directory_and_writes_the_zone(tmp_path):
    path = tmp_path / "secondary" / "crepes.fr.zone"
    await save_zone_file(path, Text("$ORIGIN crepes.fr.\n"))
    assert path.read_text() == "$ORIGIN crepes.fr.\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["crepes.fr.zone"]
