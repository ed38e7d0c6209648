"""What a sweep's exit status and files say when points fail, values are bad, or it is interrupted.

Exit 1 when a point failed or did not match its reference (the table is still written), with a
line saying how many; 2 for a value no point could take, before any point runs; 130 when
interrupted, with the table beside --out as NAME.partial.csv, never over a complete table.
"""

import csv

import pytest

from npusim import sweep
from npusim.cli import main

PA = ["paged-attention", "--head-dim", "64", "--block-size", "64", "--context-len", "100"]
QUICK = ["--jobs", "1", "--no-cache", "--quiet"]
SEEDS = ["sweep", "tile-matmul", "--vary", "seed=1,2"]


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_failed_points_exit_1_and_say_how_many(tmp_path, capsys):
    argv = ["sweep", *PA, "--vary", "batch=0,1,2", *QUICK, "--out", str(tmp_path / "t.csv")]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "sweep: 1 of 3 point(s) failed (the table's error column says why)\n" in captured.err
    assert "npusim: error" not in captured.err
    rows = _rows(tmp_path / "t.csv")
    assert [(r["batch"], r["status"]) for r in rows] == [("0", "error"), ("1", "ok"), ("2", "ok")]
    assert rows[0]["error"] == "batch must be a positive integer, got 0"


def test_a_point_whose_numbers_do_not_match_exits_1(tmp_path, capsys, monkeypatch):
    import npusim.outputs

    def nothing_matches(*args, **kwargs):
        return {"match": False}

    monkeypatch.setattr(npusim.outputs, "numerics_check", nothing_matches)
    argv = [*SEEDS, "--numerics", *QUICK, "--out", str(tmp_path / "t.csv")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "sweep: 2 of 2 point(s) did not match their reference (the numerics column)" in err
    assert [r["numerics"] for r in _rows(tmp_path / "t.csv")] == ["MISMATCH", "MISMATCH"]


def test_every_point_ran_exits_0(tmp_path, capsys):
    argv = [*SEEDS, "--numerics", *QUICK, "--out", str(tmp_path / "t.csv")]
    assert main(argv) == 0
    assert capsys.readouterr().err == ""
    assert [r["numerics"] for r in _rows(tmp_path / "t.csv")] == ["match", "match"]


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        ("batch=a,b", "--vary batch=a,b: 'a' is not a whole number; batch takes integers, e.g. batch=1,2"),
        ("batch=1,", "--vary batch=1,: '' is not a whole number; batch takes integers, e.g. batch=1,2"),
        ("variant=3block,2block",
         "--vary variant=3block,2block: '3block' is not a variant; valid: 1block, 2block"),
        ("context-lens=1;2", "--vary context-lens=1;2: expected comma-separated integers, got '1;2'"),
    ],
)
def test_a_value_no_point_can_take_is_one_line_before_any_point_runs(vary, message, tmp_path, capsys):
    argv = ["sweep", *PA, "--vary", vary, *QUICK, "--out", str(tmp_path / "t.csv")]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"npusim: error: {message}\n"
    assert not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[vary]\nbatch = ["a", 2]\n', "[vary] batch: 'a' is not a whole number; batch takes integers"),
        ('[options]\nvariant = "3block"\n[vary]\nbatch = [1]\n',
         "[options] variant: '3block' is not a variant"),
    ],
)
def test_a_sweep_file_value_no_point_can_take(toml, message, tmp_path, capsys):
    study = tmp_path / "s.toml"
    study.write_text(toml)
    argv = ["sweep", "paged-attention", "--file", str(study), *QUICK, "--out", str(tmp_path / "t.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"npusim: error: {message}") and err.count("\n") == 1


def _interrupt_after(monkeypatch, points):
    """sweep.compute that finishes `points` points, then is interrupted (as Ctrl-C in the next one)."""
    real, calls = sweep.compute, []

    def compute(spec):
        calls.append(spec)
        if len(calls) > points:
            raise KeyboardInterrupt
        return real(spec)

    monkeypatch.setattr(sweep, "compute", compute)


@pytest.mark.parametrize("finished", [0, 1])
def test_an_interrupted_sweep_leaves_the_default_table_alone(finished, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    complete = "seed,status,cycles\n1,ok,1179\n2,ok,1179\n"
    (tmp_path / "tile_matmul_sweep.csv").write_text(complete)
    _interrupt_after(monkeypatch, finished)
    assert main(["sweep", "tile-matmul", "--vary", "seed=1,2", *QUICK]) == 130
    captured = capsys.readouterr()
    assert (tmp_path / "tile_matmul_sweep.csv").read_text() == complete
    partial = _rows(tmp_path / "tile_matmul_sweep.partial.csv")
    assert [r["status"] for r in partial] == ["ok"] * finished + ["not run"] * (2 - finished)
    assert "table: tile_matmul_sweep.partial.csv" in captured.out
    assert (f"interrupted: {finished} of 2 points finished and are in tile_matmul_sweep.partial.csv; "
            "with --no-cache nothing was cached: running it again computes every point\n") in captured.err


def test_an_interrupted_sweep_writes_beside_out(tmp_path, monkeypatch, capsys):
    _interrupt_after(monkeypatch, 1)
    argv = ["sweep", "tile-matmul", "--vary", "seed=1,2", *QUICK, "--out", str(tmp_path / "t.csv")]
    assert main(argv) == 130
    assert not (tmp_path / "t.csv").exists()
    assert [r["status"] for r in _rows(tmp_path / "t.partial.csv")] == ["ok", "not run"]


@pytest.mark.parametrize("toml, says", [
    ("[vary]\nseed = [1, -1]\n", "[vary] seed: a seed is a whole number from 0 to 2**63 - 1, got -1"),
    ("[vary]\nseed = [true, 2]\n", "[vary] seed: a seed is a whole number from 0 to 2**63 - 1, got 'true'"),
    ("[options]\nseed = -7\n", "[options] seed: a seed is a whole number from 0 to 2**63 - 1, got -7"),
    ("[vary]\nbatch = [1, 2.0]\n", "[vary] batch: '2.0' is not a whole number; batch takes integers"),
])
def test_a_sweep_files_values_are_checked_as_the_command_lines_are(toml, says, tmp_path, capsys):
    """TOML gives numbers and booleans, not text: they pass the same parsers before any point runs."""
    (tmp_path / "s.toml").write_text(toml)
    argv = ["sweep", "paged-attention", "--file", str(tmp_path / "s.toml"), "--no-cache", "--quiet",
            "--out", str(tmp_path / "s.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"npusim: error: {says}") and err.count("\n") == 1
    assert not (tmp_path / "s.csv").exists()


def test_a_sweep_files_list_value_is_the_options_list(tmp_path, capsys):
    (tmp_path / "s.toml").write_text("[vary]\nbatch = [2]\n[options]\ncontext_lens = [100, 300]\n")
    argv = ["sweep", "paged-attention", "--file", str(tmp_path / "s.toml"), "--no-cache", "--quiet",
            "--out", str(tmp_path / "s.csv")]
    assert main(argv) == 0
    assert ",ok," in (tmp_path / "s.csv").read_text()
