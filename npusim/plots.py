"""Figures of a run, drawn with matplotlib's Agg canvas (no display, no global pyplot state).

`run_figure`: pipe utilisation per core (busy and idle stacked to 100%), a heatmap of each core's
busy share over time, a Gantt chart of one core's pipes, and HBM bandwidth over time.
`compare_figure` (in `npusim.compare_plot`): variants side by side and over time.
`roofline_figure` (in `npusim.roofline_plot`): runs against the cube and HBM ceilings.

matplotlib is imported by the functions that draw, not at the top: the command line imports this
module, and a run without `--plot` should not pay matplotlib's start-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from isa.instructions import SetFlag
from isa.types import Pipe
from npusim.compare_plot import compare_figure
from npusim.plot_bins import DEFAULT_BINS, busy_per_bin, core_heat, time_edges
from npusim.plot_canvas import PlotError, check_plot_path, new_figure, plot_title, save
from npusim.results import PIPE_ORDER, SHOWN_PIPES, Result, core_order
from npusim.timeline import pipe_intervals

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLORS = {Pipe.MTE2: "#1f77b4", Pipe.MTE1: "#17becf", Pipe.M: "#d62728", Pipe.FIX: "#ff7f0e",
          Pipe.V: "#2ca02c", Pipe.MTE3: "#9467bd", Pipe.S: "#7f7f7f"}
IDLE = "#e6e6e6"
WAIT = "#bbbbbb"
HEAT_MAP = "viridis"

__all__ = ["COLORS", "PlotError", "busiest_core", "check_plot_path", "compare_figure", "heatmap_figure",
           "run_figure", "save", "sweep_figure"]


def busiest_core(result: Result) -> str:
    """The core with the most busy pipe cycles: the default for the Gantt chart."""
    per_core = result.by_core()
    return max(sorted(per_core, key=core_order), key=lambda c: sum(per_core[c][1].values()))


def _utilization(ax, result: Result) -> None:
    from matplotlib.patches import Patch  # lazily: see the module docstring

    per_core = result.by_core()
    pipes_of = {core: [p for p in SHOWN_PIPES if p in pipes]
                for core, pipes in result.pipes_by_core().items()}
    cores = sorted(per_core, key=core_order)
    slots = max(len(p) for p in pipes_of.values())
    width = 0.8 / slots
    cycles = max(1, result.cycles)
    for x, core in enumerate(cores):
        for k, pipe in enumerate(pipes_of[core]):
            busy = 100 * per_core[core][1][pipe] / cycles
            left = x - 0.4 + k * width
            ax.bar(left, busy, width, align="edge", color=COLORS[pipe])
            ax.bar(left, 100 - busy, width, bottom=busy, align="edge", color=IDLE)
    ax.set_xticks(range(len(cores)))
    ax.set_xticklabels(cores, rotation=90 if len(cores) > 12 else 0, fontsize=7 if len(cores) > 24 else 9)
    ax.set_xlim(-0.6, len(cores) - 0.4)
    ax.set_ylim(0, 118)  # the band above 100% holds the legend
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("share of the run (%)")
    ax.set_xlabel("core")
    ax.set_title("Pipe utilization per core: busy (colour) and idle (grey) over the whole run")
    used = [p for p in SHOWN_PIPES if any(p in v for v in pipes_of.values())]
    ax.legend(handles=[Patch(color=COLORS[p], label=f"{p.value} busy") for p in used]
              + [Patch(color=IDLE, label="idle")], ncol=len(used) + 1, fontsize=8, loc="upper right")


def _gantt(ax, result: Result, core: str) -> None:
    from matplotlib.patches import Patch  # lazily: see the module docstring

    us = 1.0 / (result.config.clock_ghz * 1000.0)
    traces = [t for t in result.traces if t.core == core]
    lanes = [p for p in PIPE_ORDER
             if any(i.pipe is p and type(i) is not SetFlag for t in traces for i in t.kernel.instructions)]
    intervals = pipe_intervals(traces)
    for y, pipe in enumerate(lanes):
        bs, be, ws, we = intervals[pipe]
        busy = [(s * us, (e - s) * us) for s, e in zip(bs, be, strict=True)]
        waits = [(s * us, (e - s) * us) for s, e in zip(ws, we, strict=True)]
        ax.broken_barh(waits, (y - 0.3, 0.6), facecolors=WAIT, hatch="///", edgecolor="white", linewidth=0)
        ax.broken_barh(busy, (y - 0.4, 0.8), facecolors=COLORS[pipe])
    for t in traces:  # task boundaries
        ax.axvline(t.dispatched * us, color="black", linewidth=0.5, alpha=0.3)
    ax.set_yticks(range(len(lanes)))
    ax.set_yticklabels([p.value for p in lanes])
    ax.invert_yaxis()
    ax.set_xlim(0, max(1, result.cycles) * us)
    ax.set_xlabel("time (us)")
    ax.set_ylabel("pipe")
    ax.set_title(f"Pipes of {core} over time ({len(traces)} task(s); thin lines: task dispatches)")
    ax.legend(handles=[Patch(color="#555555", label="busy (colour by pipe)"),
                       Patch(facecolor=WAIT, hatch="///", label="waiting on a flag or barrier")],
              fontsize=8, loc="lower right")


def _hbm(ax, result: Result) -> None:
    ghz = result.config.clock_ghz
    timeline = list(result.memory.hbm_timeline)
    end = max(1, result.cycles)
    xs = [c / ghz / 1000 for c, _ in timeline] + [end / ghz / 1000]
    ys = [r * ghz for _, r in timeline]
    ys.append(ys[-1] if ys else 0.0)
    ax.step(xs, ys, where="post", color=COLORS[Pipe.MTE2], label="HBM traffic")
    peak = result.config.hbm.bandwidth_gbps
    ax.axhline(peak, color="black", linestyle="--", linewidth=1, label=f"HBM bandwidth ({peak:g} GB/s)")
    ax.set_xlim(0, end / ghz / 1000)
    ax.set_ylim(0, peak * 1.1)
    ax.set_xlabel("time (us)")
    ax.set_ylabel("GB/s")
    ax.set_title(f"HBM bandwidth over time (average {result.memory.average_gbps(result.cycles):.0f} GB/s)")
    ax.legend(fontsize=8, loc="lower right")


def _heatmap(ax, result: Result, bins: int) -> None:
    edges = time_edges(result.cycles, bins)
    busy = busy_per_bin(result, edges)
    cores, heat = core_heat(busy, edges)
    us = 1.0 / (result.config.clock_ghz * 1000.0)
    image = ax.imshow(heat, aspect="auto", interpolation="nearest", cmap=HEAT_MAP, vmin=0.0, vmax=1.0,
                      extent=(0.0, edges[-1] * us, len(cores) - 0.5, -0.5))
    step = math.ceil(len(cores) / 24)  # at most 24 core names on the axis
    ax.set_yticks(range(0, len(cores), step))
    ax.set_yticklabels(cores[::step], fontsize=8)
    ax.set_xlabel("time (us)")
    ax.set_ylabel("core")
    ax.set_title(f"Busy share per core over time ({len(edges) - 1} bins of {edges[1]:.0f} cycles)")
    kinds = {core_order(c)[0].upper(): sorted(pipes, key=PIPE_ORDER.index) for c, pipes in busy.items()}
    which = "; ".join(f"{kind}: {' '.join(p.value for p in pipes)}" for kind, pipes in kinds.items())
    bar = ax.get_figure().colorbar(image, ax=ax, location="bottom", shrink=0.5, aspect=40)
    bar.set_label(f"mean over the core's pipes of their busy share of the bin ({which})")


def heatmap_figure(result: Result, title: str, bins: int = DEFAULT_BINS) -> Figure:
    """The run plot's heatmap alone: each core's busy share over time, for a page with room for one panel."""
    fig = new_figure(12, 6)
    _heatmap(fig.subplots(), result, bins)
    fig.suptitle(title, fontsize=13)
    return fig


def run_figure(result: Result, core: str | None = None, title: str | None = None,
               overrides: Sequence[str] = (), preset: str | None = None, bins: int = DEFAULT_BINS) -> Figure:
    """Utilisation per core, busy share per core over time, one core's Gantt chart, HBM bandwidth.

    The Gantt chart shows `core`, else the busiest. Unless `title` is given, the title names the
    program, the preset (`preset`, else the config's name) and the `--set` `overrides` as given.
    """
    fig = new_figure(14, 16)
    axes = fig.subplots(4, 1, height_ratios=[1.2, 1.4, 1, 0.8])
    _utilization(axes[0], result)
    _heatmap(axes[1], result, bins)
    _gantt(axes[2], result, core or busiest_core(result))
    _hbm(axes[3], result)
    ran = plot_title(result.program.name, preset or result.config.name, overrides)
    fig.suptitle(title or f"{ran}: {result.cycles:,} cycles = {result.seconds * 1e6:.1f} us", fontsize=13)
    return fig


def sweep_figure(columns: Sequence[str], values: Sequence[Sequence[object]], swept: Sequence[str],
                 metric: str, title: str, skip: Mapping[str, object] | None = None) -> Figure:
    """`metric` against the first swept column, one line per combination of the other swept columns.

    Rows whose status is not ok are left out, and so are rows matching `skip` (the baseline, whose
    speedup is 1 by definition); a baseline column with a single other value is not an axis.
    """
    col = {c: i for i, c in enumerate(columns)}
    if metric not in col:
        raise ValueError(f"no column {metric!r} to plot; columns: {', '.join(columns)}")
    keys = list(swept)
    if skip:  # a baseline key with one other value says nothing on the plot: its rows are that value
        keys = [k for k in keys if k not in skip or len({str(r[col[k]]) for r in values}) > 2] or keys
    x_key, others = keys[0], keys[1:]
    lines: dict[str, list[tuple[object, float]]] = {}
    for row in values:
        if row[col["status"]] != "ok" or row[col[metric]] in ("", None):
            continue
        if skip and all(str(row[col[k]]) == str(v) for k, v in skip.items()):
            continue
        label = ", ".join(f"{k}={row[col[k]]}" for k in others) or ", ".join(
            f"{k}={row[col[k]]}" for k in swept if k != x_key) or metric
        lines.setdefault(label, []).append((row[col[x_key]], float(row[col[metric]])))
    fig = new_figure(9, 5.5)
    ax = fig.subplots()

    def number(v: object) -> float | None:
        try:
            return float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None

    numeric = all(number(x) is not None for pts in lines.values() for x, _ in pts)
    categories = list(dict.fromkeys(str(x) for pts in lines.values() for x, _ in pts))
    for label, pts in lines.items():
        xs = [number(x) if numeric else categories.index(str(x)) for x, _ in pts]
        ax.plot(xs, [y for _, y in pts], marker="o", label=label)
    if not numeric:
        ax.set_xticks(range(len(categories)))
        ax.set_xticklabels(categories)
    ax.set_xlabel(x_key)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(title)
    if metric == "speedup":
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    ax.grid(alpha=0.3)
    if lines:
        ax.legend(fontsize=8)
    return fig


METRIC_LABELS = {"cycles": "cycles", "microseconds": "time (us)", "speedup": "speedup over the baseline (x)",
                 "hbm_mb": "HBM traffic (MB)", "compute_pct": "cube compute bound (% of the run)",
                 "memory_pct": "HBM bound (% of the run)", "tasks": "tasks", "instructions": "instructions"}
