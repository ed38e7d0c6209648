"""Dropping the flag hand-offs that order nothing from a straight-line kernel.

A double-buffered kernel is easiest to write with every buffer's "free" flag set once before the
first use (so the first wait passes) and waited once after the last (so no flag is left set). In a
straight-line kernel both ends order nothing: the first set fires before its pipe has done anything,
and the last wait holds back nothing on its pipe. `trim` drops such pairs, so that every sync left in
a shipped kernel orders something, which `isa.sanitize` can then hold each one to.
"""

from __future__ import annotations

from collections.abc import Sequence

from isa import Barrier, Instruction, Pipe, SetFlag, WaitFlag


def _blocks_issue(ins: Instruction) -> bool:
    """An instruction that stops the front-end, so everything issued after it knows what it waited for."""
    if isinstance(ins, WaitFlag):
        return ins.dst is Pipe.S
    return isinstance(ins, Barrier) and ins.target is None


class _Ends:
    """Where each pipe's instructions begin and end in a kernel, and where issue first blocks."""

    def __init__(self, body: Sequence[Instruction | None]):
        self.first: dict[Pipe, int] = {}
        self.last: dict[Pipe, int] = {}
        self.block = self.end = len(body)
        for i, ins in enumerate(body):
            if ins is None:
                continue
            self.first.setdefault(ins.pipe, i)
            self.last[ins.pipe] = self.end = i
            if _blocks_issue(ins) and self.block == len(body):
                self.block = i

    def idle_set(self, s: int, ins: Instruction) -> bool:
        """Set s fires knowing nothing: no instruction on its pipe, and nothing stopping issue, before."""
        return self.first[ins.pipe] == s and self.block > s

    def idle_wait(self, w: int, ins: Instruction) -> bool:
        """Wait w holds back nothing: no instruction after it on its pipe (or at all, on S)."""
        return (self.end if ins.pipe is Pipe.S else self.last[ins.pipe]) == w


def trim(instructions: Sequence[Instruction]) -> tuple[Instruction, ...]:
    """`instructions` without each flag's first set/wait pair if the set is idle, nor its last pair
    if the wait is; repeated until no pair is left to drop. The k-th wait of a flag takes its k-th
    set, so dropping a flag's first (or last) set together with its first (or last) wait leaves every
    other hand-off as it was."""
    body: list[Instruction | None] = list(instructions)
    changed = True
    while changed:
        changed = False
        ends = _Ends(body)
        sets: dict[tuple[Pipe, Pipe, int], list[int]] = {}
        waits: dict[tuple[Pipe, Pipe, int], list[int]] = {}
        for i, ins in enumerate(body):
            if isinstance(ins, SetFlag):
                sets.setdefault(ins.key, []).append(i)
            elif isinstance(ins, WaitFlag):
                waits.setdefault(ins.key, []).append(i)
        for key, setters in sets.items():
            takers = waits.get(key, [])
            if len(takers) != len(setters) or not setters:
                continue
            ends_of_key = [(setters[0], takers[0]), (setters[-1], takers[-1])][:min(2, len(setters))]
            for s, w in ends_of_key:
                set_, wait = body[s], body[w]
                if set_ is None or wait is None:
                    continue
                if ends.idle_set(s, set_) or ends.idle_wait(w, wait):
                    body[s] = body[w] = None
                    changed = True
    return tuple(ins for ins in body if ins is not None)
