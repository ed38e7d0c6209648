"""Sweeps: the points, their cache keys, every executor giving the same rows, resuming, failures."""

import csv
import importlib.util
import sys

import pytest

from npusim import load_preset, plots, sweep
from npusim.cli import main
from tests import tile_matmul_by_hand as hand

CFG = load_preset("910b2")
SMALL = {"batch": 2, "head_dim": 64, "block_size": 64, "context_len": 300}
# The dask extra is optional (pip install 'npusim[dask]'): only what runs on a Dask cluster needs it.
needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="needs the dask extra: pip install 'npusim[dask]'")


def points_and_specs(vary=None, sets=None, fixed=None, numerics=False):
    points = sweep.expand(
        vary or {"variant": ["1block", "2block"]},
        sets if sets is not None else {"hbm.bandwidth_gbps": [800.0, 1600.0]},
        fixed or SMALL,
    )
    return points, sweep.specs("paged-attention", "910b2", points, numerics)


def test_expand_takes_every_combination_in_order_or_zips():
    points = sweep.expand({"variant": ["1block", "2block"]}, {"hbm.bandwidth_gbps": [1, 2, 3]}, {"batch": 4})
    assert [p.label for p in points][:4] == [
        "variant=1block, hbm.bandwidth_gbps=1",
        "variant=1block, hbm.bandwidth_gbps=2",
        "variant=1block, hbm.bandwidth_gbps=3",
        "variant=2block, hbm.bandwidth_gbps=1",
    ]
    assert len(points) == 6 and dict(points[0].options) == {"batch": 4, "variant": "1block"}
    assert dict(points[5].overrides) == {"hbm.bandwidth_gbps": 3}
    zipped = sweep.expand({"batch": [1, 8]}, {"chip.cube_cores": [4, 24]}, {}, zipped=True)
    assert [p.swept for p in zipped] == [
        (("batch", 1), ("chip.cube_cores", 4)),
        (("batch", 8), ("chip.cube_cores", 24)),
    ]
    with pytest.raises(sweep.SweepError, match="they need one length; got batch: 2, chip.cube_cores: 3"):
        sweep.expand({"batch": [1, 8]}, {"chip.cube_cores": [4, 8, 24]}, {}, zipped=True)
    with pytest.raises(sweep.SweepError, match="nothing to sweep"):
        sweep.expand({}, {}, {"batch": 1})


def test_cache_key_covers_options_config_and_numerics():
    _, specs = points_and_specs()
    assert len({s.key for s in specs}) == 4
    again = sweep.specs(
        "paged-attention",
        "910b2",
        sweep.expand({"variant": ["1block"]}, {"hbm.bandwidth_gbps": [800.0]}, SMALL),
        False,
    )
    assert again[0].key == specs[0].key  # same point, same key: defaults are part of it
    other_config = sweep.point_key(
        "paged-attention", specs[0].options, CFG.replace({"l2.line_bytes": 256}), False
    )
    assert other_config != specs[0].key
    assert (
        sweep.point_key("paged-attention", specs[0].options, CFG.replace({"hbm.bandwidth_gbps": 800.0}), True)
        != specs[0].key
    )


@pytest.fixture(scope="module")
def serial():
    """The four points of `points_and_specs()`, computed in this process."""
    points, specs = points_and_specs()
    return sweep.run(points, specs, None, jobs=1)


def test_rows_are_the_same_serially_and_in_processes(serial):
    points, specs = points_and_specs()
    local = sweep.run(points, specs, None, jobs=2)
    assert serial.rows == local.rows
    assert serial.computed == local.computed == 4 and all(r["status"] == "ok" for r in serial.rows)
    # what the rows say: more HBM bandwidth never takes more cycles
    assert serial.rows[1]["cycles"] <= serial.rows[0]["cycles"]


@needs_dask  # a marker, not importorskip: it skips before the fixture computes anything
def test_rows_are_the_same_on_dask(serial):
    from dask.distributed import LocalCluster

    points, specs = points_and_specs()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        on_dask = sweep.run(points, specs, None, scheduler=cluster.scheduler_address)
    assert on_dask.rows == serial.rows and on_dask.computed == 4


def test_without_dask_a_scheduler_is_refused_with_the_extra_to_install(monkeypatch, tmp_path, capsys):
    for name in ("distributed", "dask.distributed"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import` raise ImportError, as if absent
    argv = ["sweep", "paged-attention", "--no-cache", "--out", str(tmp_path / "x.csv"), "--vary", "batch=1",
            "--scheduler", "tcp://127.0.0.1:1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == "npusim: error: --scheduler needs dask.distributed: pip install 'npusim[dask]'\n"


def test_a_row_holds_the_figures_of_tile_matmul_worked_by_hand():
    points = sweep.expand({}, {"fixpipe.latency_cycles": [50, 100]}, {})
    rows = sweep.run(points, sweep.specs("tile-matmul", "910b2", points, False), None).rows
    for row, latency in zip(rows, (50, 100), strict=True):
        cycles = hand.CYCLES - 100 + latency  # the fixpipe's latency ends the chain
        hbm = hand.HBM_READ + hand.HBM_WRITE
        busy = {f"{pipe.lower()}_busy_pct": round(100 * c / cycles, 2) for pipe, c in hand.BUSY.items()}
        assert row == {
            "status": "ok", "cycles": cycles, "microseconds": round(cycles / 1.8e3, 4), "tasks": 1,
            "instructions": 12, "hbm_mb": round(hbm / 1e6, 4),
            "compute_pct": round(100 * hand.CUBE_CYCLES / cycles, 2),
            "memory_pct": round(100 * hbm / hand.HBM_BYTES_PER_CYCLE / cycles, 2),
            "bound_by": "latency",  # the busiest resource, MTE1, is busy under half the run
            **busy, "v_busy_pct": 0.0, "mte3_busy_pct": 0.0,
        }


def test_an_interrupted_sweep_resumes_and_finishes_with_the_same_table(tmp_path):
    points, specs = points_and_specs(sets={"hbm.bandwidth_gbps": [400.0, 800.0, 1600.0]})
    full = sweep.run(points, specs, None)
    cache = sweep.Cache(tmp_path / "cache")
    done = []

    def stop_after_two(i, row):
        done.append(i)
        if len(done) == 2:
            raise KeyboardInterrupt

    first = sweep.run(points, specs, cache, on_done=stop_after_two)
    assert first.interrupted and first.computed == 2 and len(list((tmp_path / "cache").glob("*.json"))) == 2
    second = sweep.run(points, specs, cache)
    assert (second.cached, second.computed, second.interrupted) == (2, 4, False)
    assert second.rows == full.rows
    assert sweep.table_rows(points, second.rows) == sweep.table_rows(points, full.rows)


def test_a_failing_point_keeps_its_error_and_the_sweep_goes_on():
    points, specs = points_and_specs(
        vary={"head_dim": [128, 256]}, sets={}, fixed={**SMALL, "block_size": 128, "variant": "2block"}
    )
    out = sweep.run(points, specs, None)
    assert out.rows[0]["status"] == "ok" and out.failed == 1
    assert out.rows[1]["status"] == "error" and "L0B holds 65536 bytes" in out.rows[1]["error"]


def test_speedup_is_against_the_point_that_differs_only_in_the_baseline():
    points, specs = points_and_specs()
    rows = sweep.with_speedup(points, sweep.run(points, specs, None).rows, {"variant": "1block"})
    assert rows[0]["speedup"] == rows[1]["speedup"] == 1.0
    assert rows[2]["speedup"] == round(rows[0]["cycles"] / rows[2]["cycles"], 4)
    assert rows[3]["speedup"] == round(rows[1]["cycles"] / rows[3]["cycles"], 4)


def test_sweep_command_writes_the_table_and_plot_and_resumes(tmp_path, capsys):
    out, plot, cache = tmp_path / "s.csv", tmp_path / "s.png", tmp_path / "cache"
    argv = [
        "sweep",
        "paged-attention",
        "--batch",
        "2",
        "--head-dim",
        "64",
        "--block-size",
        "64",
        "--vary",
        "variant=1block,2block",
        "--vary",
        "context-len=100,300",
        "--set",
        "hbm.bandwidth_gbps=800,1600",
        "--baseline",
        "variant=1block",
        "--out",
        str(out),
        "--plot",
        str(plot),
        "--cache",
        str(cache),
        "--jobs",
        "1",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "8 points: 8 computed, 0 from the cache" in text
    with open(out) as f:
        table = list(csv.DictReader(f))
    assert len(table) == 8 and list(table[0])[:4] == [
        "variant",
        "context_len",
        "hbm.bandwidth_gbps",
        "status",
    ]
    assert {r["speedup"] for r in table if r["variant"] == "1block"} == {"1.0"}
    assert main(argv) == 0
    assert "8 points: 0 computed, 8 from the cache" in capsys.readouterr().out
    with open(out) as f:
        assert list(csv.DictReader(f)) == table


def test_sweep_file(tmp_path, capsys):
    study = tmp_path / "study.toml"
    study.write_text(
        'program = "paged-attention"\nbaseline = { variant = "1block" }\n'
        "[options]\nbatch = 1\nhead_dim = 64\nblock_size = 64\ncontext_len = 200\n"
        '[vary]\nvariant = ["1block", "2block"]\n'
        '[set]\n"chip.cube_cores" = [4, 24]\n'
    )
    assert (
        main(
            [
                "sweep",
                "paged-attention",
                "--file",
                str(study),
                "--no-cache",
                "--jobs",
                "1",
                "--out",
                str(tmp_path / "f.csv"),
            ]
        )
        == 0
    )
    with open(tmp_path / "f.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["variant"], r["chip.cube_cores"]) for r in rows] == [
        ("1block", "4"),
        ("1block", "24"),
        ("2block", "4"),
        ("2block", "24"),
    ]
    assert all(r["status"] == "ok" and r["speedup"] for r in rows)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--vary", "colour=1,2"], "--vary: paged-attention has no option 'colour'; options: variant, batch"),
        (["--set", "hbm.nope=1,2"], "unknown config key 'hbm.nope'"),
        (["--set", "hbm.bandwidth_gbps=fast"], "hbm.bandwidth_gbps takes float values, got 'fast'"),
        (
            ["--vary", "batch=1,2", "--baseline", "variant=1block"],
            "--baseline variant: not a swept key; swept: batch",
        ),
        (
            ["--vary", "batch=1,2", "--baseline", "batch=3"],
            "--baseline batch=3: not one of the swept values 1, 2",
        ),
        (["--vary", "batch=1,2", "--set", "chip.cube_cores=4,8,16", "--zip"], "they need one length"),
        ([], "nothing to sweep"),
        pytest.param(["--vary", "batch=1", "--scheduler", "tcp://127.0.0.1:1"],
                     "cannot reach a Dask scheduler there", marks=needs_dask),
    ],
)
def test_sweep_mistakes_exit_2_with_one_line(extra, message, capsys, tmp_path):
    argv = ["sweep", "paged-attention", "--no-cache", "--jobs", "1", "--out", str(tmp_path / "x.csv"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("npusim: error: ") and message in err and err.count("\n") == 1


def test_sweep_figure_draws_one_line_per_value_of_the_second_key():
    columns = ["hbm", "context", "status", "speedup"]
    values = [
        [800, 512, "ok", 1.1],
        [1600, 512, "ok", 1.2],
        [800, 8192, "ok", 1.5],
        [1600, 8192, "ok", 1.7],
        [3200, 8192, "error", ""],
    ]
    fig = plots.sweep_figure(columns, values, ["hbm", "context"], "speedup", "t")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")] == [
        "context=512",
        "context=8192",
    ]
    assert ax.get_xlabel() == "hbm" and ax.get_ylabel() == "speedup over the baseline (x)"
    with pytest.raises(ValueError, match="no column 'nope' to plot"):
        plots.sweep_figure(columns, values, ["hbm"], "nope", "t")


def test_baselines_match_typed_values_and_list_valued_options(tmp_path, capsys):
    common = [
        "sweep",
        "paged-attention",
        "--batch",
        "1",
        "--head-dim",
        "64",
        "--block-size",
        "64",
        "--no-cache",
        "--jobs",
        "1",
        "--out",
        str(tmp_path / "t.csv"),
    ]
    # 800 names the swept float 800.0
    assert (
        main([*common, "--set", "hbm.bandwidth_gbps=800,1600", "--baseline", "hbm.bandwidth_gbps=800"]) == 0
    )
    with open(tmp_path / "t.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["speedup"] == "1.0" and float(rows[1]["speedup"]) >= 1.0
    # context_lens values are lists: one per request
    capsys.readouterr()
    assert (
        main(
            [
                *common,
                "--vary",
                "context-lens=100,300",
                "--vary",
                "variant=1block,2block",
                "--baseline",
                "variant=1block",
            ]
        )
        == 0
    )
    with open(tmp_path / "t.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["context_lens"] for r in rows] == ["100", "100", "300", "300"]
    assert [r["speedup"] != "" for r in rows] == [True] * 4


def test_a_sweep_whose_points_all_fail_still_writes_its_table(tmp_path, capsys):
    argv = [
        "sweep",
        "paged-attention",
        "--batch",
        "1",
        "--head-dim",
        "256",
        "--block-size",
        "128",
        "--set",
        "buffers.l0b_bytes=32768,65536",
        "--plot",
        str(tmp_path / "p.png"),
        "--no-cache",
        "--jobs",
        "1",
        "--out",
        str(tmp_path / "t.csv"),
    ]
    assert main(argv) == 1  # the table is written, but no point ran
    captured = capsys.readouterr()
    assert "2 failed" in captured.out and "plot: not drawn, no point ran (2 failed)" in captured.err
    assert not (tmp_path / "p.png").exists()
    with open(tmp_path / "t.csv") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["error", "error"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--vary", "batch=1,2", "--metric", "speedup"], "the speedup metric needs a baseline"),
        (
            [
                "--vary",
                "variant=1block,2block",
                "--set",
                "chip.cube_cores=4,8",
                "--zip",
                "--baseline",
                "variant=1block",
            ],
            "which a --zip sweep does not have",
        ),
    ],
)
def test_sweep_option_combinations_that_cannot_work(extra, message, capsys, tmp_path):
    argv = ["sweep", "paged-attention", "--no-cache", "--jobs", "1", "--out", str(tmp_path / "x.csv"), *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_bad_metric_in_a_sweep_file(tmp_path, capsys):
    study = tmp_path / "s.toml"
    study.write_text('metric = "time"\n[vary]\nbatch = [1, 2]\n')
    assert (
        main(
            ["sweep", "paged-attention", "--file", str(study), "--no-cache", "--out", str(tmp_path / "x.csv")]
        )
        == 2
    )
    assert "metric 'time'; valid: cycles, microseconds, speedup" in capsys.readouterr().err
