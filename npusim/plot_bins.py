"""A run's busy time and HBM traffic in equal time bins: the numbers behind the plots over time.

Plain numpy, no matplotlib: the heatmap of the run plot and the timelines of the compare plot draw
these arrays, and tests check them against the Result's totals (binning moves no busy cycle from
one pipe or core to another, so each row sums to that pipe's or core's busy cycles).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from isa.types import Pipe
from npusim.results import SHOWN_PIPES, Result, core_order
from npusim.timeline import covered, pipe_intervals

DEFAULT_BINS = 200


def time_edges(cycles: int, bins: int = DEFAULT_BINS) -> np.ndarray:
    """`bins` + 1 equally spaced cycle edges from 0 to `cycles` (fewer bins than cycles, at least one)."""
    count = max(1, min(bins, cycles))
    return np.linspace(0.0, float(max(1, cycles)), count + 1)


def busy_per_bin(result: Result, edges: np.ndarray) -> dict[str, dict[Pipe, np.ndarray]]:
    """Per core that ran a task (in `core_order`), per pipe it has: busy cycles inside each bin.

    Busy is what `Result.busy` counts: a pipe occupied by an instruction, not waiting on a flag or
    barrier; the scalar pipe S is left out as it is there.
    """
    by_core: dict[str, list] = {}
    for trace in result.traces:
        by_core.setdefault(trace.core, []).append(trace)
    pipes_of = result.pipes_by_core()
    out: dict[str, dict[Pipe, np.ndarray]] = {}
    for core in sorted(by_core, key=core_order):
        intervals = pipe_intervals(by_core[core])
        out[core] = {}
        for pipe in SHOWN_PIPES:
            if pipe in pipes_of[core]:
                starts, ends = (np.array(v, dtype=np.float64) for v in intervals[pipe][:2])
                out[core][pipe] = np.diff(covered(starts, ends, edges))
    return out


def core_heat(busy: dict[str, dict[Pipe, np.ndarray]], edges: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(cores, [core, bin] array): the mean over each core's pipes of their busy share of the bin."""
    cores = list(busy)
    width = np.diff(edges)
    rows = [np.mean([b for b in busy[c].values()], axis=0) / width for c in cores]
    return cores, np.array(rows).reshape(len(cores), len(width))


def pipe_shares(busy: dict[str, dict[Pipe, np.ndarray]], edges: np.ndarray) -> dict[Pipe, np.ndarray]:
    """Per pipe, its busy share of each bin across the cores that have it (as `Result.utilization`)."""
    width = np.diff(edges)
    out = {}
    for pipe in SHOWN_PIPES:
        rows = [pipes[pipe] for pipes in busy.values() if pipe in pipes]
        if rows:
            out[pipe] = np.sum(rows, axis=0) / (width * len(rows))
    return out


def hbm_per_bin(timeline: Sequence[tuple[int, float]], edges: np.ndarray) -> np.ndarray:
    """HBM bytes moved inside each bin, from the (cycle, bytes per cycle) steps of `hbm_timeline`."""
    if not timeline:
        return np.zeros(len(edges) - 1)
    at = np.array([c for c, _ in timeline], dtype=np.float64)
    rate = np.array([r for _, r in timeline], dtype=np.float64)
    # Bytes moved before each step: the integral of a step function, piecewise linear in between.
    moved = np.concatenate(([0.0], np.cumsum(rate[:-1] * np.diff(at))))
    k = np.clip(np.searchsorted(at, edges, side="right") - 1, 0, None)
    before = np.where(edges < at[0], 0.0, moved[k] + rate[k] * np.clip(edges - at[k], 0, None))
    return np.diff(before)
