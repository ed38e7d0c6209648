"""Chrome Trace Event export, for the Perfetto UI (ui.perfetto.dev) and chrome://tracing.

A process per core, a thread per pipe (plus one for the core's tasks), one complete event per
instruction over the cycles it holds its pipe, with its text, cycles and bytes (`cycles` from start
to completion, as the text timeline's table; `pipe_cycles` the slice's own length), flow arrows
from each `set_flag` to the `wait_flag` it released, finishing where it released it, and counter
tracks: HBM bandwidth (a "memory" process) and each core's queue occupancy per pipe. Times are
microseconds at the preset's clock; cycles are in every event's args. A run with the sanitizer's
findings marks each one: an instant event on the pipe of its later instruction.
`sync="hide"` leaves out the set_flag, wait_flag and barrier slices and their arrows, so that the
pipelines' work stands alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from isa.instructions import Barrier, SetFlag, WaitFlag
from isa.types import Pipe
from npusim import sanitizer, timeline
from npusim.paths import written_whole
from npusim.results import PIPE_ORDER, KernelTrace, Result, core_order

SYNC_MODES = ("show", "hide")
PIPE_NAMES = {
    Pipe.S: "S (scalar, front-end)", Pipe.MTE2: "MTE2 (GM -> L1/UB)", Pipe.MTE1: "MTE1 (L1 -> L0A/L0B)",
    Pipe.M: "M (cube)", Pipe.FIX: "FIX (L0C -> GM/UB)", Pipe.V: "V (vector)", Pipe.MTE3: "MTE3 (UB -> GM)",
}
TASKS_TID = 0
_TID = {p: i + 1 for i, p in enumerate(PIPE_ORDER)}
_SYNC = (SetFlag, WaitFlag, Barrier)


class _Clock:
    """Cycles to trace time: microseconds on a binary grid of 2**-20 us (about 1 ps).

    Every time is a multiple of the grid, so a slice's ts + dur is exactly the ts of whatever starts
    where it ends, in any reader that parses JSON numbers as doubles, and a reader that converts
    to integer nanoseconds (ts * 1000, as Perfetto does) gets exact products too: slices that touch
    in cycles touch in the trace, never overlap by a rounding. Cycles are exact in every event's args.
    """

    GRID = 2 ** 20

    def __init__(self, ghz: float) -> None:
        self.per_grid = ghz * 1000.0 / self.GRID  # cycles per grid step

    def us(self, cycle: float) -> float:
        return round(cycle / self.per_grid) / self.GRID

    def span(self, first: float, last: float) -> tuple[float, float]:
        """(ts, dur) of a slice from cycle `first` to `last`: dur is end - ts on the grid, exactly."""
        ts = self.us(first)
        return ts, self.us(last) - ts


def _meta(name: str, pid: int, tid: int | None, args: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {"ph": "M", "name": name, "pid": pid, "args": args}
    if tid is not None:
        event["tid"] = tid
    return event


def events(result: Result, sync: str = "show", label: str | None = None,
           pid_base: int = 0) -> list[dict[str, Any]]:
    """Every trace event of one run; `label` prefixes its process names, `pid_base` offsets its pids."""
    if sync not in SYNC_MODES:
        raise ValueError(f"trace sync mode {sync!r}; valid: {', '.join(SYNC_MODES)}")
    clock = _Clock(result.config.clock_ghz)
    prefix = f"{label}: " if label else ""
    on_core: dict[str, list[KernelTrace]] = {}
    for trace in result.traces:
        on_core.setdefault(trace.core, []).append(trace)
    cores = sorted(on_core, key=core_order)
    pid_of = {core: pid_base + i + 1 for i, core in enumerate(cores)}
    out: list[dict[str, Any]] = []
    memory_pid = pid_base
    out.append(_meta("process_name", memory_pid, None, {"name": f"{prefix}memory system"}))
    out.append(_meta("process_sort_index", memory_pid, None, {"sort_index": memory_pid}))
    for core, pid in pid_of.items():
        out.append(_meta("process_name", pid, None, {"name": f"{prefix}{core}"}))
        out.append(_meta("process_sort_index", pid, None, {"sort_index": pid}))
        out.append(_meta("thread_name", pid, TASKS_TID, {"name": "tasks"}))
        out.append(_meta("thread_sort_index", pid, TASKS_TID, {"sort_index": TASKS_TID}))
        used = {i.pipe for t in on_core[core] for i in t.kernel.instructions}
        for pipe in PIPE_ORDER:
            if pipe in used:
                out.append(_meta("thread_name", pid, _TID[pipe], {"name": PIPE_NAMES[pipe]}))
                out.append(_meta("thread_sort_index", pid, _TID[pipe], {"sort_index": _TID[pipe]}))
    flow_id = pid_base * 10_000_000
    # Each core's tasks in the order they ran, so that the file is in time order on every thread.
    for trace in sorted(result.traces, key=lambda t: (pid_of[t.core], t.dispatched)):
        pid = pid_of[trace.core]
        ts, dur = clock.span(trace.dispatched, trace.last_cycle)
        out.append({"ph": "X", "name": trace.task, "cat": "task", "pid": pid, "tid": TASKS_TID,
                    "ts": ts, "dur": dur, "args": {"kernel": trace.kernel.name, "instructions": len(trace),
                             "dispatched_cycle": trace.dispatched, "first_issue_cycle": trace.first_cycle,
                             "done_cycle": trace.last_cycle, "cycles": trace.last_cycle - trace.dispatched}})
        flow_id = _instruction_events(out, trace, pid, clock, sync == "show", flow_id)
    out += sanitizer.trace_marks(result, pid_of, lambda pipe: _TID[pipe], clock.us)
    out += _hbm_counter(result, memory_pid, clock)
    for core, pid in pid_of.items():
        out += _queue_counter(on_core[core], pid, clock)
    return out


def _instruction_events(out: list[dict[str, Any]], trace: KernelTrace, pid: int, clock: _Clock, sync: bool,
                        flow_id: int) -> int:
    """A slice per instruction, from its start to when it frees its pipe, and an arrow per released wait.

    An arrow starts at its set_flag (a slice of no width: the set frees its pipe at once) and
    finishes at the end of the wait_flag it released, the cycle the set became visible there, so it
    never runs backwards in time. Each end is written right after the slice it belongs to: readers
    bind a flow event to the slice open on its thread (`bp: "e"` for the finish), taking events in
    time order and, at equal times, in file order, so no other slice starting at that instant (the
    instruction after the set, or the one the wait let run) can come between them.
    """
    issue, nbytes, released = trace.issue.tolist(), trace.bytes.tolist(), trace.released_by.tolist()
    start, freed, end = timeline.spans(trace)
    setters = [r for r in released if r >= 0] if sync else []
    arrows = {setter: flow_id + k + 1 for k, setter in enumerate(setters)}  # set_flag index -> flow id
    texts: dict[int, str] = {}
    for i, instr in enumerate(trace.kernel.instructions):
        is_sync = isinstance(instr, _SYNC)
        if is_sync and not sync:
            continue
        text = texts.get(id(instr))
        if text is None:
            text = texts[id(instr)] = str(instr)
        held = freed[i] - start[i]
        args: dict[str, Any] = {"index": i, "text": text, "task": trace.task, "issue_cycle": issue[i],
                                "start_cycle": start[i], "end_cycle": end[i], "cycles": end[i] - start[i],
                                "pipe_cycles": held}
        if nbytes[i]:
            args["bytes"] = nbytes[i]
            if held > 0:
                args["bytes_per_cycle"] = round(nbytes[i] / held, 3)
        tid = _TID[instr.pipe]
        ts, dur = clock.span(start[i], freed[i])
        out.append({"ph": "X", "name": instr.mnemonic, "cat": "sync" if is_sync else instr.pipe.value,
                    "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args})
        if i in arrows:
            out.append({"ph": "s", "name": "flag", "cat": "flag", "id": arrows[i], "pid": pid, "tid": tid,
                        "ts": ts})
        if sync and released[i] >= 0:
            out.append({"ph": "f", "bp": "e", "name": "flag", "cat": "flag", "id": arrows[released[i]],
                        "pid": pid, "tid": tid, "ts": ts + dur})
    return flow_id + len(arrows)


def _hbm_counter(result: Result, pid: int, clock: _Clock) -> list[dict[str, Any]]:
    ghz = result.config.clock_ghz
    return [{"ph": "C", "name": "HBM GB/s", "pid": pid, "tid": 0, "ts": clock.us(cycle),
             "args": {"GB/s": round(rate * ghz, 3)}} for cycle, rate in result.memory.hbm_timeline]


def _queue_counter(traces: Sequence[KernelTrace], pid: int, clock: _Clock) -> list[dict[str, Any]]:
    """Instructions issued to each pipe's queue and not yet started, at every change."""
    changes: dict[Pipe, list[tuple[np.ndarray, np.ndarray]]] = {}
    for trace in traces:
        pipes = np.array([_TID[i.pipe] for i in trace.kernel.instructions])
        for pipe in PIPE_ORDER[1:]:
            mask = pipes == _TID[pipe]
            if mask.any():
                changes.setdefault(pipe, []).append((trace.issue[mask], trace.start[mask]))
    if not changes:
        return []
    times = np.unique(np.concatenate([np.concatenate(pair) for parts in changes.values() for pair in parts]))
    depth = {}
    for pipe, parts in changes.items():
        issued = np.sort(np.concatenate([p[0] for p in parts]))
        started = np.sort(np.concatenate([p[1] for p in parts]))
        depth[pipe.value] = (np.searchsorted(issued, times, side="right")
                             - np.searchsorted(started, times, side="right")).tolist()
    return [{"ph": "C", "name": "queued instructions", "pid": pid, "tid": 0, "ts": clock.us(t),
             "args": {name: values[k] for name, values in depth.items()}}
            for k, t in enumerate(times.tolist())]


def document(runs: Sequence[tuple[str | None, Result]], sync: str = "show") -> dict[str, Any]:
    """The whole trace file: one or more labelled runs (each in its own block of processes)."""
    all_events: list[dict[str, Any]] = []
    for k, (label, result) in enumerate(runs):
        all_events += events(result, sync, label, pid_base=k * 1000)
    first = runs[0][1]
    summary = [{"label": label, "program": r.program.name, "cycles": r.cycles} for label, r in runs]
    return {"traceEvents": all_events, "displayTimeUnit": "ns",
            "otherData": {"generator": "npusim", "preset": first.config.name,
                          "clock_ghz": first.config.clock_ghz, "runs": summary}}


def write(path: str | Path, runs: Sequence[tuple[str | None, Result]], sync: str = "show") -> int:
    """Write the trace of `runs` to `path` as JSON (whole, or not at all); returns the number of events."""
    doc = document(runs, sync)
    with written_whole(path) as f:
        for chunk in json.JSONEncoder(separators=(",", ":")).iterencode(doc):
            f.write(chunk)
    return len(doc["traceEvents"])
