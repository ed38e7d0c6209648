"""What a simulation reports: cycles, per-pipe busy time and a compact record per instruction."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from isa.program import Kernel, Program
from isa.types import Pipe
from npusim.config import HardwareConfig


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
    """One kernel's run on one core. Arrays are indexed by instruction index; cycles are absolute."""

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


@dataclass(frozen=True, eq=False)
class Result:
    """The outcome of `simulate`: timing of every kernel run, and GM tensors when numerics ran."""

    program: Program
    config: HardwareConfig
    cycles: int
    traces: tuple[KernelTrace, ...]
    tensors: Mapping[str, np.ndarray] | None

    @property
    def seconds(self) -> float:
        return self.cycles / (self.config.clock_ghz * 1e9)

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
