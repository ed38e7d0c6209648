"""The roofline, the run plot's heatmap, compare's timelines, the binning behind them, output paths.

Expected numbers come from the preset files (worked by hand below), from tests/tile_matmul_by_hand,
or from a second, plain computation over the run's instructions; never from the plotting code.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_hex

from isa import DType, GmRegion, Kernel, Load, Program, Role, Space, Task, Tensor, Tile
from isa.instructions import Mmad
from isa.program import CoreKind
from npusim import load_preset, plots, simulate
from npusim.plot_bins import busy_per_bin, hbm_per_bin, time_edges
from npusim.plot_canvas import PlotError, check_plot_path, variant_colors
from npusim.roofline import cube_peak_flops, hbm_peak_bytes
from npusim.roofline_plot import roofline_figure
from programs import paged_attention as pa
from programs import tile_matmul
from tests import tile_matmul_by_hand as hand

CFG = load_preset("910b2")
US = 1.0 / (1.8 * 1000.0)  # microseconds per cycle at 910b2's clock_ghz = 1.8
# 910b2.toml: cube_cores = 24, m0 = n0 = 16, k0_bytes = 32 (16 bf16 elements), clock_ghz = 1.8,
# fp32_step_cycles = 2; hbm.bandwidth_gbps = 1600.
PEAK_BF16 = 24 * 16 * 16 * 16 * 2 * 1.8e9  # 353.89 TFLOP/s
PEAK_FP32 = 24 * 16 * 16 * 8 * 2 * 1.8e9 / 2  # k0 = 32 / 4 = 8, one step per 2 cycles: 44.24 TFLOP/s
HBM = 1600e9
RIDGE = PEAK_BF16 / HBM  # 221.18 flop per byte


@pytest.fixture(scope="module")
def tile():
    return simulate(tile_matmul.build(), CFG, numerics=False)


@pytest.fixture(scope="module")
def variants():
    case = pa.make_case(pa.Shape(2, 16, 1, 64, 64), [150, 70])
    return [(v, simulate(pa.build(case, v), CFG, numerics=False)) for v in ("1block", "2block")]


def _mmad_flops(result):
    """2 m k n over every mmad the run executed, from the instructions' shapes."""
    return sum(2 * i.a.shape[0] * i.a.shape[1] * i.b.shape[1]
               for t in result.traces for i in t.kernel.instructions if isinstance(i, Mmad))


# --- roofline -------------------------------------------------------------------------------------

def test_ceilings_are_the_presets_numbers_worked_by_hand():
    assert cube_peak_flops(CFG, DType.BF16) == pytest.approx(PEAK_BF16)
    assert cube_peak_flops(CFG, DType.FP16) == pytest.approx(PEAK_BF16)
    assert cube_peak_flops(CFG, DType.FP32) == pytest.approx(PEAK_FP32)
    assert hbm_peak_bytes(CFG) == HBM
    # 310p.toml: a coupled chip, 8 cores that each have a cube, at 1.06 GHz; LPDDR at 204.8 GB/s
    small = load_preset("310p")
    assert cube_peak_flops(small) == pytest.approx(8 * 16 * 16 * 16 * 2 * 1.06e9)
    assert hbm_peak_bytes(small) == pytest.approx(204.8e9)


def test_roofline_draws_the_ceilings_the_ridge_and_the_tile_matmul_point(tile):
    fig = roofline_figure([("tile", tile)], program="tile-matmul", preset="910b2")
    (ax,) = fig.axes
    assert ax.get_xlabel() == "arithmetic intensity (cube flop per HBM byte)"
    assert ax.get_ylabel() == "achieved cube throughput (TFLOP/s)"
    assert ax.get_title() == "Roofline: tile-matmul tile on preset 910b2"
    assert ax.get_xscale() == ax.get_yscale() == "log"
    slope, flat, ridge = ax.get_lines()
    assert flat.get_ydata()[0] == flat.get_ydata()[1] == pytest.approx(PEAK_BF16 / 1e12)
    x0, x1 = slope.get_xdata()
    y0, y1 = slope.get_ydata()
    assert y0 == pytest.approx(HBM * x0 / 1e12) and y1 == pytest.approx(HBM * x1 / 1e12)
    assert x1 == pytest.approx(RIDGE) and ridge.get_xdata()[0] == pytest.approx(RIDGE)
    assert any(t.get_text() == f"ridge point: {RIDGE:.1f} flop/B" for t in ax.texts)
    assert "24 cores x 16x16x16 MAC x 2 flop x 1.8 GHz" in flat.get_label()
    # One mmad 16 x 128 x 128; q and k read from HBM once (tests/tile_matmul_by_hand)
    flops = 2 * 16 * 128 * 128
    (point,) = ax.collections
    x, y = point.get_offsets()[0]
    assert x == pytest.approx(flops / hand.HBM_READ)  # 14.2 flop per byte: under the HBM slope
    assert y == pytest.approx(flops / (hand.CYCLES / 1.8e9) / 1e12)
    assert y < HBM * x / 1e12


def test_compared_variants_are_one_point_each_in_their_colour_under_the_hbm_slope(variants):
    fig = roofline_figure(variants, program="paged-attention", preset="910b2",
                          overrides=["hbm.bandwidth_gbps=1600", "l2.hints=true"])
    (ax,) = fig.axes
    title = ax.get_title()
    assert "paged-attention 1block, 2block" in title and "preset 910b2" in title
    assert title.endswith("with hbm.bandwidth_gbps=1600, l2.hints=true")
    assert len(ax.collections) == 2
    colors = variant_colors(["1block", "2block"])
    for (name, result), dots in zip(variants, ax.collections, strict=True):
        assert to_hex(dots.get_facecolor()[0]) == colors[name]
        x, y = dots.get_offsets()[0]
        assert x == pytest.approx(_mmad_flops(result) / result.memory.hbm_bytes)
        assert y == pytest.approx(_mmad_flops(result) / result.seconds / 1e12)
        assert x < RIDGE and y < HBM * x / 1e12  # memory-bound: left of the ridge, under the slope
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[2].startswith("1block: ") and legend[3].startswith("2block: ")


def test_a_run_without_cube_work_is_named_in_the_legend_not_drawn():
    load = Load(Tile(Space.UB, 0, DType.FP32, (64, 512)), GmRegion("x", 0, 0, 64, 512, DType.FP32))
    program = Program("stream", (Tensor("x", DType.FP32, (64, 512), Role.INPUT),),
                      (Task.of(Kernel("k", (load,)), kind=CoreKind.VECTOR),))
    fig = roofline_figure([("stream", simulate(program, CFG, numerics=False))])
    (ax,) = fig.axes
    assert len(ax.collections) == 0
    assert ax.get_legend().get_texts()[-1].get_text().startswith("stream: not drawn (0 cube flops")


# --- the run plot's heatmap -----------------------------------------------------------------------

def test_binning_places_the_tile_matmul_busy_intervals_worked_by_hand(tile):
    # MTE2 loads 201..432; MTE1 moves 616..888; the mmad 920..990; the fixpipe 1010..1079
    busy = busy_per_bin(tile, np.array([0.0, 300.0, 700.0, 1179.0]))
    assert list(busy) == ["aic0"]
    got = {p.value: a.tolist() for p, a in busy["aic0"].items()}
    assert got == {"MTE2": [99, 132, 0], "MTE1": [0, 84, 188], "M": [0, 0, 70], "FIX": [0, 0, 69]}


def test_heatmap_rows_are_cores_and_sum_to_their_busy_cycles(variants, tile):
    _, result = variants[1]
    fig = plots.run_figure(result, bins=50)
    heat = fig.axes[1]
    assert heat.get_xlabel() == "time (us)" and heat.get_ylabel() == "core"
    data = heat.images[0].get_array()
    cores = sorted(result.by_core(), key=lambda c: (c[:3], int(c[3:])))
    assert [t.get_text() for t in heat.get_yticklabels()] == cores
    assert data.shape == (len(cores), 50)
    width = result.cycles / 50
    for row, core in zip(data, cores, strict=True):
        pipes = result.pipes_by_core()[core] - {p for p in result.busy if p.value == "S"}
        busy = sum(result.by_core()[core][1][p] for p in pipes)
        assert row.sum() * width * len(pipes) == pytest.approx(busy)
    label = fig.axes[4].get_xlabel()
    assert label.startswith("mean over the core's pipes of their busy share")
    assert "AIC: MTE2 MTE1 M FIX" in label and "AIV: MTE2 V MTE3" in label
    one = plots.run_figure(tile, bins=10).axes[1].images[0].get_array()
    assert one.sum() * (hand.CYCLES / 10) * 4 == pytest.approx(sum(hand.BUSY.values()))
    alone = plots.heatmap_figure(tile, "t", bins=10)  # the same panel on its own, for a page
    assert np.array_equal(alone.axes[0].images[0].get_array(), one) and alone.get_suptitle() == "t"


def test_run_title_names_the_preset_and_the_overrides(tile):
    fig = plots.run_figure(tile, overrides=["name=foo"], preset="910b2")
    assert fig.get_suptitle().startswith("tile_matmul on preset 910b2 with name=foo: 1,179 cycles")


# --- compare --------------------------------------------------------------------------------------

def test_compare_draws_each_variant_in_one_colour_in_every_panel(variants):
    fig = plots.compare_figure(variants, "title", bins=40)
    colors = variant_colors(["1block", "2block"])
    times, busy, hbm, *pipe_axes = fig.axes
    assert [to_hex(b.get_facecolor()) for b in times.patches] == [colors["1block"], colors["2block"]]
    for ax in [hbm, *pipe_axes]:
        for line in ax.get_lines():
            if line.get_label() in colors:
                assert to_hex(line.get_color()) == colors[line.get_label()]
    assert [a.get_title() for a in pipe_axes] == [f"{p} busy over time"
                                                   for p in ("MTE2", "MTE1", "M", "FIX", "V", "MTE3")]
    named = [line.get_label() for line in hbm.get_lines() if line.get_label() in colors]
    assert named == ["1block", "2block"]
    assert hbm.get_xlabel() == "time (us)" and hbm.get_ylabel() == "GB/s"
    edges = time_edges(max(r.cycles for _, r in variants), 40)
    for ax in pipe_axes:
        pipe = next(p for p in variants[0][1].busy if f"{p.value} busy" in ax.get_title())
        for line, (_, result) in zip(ax.get_lines()[:2], variants, strict=True):
            # the mean over the bins of the share, weighted to the run's end, is Result.utilization
            share = line.get_ydata() / 100 * np.diff(edges)
            assert share.sum() == pytest.approx(result.utilization()[pipe] * result.cycles)
    assert fig.get_suptitle() == "title"


def test_hbm_bins_hold_the_bytes_of_the_timeline(variants):
    _, result = variants[0]
    steps = result.memory.hbm_timeline
    total = sum(rate * (steps[k + 1][0] - at) for k, (at, rate) in enumerate(steps[:-1]))
    edges = time_edges(result.cycles, 37)
    assert hbm_per_bin(steps, edges).sum() == pytest.approx(total)
    # one step of 160 B/cycle from cycle 10 to 30, split at 20: 1600 B on each side
    split = hbm_per_bin([(0, 0.0), (10, 160.0), (30, 0.0)], np.array([0.0, 20.0, 40.0]))
    assert split.tolist() == [1600, 1600]


# --- output paths ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "says"), [
    ("out.txt", "--plot {p}: extension .txt is not an image format; use one of "),
    ("out", "--plot {p}: no extension names the format; use one of "),
    ("missing/out.png", "--plot {p}: folder {d}/missing does not exist"),
])
def test_a_path_no_figure_can_go_to_is_a_one_line_plot_error(tmp_path, name, says):
    path = tmp_path / name
    with pytest.raises(PlotError) as err:
        check_plot_path(path, "--plot")
    assert str(err.value).startswith(says.format(p=path, d=tmp_path))
    assert "\n" not in str(err.value) and isinstance(err.value, ValueError)
    if "use one of" in says:
        assert ".png" in str(err.value) and ".svg" in str(err.value) and ".pgf" not in str(err.value)


def test_a_folder_is_not_a_plot_file_and_good_names_pass(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(PlotError, match="is a folder"):
        check_plot_path(tmp_path / "d.png", "--roofline")
    assert check_plot_path(str(tmp_path / "r.PDF"), "--roofline") == tmp_path / "r.PDF"
    assert check_plot_path(tmp_path / "r.svg", "--plot") == tmp_path / "r.svg"


def test_the_plot_modules_import_no_matplotlib():
    code = ("import json, sys\nimport npusim.plots, npusim.roofline_plot, npusim.compare_plot\n"
            "print(json.dumps('matplotlib' in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert json.loads(done.stdout) is False
