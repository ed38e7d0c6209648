"""Happens-before within a kernel: which instruction is guaranteed to complete before another starts.

The ISA's ordering rules (docs/isa.md §3.14) are properties of the instruction list, not of timing:

- each pipe starts its instructions in program order (an instruction may start before the previous
  one of its pipe has completed: same-pipe instructions do not wait for each other's results);
- `set_flag P Q e` fires once every earlier P instruction has completed; the k-th `wait_flag P Q e`
  in program order takes the k-th set of that flag (all waits of a flag are on one pipe, Q, and a
  flag is never set twice before it is taken), and later Q instructions start after it fires;
- `barrier P`: later P instructions start after every earlier P instruction completed;
- `barrier ALL`, and a `wait_flag` on S, stop the front-end: nothing later in program order is
  issued until every pipe drained (or the flag fired). `set_flag S Q e` fires when it is issued.

What is known to have completed is always a prefix of each pipe's instructions (a set, a barrier and
barrier ALL each cover every earlier instruction of a pipe), so the knowledge at an instruction's
start is one count per pipe: a vector clock. `order(kernel)` computes it by running the kernel
abstractly, with no timing: the front-end and the pipes advance whenever the rules let them, lowest
program index first. The order in which instructions start in that run is a linearisation of
happens-before that follows program order wherever the rules allow.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from isa.instructions import Barrier, Instruction, SetFlag, WaitFlag
from isa.types import Pipe

PIPES = tuple(Pipe)
_INDEX = {p: i for i, p in enumerate(PIPES)}
_S = _INDEX[Pipe.S]
_NONE = (0,) * len(PIPES)


def _join(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return a if a == b else tuple(map(max, a, b))


def _complete(known: tuple[int, ...], pipe: int, count: int) -> tuple[int, ...]:
    """`known`, plus: the first `count` instructions of `pipe` have completed."""
    if known[pipe] >= count:
        return known
    return known[:pipe] + (count,) + known[pipe + 1:]


Sets = tuple[tuple[int, ...], ...]  # instruction indices of each flag's sets, in program order


@dataclass(frozen=True)
class Order:
    """Happens-before over one kernel's instructions (indices into `kernel.instructions`).

    `seq[i]` is i's position among its pipe's instructions; `known[i]` counts, per pipe (in
    `PIPES` order), the instructions of that pipe guaranteed complete when i starts (None if i never
    starts: the kernel deadlocks before it). `started` lists the instructions in the order the
    abstract run started them. `match[w]` is the set a wait takes; `unmatched` lists sets no wait
    takes, in program order; `fired[s]` is what is known complete when set s fires.
    """

    pipes: tuple[int, ...]
    seq: tuple[int, ...]
    known: tuple[tuple[int, ...] | None, ...]
    started: tuple[int, ...]
    match: dict[int, int]
    unmatched: tuple[int, ...]
    fired: dict[int, tuple[int, ...]]
    sets: Sets  # each flag's sets, in program order

    def before(self, a: int, b: int) -> bool:
        """Whether instruction a is guaranteed to complete before instruction b starts."""
        known = self.known[b]
        return known is not None and self.known[a] is not None and known[self.pipes[a]] > self.seq[a]

    def early_sets(self) -> list[tuple[int, int]]:
        """(set, wait) pairs where the set may fire before the wait has taken the flag's previous set.

        The ISA forbids setting a flag whose last set no wait has taken (a run raises SyncError), so
        the k-th wait of a flag must complete before its (k+1)-th set fires.
        """
        taken_by = {s: w for w, s in self.match.items()}
        out = []
        for sets in self.sets:
            for previous, s in pairwise(sets):
                w, fired = taken_by.get(previous), self.fired.get(s)
                if w is None or fired is None:  # a set never taken, or one that never fires: other findings
                    continue
                if self.known[w] is None or fired[self.pipes[w]] <= self.seq[w]:
                    out.append((s, w))
        return out

    @property
    def stuck(self) -> tuple[int, ...]:
        """Instructions that never start: the kernel cannot finish (a deadlock)."""
        return tuple(i for i, k in enumerate(self.known) if k is None)


def _match(instrs: Sequence[Instruction]) -> tuple[dict[int, int], tuple[int, ...], Sets]:
    """The k-th wait of each flag takes its k-th set; the sets left over, in program order; each
    flag's sets."""
    sets: dict[tuple[Pipe, Pipe, int], list[int]] = {}
    waits: dict[tuple[Pipe, Pipe, int], list[int]] = {}
    for i, ins in enumerate(instrs):
        if isinstance(ins, SetFlag):
            sets.setdefault(ins.key, []).append(i)
        elif isinstance(ins, WaitFlag):
            waits.setdefault(ins.key, []).append(i)
    match = {}
    unmatched: list[int] = []
    for key, setters in sets.items():
        takers = waits.get(key, [])
        match.update(zip(takers, setters, strict=False))  # surplus waits: a static check error
        unmatched += setters[len(takers):]
    return match, tuple(sorted(unmatched)), tuple(tuple(v) for v in sets.values())


def _pipe(ins: Instruction) -> int:
    if isinstance(ins, Barrier) and ins.target is None:
        return _S
    return _INDEX[ins.pipe]


class _Run:
    """The abstract run: a front-end issuing in program order into one queue per pipe."""

    def __init__(self, instrs: Sequence[Instruction]):
        self.instrs = instrs
        self.pipes = tuple(_pipe(i) for i in instrs)
        self.match, self.unmatched, self.sets = _match(instrs)
        n = len(instrs)
        self.seq = [0] * n
        self.known: list[tuple[int, ...] | None] = [None] * n
        self.issued_with: list[tuple[int, ...]] = [_NONE] * n
        self.fired: dict[int, tuple[int, ...]] = {}  # set -> what is known complete when it fires
        self.queues: list[deque[int]] = [deque() for _ in PIPES]
        self.pipe_known = [_NONE] * len(PIPES)
        self.issued = [0] * len(PIPES)
        self.front, self.front_known = 0, _NONE
        self.started: list[int] = []

    def run(self) -> Order:
        while True:
            head = self._next()
            if head is None:
                break
            self._front() if head == len(PIPES) else self._pipe(head)
        return Order(self.pipes, tuple(self.seq), tuple(self.known), tuple(self.started), self.match,
                     self.unmatched, self.fired, self.sets)

    def _next(self) -> int | None:
        """The pipe (or len(PIPES): the front-end) whose next instruction can start, lowest index first."""
        best, best_at = None, len(self.instrs)
        for p, queue in enumerate(self.queues):
            if queue and queue[0] < best_at and self._ready(queue[0]):
                best, best_at = p, queue[0]
        if self.front < best_at and self._front_ready():
            best = len(PIPES)
        return best

    def _ready(self, i: int) -> bool:
        return not isinstance(self.instrs[i], WaitFlag) or self.match.get(i, -1) in self.fired

    def _front_ready(self) -> bool:
        if self.front >= len(self.instrs):
            return False
        i = self.front
        if self.pipes[i] != _S:
            return True
        ins = self.instrs[i]
        if isinstance(ins, Barrier) and ins.target is None:
            return not any(self.queues)
        return self._ready(i)

    def _front(self) -> None:
        i = self.front
        self.front += 1
        p = self.pipes[i]
        if p != _S:  # issue into the pipe's queue
            self.seq[i] = self.issued[p]
            self.issued[p] += 1
            self.issued_with[i] = self.front_known
            self.queues[p].append(i)
            return
        ins = self.instrs[i]
        known = self.front_known
        if isinstance(ins, WaitFlag):
            known = _join(known, self.fired[self.match[i]])
        elif isinstance(ins, Barrier) and ins.target is None:
            for q in range(len(PIPES)):
                known = _complete(_join(known, self.pipe_known[q]), q, self.issued[q])
        elif isinstance(ins, SetFlag):
            self.fired[i] = known
        self.front_known = self.known[i] = known
        self.started.append(i)

    def _pipe(self, p: int) -> None:
        i = self.queues[p].popleft()
        ins = self.instrs[i]
        known = _join(self.pipe_known[p], self.issued_with[i])
        if isinstance(ins, WaitFlag):
            known = _join(known, self.fired[self.match[i]])
        elif isinstance(ins, SetFlag):
            self.fired[i] = _complete(known, p, self.seq[i])
        elif isinstance(ins, Barrier):
            known = _complete(known, p, self.seq[i])
        self.pipe_known[p] = self.known[i] = known
        self.started.append(i)


def order(instructions: Sequence[Instruction]) -> Order:
    """Happens-before over a kernel's instructions, from the ISA's ordering rules alone."""
    return _Run(instructions).run()
