"""Text timelines, plots, speed-of-light bounds, the JSON record, dumps and progress reports."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.image import imread

from isa import DType, GmRegion, Kernel, Load, Program, Role, Space, Tensor, Tile
from isa.program import CoreKind
from npusim import load_preset, outputs, plots, simulate, timeline
from npusim.roofline import bounds
from programs import matmul, tile_matmul
from programs import paged_attention as pa
from tests import tile_matmul_by_hand as hand

CFG = load_preset("910b2")


@pytest.fixture(scope="module")
def tile():
    return simulate(tile_matmul.build(), CFG, inputs=tile_matmul.inputs(0))


@pytest.fixture(scope="module")
def paged():
    case = pa.make_case(pa.Shape(2, 16, 1, 64, 64), [150, 70])
    return simulate(pa.build(case, "2block"), CFG, numerics=False)


# --- timeline -------------------------------------------------------------------------------------

def test_one_task_timeline_draws_lanes_to_scale_and_lists_every_instruction(tile):
    text = timeline.render(tile, width=107)
    lines = text.splitlines()
    lane = {line[:5].strip(): line[6:-1] for line in lines if line[5:6] == "|"}
    assert set(lane) == {"MTE2", "MTE1", "M", "FIX"} and all(len(v) == 100 for v in lane.values())
    trace = tile.traces[0]
    # A column is 1179 / 100 = 11.79 cycles: '#' where a pipe is busy over half of it, '+' where it is
    # busy less, 'w' where it waits over half. The two loads hold MTE2 from the first one's start to
    # the second one's busy end (its data lands later, after the DMA latency): 201 / 11.79 = 17.05 to
    # 432 / 11.79 = 36.64, so 95% of column 17 and 64% of column 36: '#' over 17..36, to the column.
    col = hand.CYCLES / 100
    first, last = hand.FIRST, hand.FIRST + hand.LOAD_Q + hand.LOAD_K
    assert (math.floor(first / col), math.floor(last / col)) == (17, 36)
    assert lane["MTE2"] == "." * 17 + "#" * 20 + "." * 63
    # MTE1 waits from the wait_flag's issue (201 + 3 = 204: 17.30, 70% of column 17) until the loads
    # land and the flag fires (612 + 4 = 616: 52.25), then moves until 616 + 16 + 256 = 888 (75.32):
    # waiting over columns 17..51, busy over 75% of column 52 to 74, and 32% of column 75.
    wait, land = first + 3, first + hand.LOAD_Q + hand.LOAD_K + 180 + hand.FLAG
    moved = land + hand.MOVE_Q + hand.MOVE_K
    assert [math.floor(t / col) for t in (wait, land, moved)] == [17, 52, 75]
    assert lane["MTE1"] == "." * 17 + "w" * 35 + "#" * 23 + "+" + "." * 24
    assert lane["M"].count("w") > 50  # M waits on its flag most of the run, as the table shows
    table = lines[lines.index(next(x for x in lines if x.lstrip().startswith("# pipe"))):]
    assert len(table) == 1 + len(trace)
    assert "mmad     L0C[0x0000] fp32[16,128]" in table[9] and "<- set by #6" in table[8]


def test_many_tasks_give_a_chip_summary_then_zoom(paged):
    text = timeline.render(paged, width=120)
    assert text.startswith(f"chip: {len(paged.traces)} tasks on")
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[2:] if line[:3] in ("aic", "aiv")}
    assert sum(int(r[0]) for r in rows.values()) == len(paged.traces)
    assert rows["aiv0"][2] == "-"  # a vector core has no MTE1
    task = paged.traces[3]
    zoomed = timeline.render(paged, width=120, task=task.task)
    assert zoomed.startswith(f"task {task.task} on {task.core}: dispatched at cycle {task.dispatched}")
    assert zoomed.count("\n") > len(task)
    core = timeline.render(paged, width=120, core="aic0")
    on_core = [t for t in paged.traces if t.core == "aic0"]
    assert f"core aic0: {len(on_core)} task(s)" in core and all(t.task in core for t in on_core)


def test_unknown_core_or_task_names_what_exists(paged):
    with pytest.raises(timeline.TimelineError, match="--core 'aic99': no task ran on such a core; cores"):
        timeline.render(paged, core="aic99")
    with pytest.raises(timeline.TimelineError, match="did you mean qk_r0h0s1, qk_r0h0s0"):
        timeline.render(paged, task="qk_r0h0s")


def test_colour_is_optional_and_says_nothing_the_characters_do_not(tile, monkeypatch):
    plain = timeline.render(tile, width=90)
    coloured = timeline.render(tile, width=90, color=True)
    assert "\033[" not in plain and "\033[32m" in coloured
    import re
    assert re.sub(r"\033\[[0-9;]*m", "", coloured) == plain

    class Tty:
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert timeline.use_color("auto", Tty()) and not timeline.use_color("never", Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not timeline.use_color("auto", Tty()) and timeline.use_color("always", Tty())


# --- bounds ---------------------------------------------------------------------------------------

def test_bounds_of_the_tile_matmul_in_closed_form(tile):
    b = bounds(tile)
    assert b.compute_cycles == 16 * 128 * 128 / (16 * 16 * 16)  # one core, one fractal per cycle
    # q and k read (first touch, L2 misses); out is written into the write-back L2 and stays there
    hbm_bytes = (16 * 128 + 128 * 128) * 2
    assert b.memory_cycles == pytest.approx(hbm_bytes / (1600 / 1.8))  # hbm.bandwidth_gbps / clock_ghz
    assert b.hbm_bytes == hbm_bytes
    assert b.flops == 2 * 16 * 128 * 128
    name, share = b.limiter
    assert share < 0.5 and b.explain().startswith("latency-bound")


def test_a_long_memory_bound_stream_is_named_as_such():
    # 48 vector cores streaming loads: HBM is the limit
    n, rows = 48, 512
    kernels = []
    for c in range(n):
        body = []
        for r in range(0, rows, 64):
            body += [Load(Tile(Space.UB, 0, DType.FP32, (64, 512)), GmRegion("x", c * rows + r, 0, 64, 512,
                                                                             DType.FP32))]
        kernels.append(Kernel(f"k{c}", tuple(body)))
    from isa import Task
    program = Program("stream", (Tensor("x", DType.FP32, (n * rows, 512), Role.INPUT),),
                      tuple(Task.of(k, kind=CoreKind.VECTOR) for k in kernels))
    b = bounds(simulate(program, CFG, numerics=False))
    assert b.limiter[0] == "HBM bandwidth" and b.memory > 0.8
    assert b.explain().startswith("bound by HBM bandwidth")


# --- plots ----------------------------------------------------------------------------------------

def test_run_figure_has_titled_labelled_panels_and_saves_a_png(paged, tmp_path):
    fig = plots.run_figure(paged)
    util, heat, gantt, hbm = fig.axes[:4]  # the fifth is the heatmap's colour bar
    axes = [util, gantt, hbm]
    assert [a.get_title().split(":")[0].split(" (")[0] for a in axes] == [
        "Pipe utilization per core", f"Pipes of {plots.busiest_core(paged)} over time",
        "HBM bandwidth over time"]
    assert heat.get_title().startswith("Busy share per core over time")
    assert [a.get_ylabel() for a in axes] == ["share of the run (%)", "pipe", "GB/s"]
    assert [a.get_xlabel() for a in axes] == ["core", "time (us)", "time (us)"]
    assert all(a.get_legend() is not None for a in axes)
    labels = [t.get_text() for t in axes[0].get_xticklabels()]
    assert labels[0] == "aic0" and len(labels) == len(paged.by_core())
    assert axes[1].get_xlim()[1] == pytest.approx(paged.cycles / (CFG.clock_ghz * 1000))
    path = tmp_path / "u.png"
    plots.save(fig, path)
    image = imread(path)
    assert image.shape[:2] == (1600, 1400) and image.std() > 0.05  # not blank


def test_compare_figure_shows_time_and_speedup(paged, tmp_path):
    slow = simulate(pa.build(pa.make_case(pa.Shape(2, 16, 1, 64, 64), [150, 70]), "1block"), CFG,
                    numerics=False)
    fig = plots.compare_figure([("1block", slow), ("2block", paged)], "title")
    left, right = fig.axes[:2]  # the panels over time follow
    assert left.get_ylabel() == "time (us)" and "busy" in right.get_ylabel()
    notes = [t.get_text() for t in left.texts]
    assert notes[1].endswith(f"{slow.cycles / paged.cycles:.2f}x")
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["1block", "2block"]
    plots.save(fig, tmp_path / "c.png")
    assert imread(tmp_path / "c.png").shape[:2] == (1400, 1300)


# --- record, dump, progress -----------------------------------------------------------------------

def test_record_holds_the_run_and_the_check(tile, tmp_path):
    refs = {"torch": tile_matmul.reference(tile_matmul.inputs(0))}
    check = outputs.numerics_check(refs, tile.tensors, 1e-5, 1e-5)
    rec = outputs.record(tile, "tile-matmul", {"seed": 0}, {"hbm.bandwidth_gbps": 800.0}, check)
    rec = json.loads(json.dumps(rec))  # JSON-ready
    assert rec["cycles"] == hand.CYCLES and rec["microseconds"] == pytest.approx(hand.CYCLES / 1.8e3)
    assert rec["busy_cycles"] == hand.BUSY
    assert rec["overrides"] == {"hbm.bandwidth_gbps": 800.0} and rec["preset"] == "910b2"
    assert rec["numerics"]["match"] and rec["numerics"]["comparisons"][0]["max_abs_error"] < 1e-5
    assert rec["bounds"]["compute_percent"] == pytest.approx(100 * hand.CUBE_CYCLES / hand.CYCLES)


def test_dump_writes_every_tensor_and_the_summary(tile, tmp_path):
    files = outputs.dump(tmp_path / "d", tile, {"cycles": tile.cycles})
    assert sorted(f.name for f in files) == ["k.npy", "out.npy", "q.npy", "summary.json"]
    q = np.load(tmp_path / "d" / "q.npy")
    assert q.dtype == np.float32 and np.array_equal(q, tile.tensors["q"].astype(np.float32))
    np.testing.assert_array_equal(np.load(tmp_path / "d" / "out.npy"), tile.tensors["out"])
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["cycles"] == tile.cycles
    assert summary["tensors"]["q"] == {"file": "q.npy", "dtype": "bf16", "shape": [16, 128],
                                       "saved_as": "float32"}


def test_progress_reports_climb_to_the_total_and_change_nothing(monkeypatch):
    monkeypatch.setattr("npusim.chip._EVENTS_PER_REPORT", 200)
    program = matmul.build_single_core(1024, 1024, 512)
    seen = []
    with_progress = simulate(program, CFG, numerics=False, progress=lambda d, t: seen.append((d, t)))
    plain = simulate(program, CFG, numerics=False)
    total = len(program.kernels[0])
    assert len(seen) > 1 and seen[-1] == (total, total)
    assert all(a <= b for (a, _), (b, _) in zip(seen, seen[1:], strict=False))
    assert with_progress.cycles == plain.cycles
    np.testing.assert_array_equal(with_progress.traces[0].end, plain.traces[0].end)


def test_progress_bar_appears_only_once_the_run_has_taken_its_delay(monkeypatch):
    # A clock the test moves, instead of the wall clock: the bar's decision is a function of it.
    now = [1000.0]
    monkeypatch.setattr(outputs, "time", SimpleNamespace(monotonic=lambda: now[0]))
    delay = outputs.PROGRESS_AFTER_SECONDS
    off, bar = outputs.Progress(enabled=False, label="x"), outputs.Progress(enabled=True, label="x")
    for done in (1, 2):
        bar(done, 10)  # no time has passed
        now[0] += delay / 4
        bar(done, 10)
    assert bar.bar is None  # 1/4 and 2/4 of the delay in
    now[0] = 1000.0 + delay  # reports from here on show
    off(3, 10)
    assert off.bar is None  # a disabled bar never shows
    bar(3, 10)
    assert bar.bar is not None and (bar.bar.n, bar.bar.total) == (3, 10)
    bar(7, 10)
    assert bar.bar.n == 7  # later reports move it to the count they give
    bar.close()
    assert bar.bar is None

