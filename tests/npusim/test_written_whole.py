"""An output file appears whole or not at all: an interrupted write leaves what was there."""

import pytest

from npusim.paths import written_whole


def test_a_finished_write_replaces_the_file_and_leaves_no_partial_file(tmp_path):
    path = tmp_path / "t.json"
    path.write_text("old")
    with written_whole(path) as f:
        f.write("new")
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_partial_file(tmp_path):
    path = tmp_path / "t.json"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt), written_whole(path) as f:
        f.write("half of it")
        raise KeyboardInterrupt
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]
    with pytest.raises(KeyboardInterrupt), written_whole(tmp_path / "new.json") as f:
        raise KeyboardInterrupt
    assert not (tmp_path / "new.json").exists()


def test_a_link_is_written_through_not_replaced(tmp_path):
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    with written_whole(tmp_path / "link.json") as f:
        f.write("new")
    assert (tmp_path / "link.json").is_symlink() and (tmp_path / "real.json").read_text() == "new"
