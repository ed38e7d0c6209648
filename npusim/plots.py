"""Figures of a run, drawn with matplotlib's Agg canvas (no display, no global pyplot state).

`run_figure`: pipe utilisation per core (busy and idle stacked to 100%), a Gantt chart of one
core's pipes, and HBM bandwidth over time. `compare_figure`: variants side by side.

matplotlib is imported by the functions that draw, not at the top: the command line imports this
module, and a run without `--plot` should not pay matplotlib's start-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from isa.instructions import SetFlag
from isa.types import Pipe
from npusim.results import PIPE_ORDER, SHOWN_PIPES, Result, core_order
from npusim.timeline import pipe_intervals

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLORS = {Pipe.MTE2: "#1f77b4", Pipe.MTE1: "#17becf", Pipe.M: "#d62728", Pipe.FIX: "#ff7f0e",
          Pipe.V: "#2ca02c", Pipe.MTE3: "#9467bd", Pipe.S: "#7f7f7f"}
IDLE = "#e6e6e6"
WAIT = "#bbbbbb"


def _figure(width: float, height: float) -> Figure:
    """An empty figure on an Agg canvas, laid out by constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazily: see the module docstring
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


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


def run_figure(result: Result, core: str | None = None, title: str | None = None) -> Figure:
    """Utilisation per core, one core's Gantt chart (the busiest unless `core`), HBM bandwidth."""
    fig = _figure(14, 12)
    axes = fig.subplots(3, 1, height_ratios=[1.2, 1, 0.8])
    _utilization(axes[0], result)
    _gantt(axes[1], result, core or busiest_core(result))
    _hbm(axes[2], result)
    fig.suptitle(title or f"{result.program.name} on {result.config.name}: {result.cycles:,} cycles "
                 f"= {result.seconds * 1e6:.1f} us", fontsize=13)
    return fig


def compare_figure(rows: Sequence[tuple[str, Result]], title: str) -> Figure:
    """Time per variant (with the speedup over the first) and busy % per pipe, side by side."""
    fig = _figure(13, 5)
    left, right = fig.subplots(1, 2, width_ratios=[1, 2])
    names = [name for name, _ in rows]
    times = [r.seconds * 1e6 for _, r in rows]
    bars = left.bar(names, times, color=["#7f7f7f"] + ["#1f77b4"] * (len(rows) - 1))
    base = rows[0][1].cycles
    for bar, (_, r) in zip(bars, rows, strict=True):
        left.annotate(f"{r.seconds * 1e6:.1f} us\n{base / r.cycles:.2f}x", (bar.get_x() + bar.get_width() / 2,
                      bar.get_height()), ha="center", va="bottom", fontsize=9)
    left.set_ylabel("time (us)")
    left.set_xlabel("variant")
    left.set_ylim(0, max(times) * 1.2)
    left.set_title(f"Time, and speedup over {names[0]}")
    width = 0.8 / len(rows)
    for k, (name, r) in enumerate(rows):
        util = r.utilization()
        xs = [i - 0.4 + (k + 0.5) * width for i in range(len(SHOWN_PIPES))]
        right.bar(xs, [100 * util[p] for p in SHOWN_PIPES], width, label=name)
    right.set_xticks(range(len(SHOWN_PIPES)))
    right.set_xticklabels([p.value for p in SHOWN_PIPES])
    right.set_xlabel("pipe")
    right.set_ylabel("busy (% of the cores that have the pipe)")
    right.set_title("Pipe busy share per variant")
    right.legend(title="variant")
    fig.suptitle(title, fontsize=13)
    return fig


def save(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    fig.savefig(path, dpi=dpi)


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
    fig = _figure(9, 5.5)
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
