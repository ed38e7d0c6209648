"""Output paths are refused before a run, with the option named and what would do instead."""

import os

import pytest

from npusim.cli import main
from npusim.paths import OutputPathError, output_directory, output_file
from npusim.plot_canvas import PlotError


def test_an_output_file_needs_an_existing_writable_folder_and_is_not_a_folder(tmp_path, monkeypatch):
    assert output_file(str(tmp_path / "t.json"), "--trace", "trace.json") == tmp_path / "t.json"
    with pytest.raises(OutputPathError, match=rf"^--trace {tmp_path}: is a folder; name a file, e\.g\. "
                                              rf"{tmp_path}/trace\.json$"):
        output_file(tmp_path, "--trace", "trace.json")
    missing = rf"^--out {tmp_path}/no/t\.csv: folder {tmp_path}/no does not exist$"
    with pytest.raises(OutputPathError, match=missing):
        output_file(tmp_path / "no" / "t.csv", "--out", "sweep.csv")
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as a user without write permission
    with pytest.raises(OutputPathError, match="cannot write there"):
        output_file(tmp_path / "t.json", "--trace", "trace.json")


def test_an_output_directory_may_be_made_but_not_through_a_file(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("")
    assert output_directory(tmp_path / "a" / "b", "--dump") == tmp_path / "a" / "b"
    a_file = r"f: is a file; give a directory to hold x\.csv \(made if missing\)$"
    with pytest.raises(OutputPathError, match=a_file):
        output_directory(tmp_path / "f", "--stats", "x.csv")
    blocked = rf"f/sub: {tmp_path}/f is a file, so the directory cannot be made$"
    with pytest.raises(OutputPathError, match=blocked):
        output_directory(tmp_path / "f" / "sub", "--dump")
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(OutputPathError, match=rf"no permission to write in {tmp_path}$"):
        output_directory(tmp_path / "new", "--dump")


def test_a_broken_link_and_a_file_in_the_way_are_named(tmp_path):
    (tmp_path / "link.json").symlink_to(tmp_path / "nowhere" / "x.json")
    broken = r"link\.json: is a link to .*nowhere/x\.json, which does not exist$"
    with pytest.raises(OutputPathError, match=broken):
        output_file(tmp_path / "link.json", "--trace", "trace.json")
    (tmp_path / "d").symlink_to(tmp_path / "gone")
    with pytest.raises(OutputPathError, match=r"is a link to .*gone, which does not exist$"):
        output_directory(tmp_path / "d", "--dump")
    (tmp_path / "afile").write_text("")
    with pytest.raises(OutputPathError, match=rf"{tmp_path}/afile is a file, so it cannot hold the folder"):
        output_file(tmp_path / "afile" / "sub" / "t.json", "--trace", "trace.json")


def test_the_callers_own_kind_of_error_is_raised(tmp_path):
    with pytest.raises(PlotError):
        output_file(tmp_path, "--plot", "plot.png", PlotError)


def test_a_sweep_refuses_a_plot_it_could_not_draw_before_any_point_runs(tmp_path, capsys):
    argv = ["sweep", "tile-matmul", "--vary", "seed=0,1", "--out", str(tmp_path / "s.csv")]
    assert main([*argv, "--plot", str(tmp_path / "s.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"npusim: error: --plot {tmp_path}/s.txt: extension .txt is not an image format")
    assert err.count("\n") == 1 and not (tmp_path / "s.csv").exists()
    assert main(["sweep", "tile-matmul", "--vary", "seed=0,1", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"npusim: error: --out {tmp_path}: is a folder; name a file, e.g. " \
                                      f"{tmp_path}/sweep.csv\n"
