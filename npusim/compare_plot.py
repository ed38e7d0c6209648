"""The compare figure: variants side by side, then over time on one shared time axis.

Every panel draws a variant in the same colour (`plot_canvas.variant_colors`): its time bar, its
busy bars, its HBM line and its line in each pipe's panel, so a variant is followed by colour alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from npusim.plot_bins import DEFAULT_BINS, busy_per_bin, hbm_per_bin, pipe_shares, time_edges
from npusim.plot_canvas import new_figure, variant_colors
from npusim.results import SHOWN_PIPES, Result

if TYPE_CHECKING:
    from matplotlib.figure import Figure, SubFigure

Rows = Sequence[tuple[str, Result]]


def _times(ax, rows: Rows, colors: dict[str, str]) -> None:
    names = [name for name, _ in rows]
    times = [r.seconds * 1e6 for _, r in rows]
    bars = ax.bar(names, times, color=[colors[n] for n in names])
    base = rows[0][1].cycles
    for bar, (_, r) in zip(bars, rows, strict=True):
        ax.annotate(f"{r.seconds * 1e6:.1f} us\n{base / r.cycles:.2f}x", (bar.get_x() + bar.get_width() / 2,
                    bar.get_height()), ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("time (us)")
    ax.set_xlabel("variant")
    ax.set_ylim(0, max(times) * 1.2)
    ax.set_title(f"Time, and speedup over {names[0]}")


def _busy(ax, rows: Rows, colors: dict[str, str]) -> None:
    width = 0.8 / len(rows)
    for k, (name, r) in enumerate(rows):
        util = r.utilization()
        xs = [i - 0.4 + (k + 0.5) * width for i in range(len(SHOWN_PIPES))]
        ax.bar(xs, [100 * util[p] for p in SHOWN_PIPES], width, label=name, color=colors[name])
    ax.set_xticks(range(len(SHOWN_PIPES)))
    ax.set_xticklabels([p.value for p in SHOWN_PIPES])
    ax.set_xlabel("pipe")
    ax.set_ylabel("busy (% of the cores that have the pipe)")
    ax.set_title("Pipe busy share per variant")
    ax.legend(title="variant")


def _ends(ax, rows: Rows, colors: dict[str, str], us: float) -> None:
    """A dotted line where each variant's run ends: past it, its lines are zero because it is done."""
    for name, r in rows:
        ax.axvline(r.cycles * us, color=colors[name], linestyle=":", linewidth=1)


def _hbm(ax, rows: Rows, colors: dict[str, str], edges: np.ndarray) -> None:
    ghz = rows[0][1].config.clock_ghz
    us = 1.0 / (ghz * 1000.0)
    middle = (edges[:-1] + edges[1:]) / 2 * us
    for name, r in rows:
        gbps = hbm_per_bin(r.memory.hbm_timeline, edges) / np.diff(edges) * r.config.clock_ghz
        ax.plot(middle, gbps, color=colors[name], label=name, linewidth=1.2)
    _ends(ax, rows, colors, us)
    peak = rows[0][1].config.hbm.bandwidth_gbps
    ax.axhline(peak, color="black", linestyle="--", linewidth=1, label=f"HBM bandwidth ({peak:g} GB/s)")
    ax.set_xlim(0, edges[-1] * us)
    ax.set_ylim(0, peak * 1.1)
    ax.set_xlabel("time (us)")
    ax.set_ylabel("GB/s")
    ax.set_title(f"HBM bandwidth over time, per variant (mean of each of {len(edges) - 1} bins; "
                 "dotted: where a variant ends)")
    ax.legend(fontsize=8, loc="lower right")


def _pipes(sub: SubFigure, rows: Rows, colors: dict[str, str], edges: np.ndarray) -> None:
    us = 1.0 / (rows[0][1].config.clock_ghz * 1000.0)
    middle = (edges[:-1] + edges[1:]) / 2 * us
    shares = {name: pipe_shares(busy_per_bin(r, edges), edges) for name, r in rows}
    pipes = [p for p in SHOWN_PIPES if any(p in s for s in shares.values())]
    ncols = min(3, len(pipes))
    axes = np.atleast_1d(sub.subplots(math.ceil(len(pipes) / ncols), ncols, sharex=True, sharey=True)).ravel()
    for ax, pipe in zip(axes, pipes, strict=False):
        for name, _ in rows:
            if pipe in shares[name]:
                ax.plot(middle, 100 * shares[name][pipe], color=colors[name], label=name, linewidth=1.2)
        _ends(ax, rows, colors, us)
        ax.set_title(f"{pipe.value} busy over time")
        ax.set_xlabel("time (us)")
        ax.set_ylabel("busy (% of its cores)")
        ax.set_xlim(0, edges[-1] * us)
        ax.set_ylim(0, 105)
        ax.label_outer()  # the panels share their axes: name them once, on the outer edge
    for ax in axes[len(pipes):]:
        ax.remove()
    axes[0].legend(title="variant", fontsize=8)


def compare_figure(rows: Rows, title: str, bins: int = DEFAULT_BINS) -> Figure:
    """Variants side by side (time, speedup, busy % per pipe) and over time on one time axis.

    Over time: HBM bandwidth, and each pipe's busy share across the cores that have it, both
    averaged over `bins` equal bins of the longest run, one line per variant.
    """
    colors = variant_colors([name for name, _ in rows])
    fig = new_figure(13, 14)
    grid = fig.add_gridspec(3, 1, height_ratios=[1, 0.7, 1.4])
    top, middle, bottom = (fig.add_subfigure(grid[k]) for k in range(3))
    left, right = top.subplots(1, 2, width_ratios=[1, 2])
    _times(left, rows, colors)
    _busy(right, rows, colors)
    edges = time_edges(max(r.cycles for _, r in rows), bins)
    _hbm(middle.subplots(), rows, colors, edges)
    _pipes(bottom, rows, colors, edges)
    fig.suptitle(title, fontsize=13)
    return fig
