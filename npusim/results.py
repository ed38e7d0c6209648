"""What a simulation reports: cycles, per-pipe busy time and a compact record per instruction."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from isa.program import Kernel, Program
from isa.sanitize import Finding
from isa.types import Pipe
from npusim.config import HardwareConfig

if TYPE_CHECKING:
    import pandas as pd

# Every view lists pipes in this one order: data-flow order, the scalar front-end first.
PIPE_ORDER = (Pipe.S, Pipe.MTE2, Pipe.MTE1, Pipe.M, Pipe.FIX, Pipe.V, Pipe.MTE3)
# The pipes tables and bar charts show (S runs only sync and barriers).
SHOWN_PIPES = PIPE_ORDER[1:]


def core_order(name: str) -> tuple[str, int]:
    """Sort key for core names: aic2 before aic10."""
    m = re.match(r"(\D*)(\d*)$", name)
    return (m.group(1), int(m.group(2) or 0)) if m else (name, 0)


class Record(NamedTuple):
    """When one instruction ran: issued, started, freed its pipe (busy_end) and completed (end)."""

    index: int
    pipe: Pipe
    text: str
    issue: int
    start: int
    busy_end: int
    end: int
    bytes: int
    flops: int


@dataclass(frozen=True, eq=False)
class KernelTrace:
    """One task's run on one core. Arrays are indexed by instruction index; cycles are absolute.

    `dispatched` is when the scheduler gave the task its core; its first instruction issues after
    the dispatch overhead, at `first_cycle`; its last result lands at `last_cycle`.
    """

    task: str
    core: str
    kernel: Kernel
    issue: np.ndarray
    start: np.ndarray
    busy_end: np.ndarray
    end: np.ndarray
    bytes: np.ndarray
    flops: np.ndarray
    released_by: np.ndarray  # for a wait_flag, the index of the set_flag that released it; else -1
    busy: Mapping[Pipe, int]  # cycles each pipe was occupied
    dispatched: int
    first_cycle: int
    last_cycle: int

    def __len__(self) -> int:
        return len(self.kernel.instructions)

    def record(self, i: int) -> Record:
        instr = self.kernel.instructions[i]
        return Record(i, instr.pipe, str(instr), int(self.issue[i]), int(self.start[i]),
                      int(self.busy_end[i]), int(self.end[i]), int(self.bytes[i]), int(self.flops[i]))

    def records(self) -> Iterator[Record]:
        return (self.record(i) for i in range(len(self)))

    @property
    def record_nbytes(self) -> int:
        """Bytes the records of this trace hold (the instructions themselves belong to the program)."""
        arrays = (self.issue, self.start, self.busy_end, self.end, self.bytes, self.flops, self.released_by)
        return sum(a.nbytes for a in arrays)


@dataclass(frozen=True)
class MemoryStats:
    """GM traffic of a run: what HBM and L2 served, and the HBM bandwidth over time."""

    hbm_read_bytes: float
    hbm_write_bytes: float
    l2_hit_bytes: float
    read_bytes: float
    hbm_timeline: tuple[tuple[int, float], ...]  # (cycle, bytes per cycle) at each change
    clock_ghz: float
    l2_write_bytes: float = 0.0  # writes L2 took (write-back): they reach HBM only if evicted
    writeback_bytes: float = 0.0  # dirty lines evicted to HBM during the run (part of hbm_write_bytes)
    l2_dirty_bytes: float = 0.0  # written bytes still only in L2 when the run ended

    @property
    def l2_hit_rate(self) -> float:
        return self.l2_hit_bytes / self.read_bytes if self.read_bytes else 0.0

    @property
    def hbm_bytes(self) -> float:
        return self.hbm_read_bytes + self.hbm_write_bytes

    def average_gbps(self, cycles: int) -> float:
        """HBM bandwidth averaged over a run of `cycles` cycles, in GB/s."""
        return self.hbm_bytes / cycles * self.clock_ghz if cycles else 0.0

    @property
    def peak_gbps(self) -> float:
        return max((rate for _, rate in self.hbm_timeline), default=0.0) * self.clock_ghz


@dataclass(frozen=True, eq=False)
class Result:
    """The outcome of `simulate`: timing of every task, GM traffic, and GM tensors when numerics ran.

    `traces` are in program order of the tasks.
    """

    program: Program
    config: HardwareConfig
    cycles: int
    traces: tuple[KernelTrace, ...]
    tensors: Mapping[str, np.ndarray] | None
    memory: MemoryStats
    # `simulate(..., sanitize=True)`: the sanitizer's findings (empty when clean); None when not asked
    sanitizer: tuple[Finding, ...] | None = None

    @property
    def seconds(self) -> float:
        return self.cycles / (self.config.clock_ghz * 1e9)

    @property
    def launch_cycles(self) -> int:
        """The kernel launch before the first task (`chip.launch_cycles`): not in `cycles` or the traces."""
        return self.config.chip.launch_cycles

    @property
    def end_to_end_seconds(self) -> float:
        """The run with its launch, as a profiler's task time on the chip counts it."""
        return (self.cycles + self.launch_cycles) / (self.config.clock_ghz * 1e9)

    @property
    def busy(self) -> dict[Pipe, int]:
        """Occupied cycles per pipe, summed over every kernel run."""
        total = dict.fromkeys(Pipe, 0)
        for trace in self.traces:
            for pipe, cycles in trace.busy.items():
                total[pipe] += cycles
        return total

    @property
    def instructions(self) -> int:
        return sum(len(t) for t in self.traces)

    def to_frame(self, texts: bool = True) -> pd.DataFrame:
        """Every executed instruction as a pandas DataFrame, one row each: the instructions table of
        `npusim.stats` (its docstring defines the columns). `texts=False` leaves the `text` column
        empty, sparing the printing of every instruction on large runs."""
        from npusim import stats  # stats reads this module; pandas loads only when asked for

        return stats.instructions_frame(self, texts)

    def by_core(self) -> dict[str, tuple[int, dict[Pipe, int]]]:
        """Per core that ran anything: (tasks it ran, occupied cycles per pipe), by core name."""
        out: dict[str, tuple[int, dict[Pipe, int]]] = {}
        for trace in self.traces:
            tasks, busy = out.get(trace.core, (0, dict.fromkeys(Pipe, 0)))
            for pipe, cycles in trace.busy.items():
                busy[pipe] += cycles
            out[trace.core] = (tasks + 1, busy)
        return out

    def pipes_by_core(self) -> dict[str, frozenset[Pipe]]:
        """The pipes of every core that ran a task (a vector core has no M), by core name."""
        kinds = {t.kind for t in self.program.tasks}
        pipes_of = {kind: self.config.core_limits(kind).pipes for kind in kinds}
        out: dict[str, frozenset[Pipe]] = {}
        for task, trace in zip(self.program.tasks, self.traces, strict=True):
            out[trace.core] = out.get(trace.core, frozenset()) | pipes_of[task.kind]
        return out

    def utilization(self) -> dict[Pipe, float]:
        """Busy fraction of each pipe over the run, across the cores that have it and ran a task.

        A pipe's capacity is `cycles` on every such core: on a split chip M counts the cube cores
        that ran tasks, V the vector cores, MTE2 both.
        """
        core_pipes = self.pipes_by_core()
        busy = self.busy
        out = {}
        for pipe in PIPE_ORDER:
            cores = sum(pipe in pipes for pipes in core_pipes.values())
            out[pipe] = busy[pipe] / (self.cycles * cores) if cores and self.cycles else 0.0
        return out
