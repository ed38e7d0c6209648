"""Why each instruction of a run waited, derived from its trace: issue stalls on full queues, the
set_flag that released a wait_flag, the completion a barrier waited for; and each pipe's cycles
split into working, waiting and starved (the tables of `npusim.stats` are made of these).

Every fact here follows from a `KernelTrace`'s cycles and the engine's rules (`npusim.engine`): the
engine records no reason, and needs none on its hot paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from isa.instructions import Barrier, Instruction, SetFlag, WaitFlag
from isa.types import Pipe
from npusim.results import PIPE_ORDER, KernelTrace, Result
from npusim.timeline import covered

WAITED_ON = ("", "flag", "barrier", "queue")  # what an instruction waited on, by code
NONE, FLAG, BARRIER, QUEUE = range(len(WAITED_ON))
CODE = {p: i for i, p in enumerate(PIPE_ORDER)}  # pipe codes: positions in PIPE_ORDER
_S = CODE[Pipe.S]


@dataclass(frozen=True, eq=False)
class KernelInfo:
    """One kernel's instructions as arrays by instruction index: pipe, kind, text and sync codes."""

    pipe: np.ndarray  # index into PIPE_ORDER
    kind: np.ndarray  # index into `Codes.kinds`: the instruction's (mnemonic, pipe)
    text: np.ndarray  # index into `Codes.texts`
    wait: np.ndarray  # wait_flag
    barrier: np.ndarray  # barrier on one pipe or ALL
    setter: np.ndarray  # set_flag

    def busy(self, trace: KernelTrace) -> np.ndarray:
        """Cycles each instruction held its pipe working (a wait or barrier holds it idle)."""
        return np.where(self.wait | self.barrier, 0, trace.busy_end - trace.start)


def _numbered(result: Result) -> tuple[list[Instruction], dict[int, np.ndarray]]:
    """The run's distinct instructions (by identity), and each kernel (by identity) as their numbers."""
    number: dict[int, int] = {}
    distinct: list[Instruction] = []
    kernels: dict[int, np.ndarray] = {}
    for trace in result.traces:
        if id(trace.kernel) in kernels:
            continue
        index = []
        for instr in trace.kernel.instructions:
            k = number.get(id(instr))
            if k is None:
                k = number[id(instr)] = len(distinct)
                distinct.append(instr)
            index.append(k)
        kernels[id(trace.kernel)] = np.array(index, dtype=np.int64)
    return distinct, kernels


class Codes:
    """A run's instructions as codes: each distinct one described once, each trace with its
    kernel's arrays (`traces`).

    Kernels share their instructions (builders pool them): a run of thousands of kernels and a
    hundred thousand instructions has a few ten thousand distinct ones.
    """

    def __init__(self, result: Result, texts: bool) -> None:
        distinct, kernels = _numbered(result)
        kind_code: dict[tuple[str, Pipe], int] = {}
        kind = np.array([kind_code.setdefault((i.mnemonic, i.pipe), len(kind_code)) for i in distinct],
                        dtype=np.int64)
        self.kinds = list(kind_code)  # (mnemonic, pipe) by kind code
        self.texts = [str(i) for i in distinct] if texts else [""] * len(distinct)  # by instruction number
        pipe = np.array([CODE[i.pipe] for i in distinct], dtype=np.int8)
        types = [type(i) for i in distinct]
        wait, barrier, setter = (np.array([t is c for t in types], dtype=bool)
                                 for c in (WaitFlag, Barrier, SetFlag))
        infos = {key: KernelInfo(pipe[r], kind[r], r, wait[r], barrier[r], setter[r])
                 for key, r in kernels.items()}
        self.traces = [(trace, infos[id(trace.kernel)]) for trace in result.traces]


def issue_stalls(trace: KernelTrace, info: KernelInfo, issue_cycles: int) -> tuple[np.ndarray, np.ndarray]:
    """Per instruction, the cycles its issue stalled on its pipe's full queue; and the cycle each
    issue would have come without stalls.

    The front-end issues each instruction `issue_cycles` after the previous one issued (after an S
    instruction: after it completed); any later issue is a stall on a full queue (`npusim.engine`).
    """
    after = np.where(info.pipe == _S, trace.busy_end, trace.issue)  # the front-end's clock
    natural = np.empty(len(trace), dtype=np.int64)
    natural[:1] = trace.first_cycle + issue_cycles
    natural[1:] = after[:-1] + issue_cycles
    return trace.issue - natural, natural


class Release(NamedTuple):
    """Per instruction of one trace: what it waited on (a WAITED_ON code), who released it, how long,
    and how long its issue stalled."""

    waited_on: np.ndarray
    released_by: np.ndarray
    wait_cycles: np.ndarray
    issue_stall: np.ndarray


def release(trace: KernelTrace, info: KernelInfo, issue_cycles: int, depth: int) -> Release:
    """What released each instruction, derived from its cycles and the engine's rules: a stalled
    issue ends when the oldest instruction in the full queue starts, `depth` places earlier in that
    pipe; a wait_flag's set_flag is recorded; a barrier waits for the latest completion before it."""
    n = len(trace)
    stall, _ = issue_stalls(trace, info, issue_cycles)
    waited_on = np.full(n, NONE, dtype=np.int8)
    released_by = np.full(n, -1, dtype=np.int64)
    wait_cycles = np.zeros(n, dtype=np.int64)
    stalled = np.flatnonzero(stall > 0)
    for code in np.unique(info.pipe[stalled]).tolist():
        order = np.flatnonzero(info.pipe == code)  # this pipe's instructions, in queue order
        mine = stalled[info.pipe[stalled] == code]
        released_by[mine] = order[np.searchsorted(order, mine) - depth]
    waited_on[stalled], wait_cycles[stalled] = QUEUE, stall[stalled]
    held = trace.end - trace.start
    waits = np.flatnonzero(info.wait)
    waited_on[waits], released_by[waits], wait_cycles[waits] = FLAG, trace.released_by[waits], held[waits]
    for i in np.flatnonzero(info.barrier & (held > 0)).tolist():
        waited_on[i], released_by[i], wait_cycles[i] = BARRIER, _barrier_release(trace, info, i), held[i]
    return Release(waited_on, released_by, wait_cycles, stall)


def _barrier_release(trace: KernelTrace, info: KernelInfo, i: int) -> int:
    """The latest earlier instruction whose completion barrier `i` waited for (-1 if none ends then).

    A barrier on P waits for every earlier P instruction but set_flag (whose firing is not P's
    work); barrier ALL for every earlier instruction on a pipe other than S, set_flag included.
    """
    pipe, own = info.pipe[:i], info.pipe[i]
    before = ~info.barrier[:i] & ((pipe != _S) if own == _S else (pipe == own) & ~info.setter[:i])
    last = np.flatnonzero(before & (trace.end[:i] == trace.end[i]))
    return int(last[-1]) if len(last) else -1


def pipe_states(trace: KernelTrace, info: KernelInfo, issue_cycles: int) -> np.ndarray:
    """[busy, flag_wait, barrier_wait, queue_stall] cycles of one trace, a row per pipe code, as
    the pipes table of `npusim.stats` defines them (these never overlap on one pipe; idle is the rest)."""
    out = np.zeros((len(PIPE_ORDER), 4), dtype=np.int64)
    held, codes = trace.end - trace.start, len(PIPE_ORDER)
    out[:, 0] = np.bincount(info.pipe, weights=info.busy(trace), minlength=codes)
    out[:, 1] = np.bincount(info.pipe[info.wait], weights=held[info.wait], minlength=codes)
    out[:, 2] = np.bincount(info.pipe[info.barrier], weights=held[info.barrier], minlength=codes)
    stall, natural = issue_stalls(trace, info, issue_cycles)
    stalled = stall > 0
    stall_from, stall_to = natural[stalled], trace.issue[stalled]  # the front-end's stalls, in order
    out[_S, 3] = stall[stalled].sum()
    if not len(stall_from):
        return out
    for code in np.unique(info.pipe).tolist():
        if code == _S:
            continue
        order = np.flatnonzero(info.pipe == code)
        # Between two of its instructions (or before its first) the pipe has nothing in hand.
        gap_from = np.concatenate(([trace.first_cycle], trace.busy_end[order[:-1]]))
        at = covered(stall_from, stall_to, np.concatenate((gap_from, trace.start[order])))
        out[code, 3] = (at[len(order):] - at[:len(order)]).sum()
    return out
