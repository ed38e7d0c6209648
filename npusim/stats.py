"""Where a run's time went, as tables: every instruction, every instruction kind, every core's pipes.

Three tables, written by `write` as CSV files (msKPP's Instruction_statistic.csv and
Pipe_statistic.csv are the model) and returned as pandas DataFrames by `instructions_frame`,
`kinds_frame` and `pipes_frame` (`Result.to_frame()` is the first). All times are cycles.

instructions.csv, one row per executed instruction, tasks in program order, each in kernel order:
    core, task, pipe, index (in its kernel), mnemonic;
    issue: the front-end put it in its pipe's queue (S instructions run on the front-end itself);
    issue_stall: cycles its issue waited for a slot in its pipe's full queue (0: issued at the
        front-end's rate, `frontend.issue_cycles` after the instruction before it issued, or after
        it completed if that one ran on S);
    start: its pipe took it; busy_end: its pipe was free again; end: it completed (its result landed);
    busy: cycles it held its pipe working, busy_end - start, 0 for set_flag, wait_flag and barrier
        (their holding time is wait_cycles), so the busy column sums to `Result.busy` per pipe;
    bytes, flops: what it moved and computed (`npusim.costs`);
    waited_on, released_by, wait_cycles: what it waited for and which instruction of the same
        kernel (by index) ended the wait, taken in this order:
        - "flag", for every wait_flag: released_by is the set_flag whose set it consumed,
          wait_cycles = end - start (0 when the flag was visible when its pipe reached it);
        - "barrier", for a barrier that held its pipe (end > start): released_by is the earlier
          instruction whose completion it waited for (on its pipe; on every pipe but S for
          barrier ALL), wait_cycles = end - start;
        - "queue", for any other instruction whose issue stalled (issue_stall > 0): released_by is
          the instruction of its pipe, `frontend.queue_depth` places earlier, whose start freed
          the slot (so issue = its start), wait_cycles = issue_stall;
        - "" (released_by -1, wait_cycles 0): it waited on nothing but its pipe's order;
    text: the instruction in assembly.

kinds.csv, one row per (mnemonic, pipe), most busy cycles first: count, busy (cycles summed), mean
(busy per instruction), share (of the pipe's busy cycles over the run, 0..1), bytes, flops.

pipes.csv, one row per core that ran a task and pipe it has (S is the front-end): in each, the
run's `cycles` split into states that never overlap, so that for every row
    busy + flag_wait + barrier_wait + queue_stall + idle == cycles
    busy: working (as `busy` above); flag_wait: held by its own wait_flag (on S, the front-end
    stopped at one); barrier_wait: held by its own barrier (on S, a barrier ALL);
    queue_stall: nothing in hand while the front-end stalled on a full queue and its next
    instruction had not issued (on S: every cycle the front-end stalled);
    idle: the rest: no task on the core, the dispatch overhead, the front-end issuing at its rate
    or held at an S wait_flag or barrier ALL, or the pipe done with its task.

pandas is imported only by the functions that return or write frames: the text summary's
`top_kinds` needs numpy alone, and `npusim --help` loads neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from isa.types import Pipe
from npusim import waits
from npusim.paths import OutputPathError, output_directory
from npusim.results import PIPE_ORDER, KernelTrace, Result, core_order

if TYPE_CHECKING:
    import pandas as pd

FILES = ("instructions.csv", "kinds.csv", "pipes.csv")
INSTRUCTION_COLUMNS = ("core", "task", "pipe", "index", "mnemonic", "issue", "issue_stall", "start",
                       "busy_end", "end", "busy", "bytes", "flops", "waited_on", "released_by", "wait_cycles",
                       "text")
KIND_COLUMNS = ("mnemonic", "pipe", "count", "busy", "mean", "share", "bytes", "flops")
PIPE_COLUMNS = ("core", "pipe", "cycles", "busy", "flag_wait", "barrier_wait", "queue_stall", "idle")
_PIPE_NAMES = np.array([p.value for p in PIPE_ORDER], dtype=object)
_WAITED_ON = np.array(waits.WAITED_ON, dtype=object)


class StatsError(OutputPathError):
    """A --stats directory that cannot take the tables: named before the run, not after it."""


def _columns(trace: KernelTrace, info: waits.KernelInfo, rel: waits.Release) -> dict[str, np.ndarray]:
    """The instructions table's columns for one trace; mnemonic and text as codes (`waits.Codes`)."""
    n = len(trace)
    return {
        "core": np.full(n, trace.core, dtype=object), "task": np.full(n, trace.task, dtype=object),
        "pipe": _PIPE_NAMES[info.pipe], "index": np.arange(n, dtype=np.int64), "mnemonic": info.kind,
        "issue": trace.issue, "issue_stall": rel.issue_stall, "start": trace.start,
        "busy_end": trace.busy_end, "end": trace.end, "busy": info.busy(trace),
        "bytes": trace.bytes, "flops": trace.flops, "waited_on": _WAITED_ON[rel.waited_on],
        "released_by": rel.released_by, "wait_cycles": rel.wait_cycles, "text": info.text,
    }


def instructions(result: Result, texts: bool = True) -> dict[str, np.ndarray]:
    """The instructions table as numpy columns (strings in object arrays), in INSTRUCTION_COLUMNS order."""
    front, codes = result.config.frontend, waits.Codes(result, texts)
    parts: dict[str, list[np.ndarray]] = {c: [] for c in INSTRUCTION_COLUMNS}
    for trace, info in codes.traces:
        columns = _columns(trace, info, waits.release(trace, info, front.issue_cycles, front.queue_depth))
        for name, values in columns.items():
            parts[name].append(values)
    out = {c: np.concatenate(v) if v else np.empty(0, dtype=np.int64) for c, v in parts.items()}
    out["mnemonic"] = np.array([m for m, _ in codes.kinds] + [""], dtype=object)[out["mnemonic"]]
    out["text"] = np.array(codes.texts + [""], dtype=object)[out["text"]]
    return out


@dataclass(frozen=True)
class KindStats:
    """One row of the kinds table."""

    mnemonic: str
    pipe: Pipe
    count: int
    busy: int
    bytes: int
    flops: int
    share: float  # of the pipe's busy cycles over the run

    @property
    def mean(self) -> float:
        return self.busy / self.count if self.count else 0.0


def kinds(result: Result) -> list[KindStats]:
    """Per (mnemonic, pipe): instructions, busy cycles, bytes and flops, most busy cycles first
    (then in pipe order and by mnemonic, so that equal rows keep one order)."""
    codes = waits.Codes(result, texts=False)
    parts: list[list[np.ndarray]] = [[], [], [], []]
    for trace, info in codes.traces:
        for part, values in zip(parts, (info.kind, info.busy(trace), trace.bytes, trace.flops), strict=True):
            part.append(values)
    if not parts[0]:
        return []
    kind = np.concatenate(parts[0])
    count = np.bincount(kind, minlength=len(codes.kinds))
    sums = [np.bincount(kind, weights=np.concatenate(p), minlength=len(codes.kinds)) for p in parts[1:]]
    total = result.busy
    rows = []
    for k, (mnemonic, pipe) in enumerate(codes.kinds):
        busy, nbytes, flops = (int(round(s[k])) for s in sums)
        share = busy / total[pipe] if total[pipe] else 0.0
        rows.append(KindStats(mnemonic, pipe, int(count[k]), busy, nbytes, flops, share))
    return sorted(rows, key=lambda k: (-k.busy, waits.CODE[k.pipe], k.mnemonic))


def top_kinds(result: Result, n: int = 5) -> list[KindStats]:
    """The `n` instruction kinds that kept their pipes busy longest (those with no busy cycles left out)."""
    return [k for k in kinds(result) if k.busy][:n]


class PipeTime(NamedTuple):
    """One row of the pipes table: a core's pipe over the run's cycles (see the module docstring)."""

    core: str
    pipe: Pipe
    cycles: int
    busy: int
    flag_wait: int
    barrier_wait: int
    queue_stall: int
    idle: int


def pipes(result: Result) -> list[PipeTime]:
    """Per core that ran a task (in core order) and pipe it has (in PIPE_ORDER): where its cycles went."""
    front = result.config.frontend
    per_core: dict[str, np.ndarray] = {}
    for trace, info in waits.Codes(result, texts=False).traces:
        states = waits.pipe_states(trace, info, front.issue_cycles)
        if trace.core in per_core:
            per_core[trace.core] += states
        else:
            per_core[trace.core] = states
    has = result.pipes_by_core()
    rows = []
    for core in sorted(per_core, key=core_order):
        for code, pipe in enumerate(PIPE_ORDER):
            if pipe in has[core]:
                busy, flag, barrier, stall = (int(v) for v in per_core[core][code])
                idle = result.cycles - busy - flag - barrier - stall
                rows.append(PipeTime(core, pipe, result.cycles, busy, flag, barrier, stall, idle))
    return rows


def instructions_frame(result: Result, texts: bool = True) -> pd.DataFrame:
    """The instructions table as a DataFrame (INSTRUCTION_COLUMNS); `texts=False` leaves `text` empty."""
    import pandas as pd

    return pd.DataFrame(instructions(result, texts), columns=list(INSTRUCTION_COLUMNS))


def kinds_frame(result: Result) -> pd.DataFrame:
    """The kinds table as a DataFrame (columns KIND_COLUMNS)."""
    import pandas as pd

    rows = [(k.mnemonic, k.pipe.value, k.count, k.busy, k.mean, k.share, k.bytes, k.flops)
            for k in kinds(result)]
    return pd.DataFrame(rows, columns=list(KIND_COLUMNS))


def pipes_frame(result: Result) -> pd.DataFrame:
    """The pipes table as a DataFrame (columns PIPE_COLUMNS)."""
    import pandas as pd

    return pd.DataFrame([(r.core, r.pipe.value, *r[2:]) for r in pipes(result)], columns=list(PIPE_COLUMNS))


def check_directory(path: str | Path) -> Path:
    """Refuse a directory the tables cannot be written to, before a run: a file in its place, a file
    in the way of its folders, a table's name taken by a folder, or no permission to write there.

    Returns the path. It makes nothing: `write` makes the directory (and its parents).
    """
    path = output_directory(path, "--stats", ", ".join(FILES), StatsError)
    for name in FILES:
        if (path / name).is_dir():
            raise StatsError(f"--stats {path}: {path / name} is a directory; the table needs that name")
    return path


def write(result: Result, directory: str | Path) -> list[Path]:
    """Write instructions.csv, kinds.csv and pipes.csv into `directory` (made if missing); their paths.

    Call `check_directory` before the run to refuse a bad directory early.
    """
    folder = check_directory(directory)
    folder.mkdir(parents=True, exist_ok=True)
    frames = (instructions_frame(result), kinds_frame(result), pipes_frame(result))
    paths = [folder / name for name in FILES]
    for frame, path in zip(frames, paths, strict=True):
        frame.to_csv(path, index=False)
    return paths

