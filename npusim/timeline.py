"""Text timelines: per core, one lane per pipe over time, then the table of its instructions.

Each lane character covers an equal slice of the window: `#` the pipe was busy for at least half
of it, `+` for less, `w` it was blocked on a `wait_flag` or `barrier` for at least half, `.` idle.
Colour only repeats what the characters say, so the output reads the same without it.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Sequence
from typing import NamedTuple, TextIO

import numpy as np

from isa.instructions import Barrier, WaitFlag
from isa.types import Pipe
from npusim.results import PIPE_ORDER, SHOWN_PIPES, KernelTrace, Result, core_order

LANE_PIPES = PIPE_ORDER
LEGEND = "# busy   + partly busy   w waiting on a flag or barrier   . idle"
_COLORS = {"#": "\033[32m", "+": "\033[2;32m", "w": "\033[33m", ".": "\033[2m"}
_RESET = "\033[0m"


class TimelineError(ValueError):
    """A --core or --task that names nothing in the run."""


def use_color(mode: str, stream: TextIO = sys.stdout) -> bool:
    """--color auto|always|never; auto means a terminal and no NO_COLOR in the environment."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    return stream.isatty() and not os.environ.get("NO_COLOR")


def covered(starts: np.ndarray, ends: np.ndarray, at: np.ndarray) -> np.ndarray:
    """How much of the sorted, disjoint intervals [starts, ends) lies before each point of `at`.

    In the arrays' own number type: exact cycles for integer arrays (the stats tables), fractions
    for float ones (the timeline's columns, the plots' bins).
    """
    lengths = ends - starts
    if not len(starts):
        return np.zeros(len(at), dtype=np.result_type(lengths, at))
    whole = np.concatenate((np.zeros(1, dtype=lengths.dtype), np.cumsum(lengths)))
    k = np.searchsorted(ends, at, side="right")  # intervals wholly before each point
    part = np.clip(at - starts[np.minimum(k, len(starts) - 1)], 0, None)
    return whole[k] + np.where(k < len(starts), part, 0)


class Spans(NamedTuple):
    """When each instruction of one task held its pipe and completed, by instruction index.

    `start`: it took its pipe; `freed`: its pipe is free again, the record's `busy_end` (a wait_flag
    or barrier holds it until it ends, a set_flag frees it at once); `end`: it completed (its result
    written, its flag visible to the waiting pipe). Every view reads these: an instruction's `cycles`
    is end - start (the timeline's table, the trace's args), and its lane or slice covers start to
    freed.
    """

    start: list[int]
    freed: list[int]
    end: list[int]


def spans(trace: KernelTrace) -> Spans:
    """The start, freed and end cycle of every instruction of `trace`."""
    return Spans(trace.start.tolist(), trace.busy_end.tolist(), trace.end.tolist())


_BLOCKING = (WaitFlag, Barrier)  # hold their pipe until they end
_Lists = tuple[list[int], list[int], list[int], list[int]]


def pipe_intervals(traces: Sequence[KernelTrace]) -> dict[Pipe, _Lists]:
    """Per pipe: busy starts and ends, waiting (wait_flag, barrier) starts and ends, in time order."""
    out: dict[Pipe, _Lists] = {p: ([], [], [], []) for p in Pipe}
    for trace in sorted(traces, key=lambda t: t.first_cycle):
        start, freed, _ = spans(trace)
        for i, instr in enumerate(trace.kernel.instructions):
            if freed[i] <= start[i]:  # a set_flag, or a wait or barrier that did not block
                continue
            bs, be, ws, we = out[instr.pipe]
            if type(instr) in _BLOCKING:
                ws.append(start[i])
                we.append(freed[i])
            else:
                bs.append(start[i])
                be.append(freed[i])
    return out


def lanes(traces: Sequence[KernelTrace], t0: int, t1: int, width: int, color: bool) -> list[str]:
    """One line per pipe that did anything in [t0, t1), `width` characters of time."""
    span = max(1, t1 - t0)
    edges = t0 + span * np.arange(width + 1, dtype=np.float64) / width
    column = span / width
    lines = []
    intervals = pipe_intervals(traces)
    for pipe in LANE_PIPES:
        bs, be, ws, we = intervals[pipe]
        if not (bs or ws):
            continue
        busy = np.diff(covered(np.array(bs, float), np.array(be, float), edges)) / column
        wait = np.diff(covered(np.array(ws, float), np.array(we, float), edges)) / column
        chars = np.where(busy >= 0.5, "#", np.where(wait >= 0.5, "w", np.where(
            busy > 0, "+", np.where(wait > 0, "w", "."))))
        text = "".join(chars.tolist())
        if color:
            text = re.sub(r"(#+|\++|w+|\.+)", lambda m: _COLORS[m.group()[0]] + m.group() + _RESET, text)
        lines.append(f"{pipe.value:<5}|{text}|")
    return lines


def _axis(t0: int, t1: int, width: int, clock_ghz: float) -> str:
    left = f"{t0} cy ({t0 / clock_ghz / 1000:.2f} us)"
    right = f"{t1} cy ({t1 / clock_ghz / 1000:.2f} us)"
    gap = max(1, width + 2 - len(left) - len(right))
    return f"{'':5}{left}{' ' * gap}{right}"


def instruction_table(trace: KernelTrace) -> list[str]:
    """Index, pipe, issue, start, end, cycles, bytes and text of every instruction of one task."""
    lines = [f"{'#':>6} {'pipe':<5} {'issue':>9} {'start':>9} {'end':>9} {'cycles':>7} {'bytes':>8}  "
             "instruction"]
    released = trace.released_by.tolist()
    start, _, end = spans(trace)
    for i in range(len(trace)):
        r = trace.record(i)
        note = f"   <- set by #{released[i]}" if released[i] >= 0 else ""
        lines.append(f"{i:>6} {r.pipe.value:<5} {r.issue:>9} {start[i]:>9} {end[i]:>9} "
                     f"{end[i] - start[i]:>7} {r.bytes:>8}  {r.text}{note}")
    return lines


def chip_summary(result: Result) -> list[str]:
    """Per core that ran anything: tasks, and busy % of the run for each pipe it has."""
    per_core = result.by_core()
    head = f"{'core':<8} {'tasks':>6}" + "".join(f" {p.value + ' %':>7}" for p in SHOWN_PIPES)
    lines = [head]
    has = result.pipes_by_core()
    for core in sorted(per_core, key=core_order):
        tasks, busy = per_core[core]
        cells = "".join(f" {100 * busy[p] / max(1, result.cycles):>7.1f}" if p in has[core] else f" {'-':>7}"
                        for p in SHOWN_PIPES)
        lines.append(f"{core:<8} {tasks:>6}{cells}")
    return lines


def _pick_task(result: Result, name: str) -> KernelTrace:
    for trace in result.traces:
        if trace.task == name:
            return trace
    names = [t.task for t in result.traces]
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    shown = ", ".join(names[:6]) + (f", ... ({len(names)} tasks)" if len(names) > 6 else "")
    raise TimelineError(f"--task {name!r}: no such task in this run{hint} Tasks: {shown}")


def _pick_core(result: Result, name: str) -> str:
    cores = sorted({t.core for t in result.traces}, key=core_order)
    if name in cores:
        return name
    raise TimelineError(f"--core {name!r}: no task ran on such a core; cores that ran tasks: "
                        f"{', '.join(cores[:12])}{' ...' if len(cores) > 12 else ''}")


def render(result: Result, width: int = 100, color: bool = False, core: str | None = None,
           task: str | None = None) -> str:
    """The timeline text: a chip summary for many tasks, lanes and instructions for one core or task."""
    lane_width = max(20, width - 7)
    clock = result.config.clock_ghz
    out: list[str] = []
    if task is not None:
        trace = _pick_task(result, task)
        t0, t1 = trace.dispatched, trace.last_cycle
        out += [f"task {trace.task} on {trace.core}: dispatched at cycle {t0}, first issue "
                f"{trace.first_cycle}, done at {t1} ({t1 - t0} cycles)", LEGEND]
        out += lanes([trace], t0, t1, lane_width, color) + [_axis(t0, t1, lane_width, clock), ""]
        return "\n".join(out + instruction_table(trace))
    if core is not None or len(result.traces) == 1:
        name = _pick_core(result, core) if core is not None else result.traces[0].core
        traces = [t for t in result.traces if t.core == name]
        out += [f"core {name}: {len(traces)} task(s) over the run's {result.cycles} cycles", LEGEND]
        out += lanes(traces, 0, result.cycles, lane_width, color)
        out += [_axis(0, result.cycles, lane_width, clock), ""]
        if len(traces) == 1:
            return "\n".join(out + instruction_table(traces[0]))
        out.append(f"{'task':<24} {'dispatched':>10} {'first':>9} {'done':>9} {'cycles':>7} {'instrs':>6}")
        for t in sorted(traces, key=lambda t: t.dispatched):
            out.append(f"{t.task:<24} {t.dispatched:>10} {t.first_cycle:>9} {t.last_cycle:>9} "
                       f"{t.last_cycle - t.dispatched:>7} {len(t):>6}")
        return "\n".join(out)
    out.append(f"chip: {len(result.traces)} tasks on {len(result.by_core())} cores, {result.cycles} cycles; "
               f"busy % of the run per pipe ('-': the core has no such pipe)")
    out += chip_summary(result)
    first = result.traces[0]
    out.append(f"zoom in with --core {first.core} (its pipes over the run) or --task {first.task}")
    return "\n".join(out)
