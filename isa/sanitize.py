"""The sanitizer: every missing synchronisation a kernel's instruction list permits, whatever the timing.

Four checks over each kernel, from happens-before (`isa.order`) and the bytes each instruction reads
and writes:

- racecheck: two accesses to overlapping bytes of one on-chip buffer, or of one GM tensor, at least
  one a write, neither guaranteed to complete before the other starts. Same-pipe read after write
  is a race unless a `barrier` separates them (pipes do not interlock), except an accumulating
  `mmad` into the tile an earlier `mmad` wrote (the accumulate rule); same-pipe write after read is
  ordered (an instruction reads its sources when it starts, and the later one starts later).
- synccheck: a `set_flag` that no `wait_flag` of the kernel takes; instructions that can never
  start (waits that wait for each other).
- initcheck: a read of on-chip bytes that nothing earlier in the task wrote.
- memcheck: a GM access outside its tensor is a static check (`isa.check`); tasks that touch
  overlapping GM, one writing, are ordered by the program (`isa.deps`), so no two such tasks run
  unordered: the sanitizer has nothing to add between tasks.

A kernel is analysed once however many tasks run it; each finding names every task that runs it.
"""

from __future__ import annotations

import dataclasses
import enum
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from isa.deps import overlaps
from isa.instructions import Instruction, Mmad, SetFlag
from isa.order import Order, order
from isa.program import Kernel, Program
from isa.regions import GmRegion, Tile
from isa.types import Pipe, Space


class Kind(enum.Enum):
    RACE = "racecheck"
    SYNC = "synccheck"
    INIT = "initcheck"


@dataclass(frozen=True)
class Access:
    """One instruction of a kernel, as a finding names it."""

    index: int
    text: str
    pipe: Pipe

    def __str__(self) -> str:
        return f"#{self.index} `{self.text}` ({self.pipe.value})"


@dataclass(frozen=True)
class Finding:
    """One problem: its kind, where (kernel, tasks), the instructions, the bytes, and the fix in words.

    `first` precedes `second` in the kernel's abstract run; `second` is None for a finding about one
    instruction (an unmatched set, a read of bytes never written). `tasks` are every task running
    the kernel; `cores` the cores they ran on, when a run placed them (empty for a static check).
    """

    kind: Kind
    kernel: str
    what: str  # e.g. "read after write"
    first: Access
    second: Access | None
    where: str  # the bytes: "UB bytes 0x1000..0x2000", "GM:out[0:16, 0:128]"
    fix: str
    tasks: tuple[str, ...] = ()
    cores: tuple[str, ...] = field(default=(), compare=False)

    @property
    def task(self) -> str:
        return self.tasks[0] if self.tasks else self.kernel

    @property
    def core(self) -> str | None:
        return self.cores[0] if self.cores else None

    def __str__(self) -> str:
        where = f"kernel {self.kernel}"
        if len(self.tasks) > 1:
            where += f", {len(self.tasks)} tasks ({self.tasks[0]}, ...)"
        elif self.tasks and self.tasks[0] != self.kernel:
            where += f", task {self.tasks[0]}"
        if self.cores:
            where += f" on {self.cores[0]}" + (" ..." if len(set(self.cores)) > 1 else "")
        pair = f"{self.first}" + (f" and {self.second}" if self.second else "")
        return f"{self.kind.value}: {self.what}; {self.where}; {where}\n    {pair}\n    fix: {self.fix}"


def _text(ins: Instruction) -> str:
    return " ".join(str(ins).split())


def _access(instrs: Sequence[Instruction], i: int) -> Access:
    ins = instrs[i]
    return Access(i, _text(ins), ins.pipe)


def _fix(instrs: Sequence[Instruction], a: int, b: int) -> str:
    pa, pb = instrs[a].pipe, instrs[b].pipe
    if pa is pb:
        return f"add `barrier {pa.value}` between #{a} and #{b}"
    return (f"add `set_flag {pa.value} {pb.value} e` after #{a} and `wait_flag {pa.value} {pb.value} e` "
            f"before #{b} (a free event e)")


class _Checker:
    """Findings of one kernel, from its happens-before and the bytes its instructions touch."""

    def __init__(self, kernel: Kernel):
        self.kernel = kernel
        self.instrs = kernel.instructions
        self.order: Order = order(self.instrs)
        self.found: dict[tuple[Kind, int, int], Finding] = {}

    def ordered(self, a: int, b: int, hazard: str) -> bool:
        """Whether a (earlier in the abstract run) and b, touching the same bytes, cannot race."""
        if self.order.before(a, b):
            return True
        ia, ib = self.instrs[a], self.instrs[b]
        if ia.pipe is not ib.pipe:
            return False
        if hazard == "write after read":
            return True  # b starts after a started, and a read its sources when it started
        # the accumulate rule: an accumulating mmad adds into the tile the earlier mmad wrote, in order
        return (isinstance(ia, Mmad) and isinstance(ib, Mmad) and ib.accumulate and ia.dst == ib.dst)

    def report(self, kind: Kind, what: str, a: int, b: int | None, where: str, fix: str) -> None:
        key = (kind, a, -1 if b is None else b)
        if key not in self.found:
            second = None if b is None else _access(self.instrs, b)
            first = _access(self.instrs, a)
            self.found[key] = Finding(kind, self.kernel.name, what, first, second, where, fix)

    def run(self) -> list[Finding]:
        self._sync()
        _OnChip(self).run()
        _Gm(self).run()
        # in the order of the instruction that finds each: the earliest harm first
        return sorted(self.found.values(), key=lambda f: ((f.second or f.first).index, f.first.index))

    def _sync(self) -> None:
        for s in self.order.unmatched:
            ins = self.instrs[s]
            assert isinstance(ins, SetFlag)
            self.report(Kind.SYNC, "flag set and never waited on", s, None, f"flag ({ins.src.value}, "
                        f"{ins.dst.value}, {ins.event})",
                        f"add `wait_flag {ins.src.value} {ins.dst.value} {ins.event}` where the "
                        f"{ins.dst.value} pipe needs what #{s} signals, or remove #{s}")
        for s, w in self.order.early_sets():
            ins = self.instrs[s]
            assert isinstance(ins, SetFlag)
            self.report(Kind.SYNC, "flag set again before its previous set is taken", w, s,
                        f"flag ({ins.src.value}, {ins.dst.value}, {ins.event})",
                        f"{_fix(self.instrs, w, s)}, or use another event for #{s} (a run raises SyncError "
                        f"when the set comes first)")
        stuck = self.order.stuck
        if stuck:
            self.report(Kind.SYNC, f"{len(stuck)} instruction(s) can never start (waits wait for each other)",
                        stuck[0], None, "the kernel's flags", "move each set_flag out from behind the "
                        "wait_flag its pipe is blocked on (a run's DeadlockError names the blocked pipes)")


_NEVER, _REPORTED = -1, -2  # a segment's writer before any write: unreported, reported by initcheck


class _Segments:
    """Byte ranges of one buffer, each with its last writer and the readers since: a shadow memory."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.starts = [0, 1 << 62]  # the last start is a sentinel past every buffer's end
        # (last writer, or _NEVER / _REPORTED, and the readers since)
        self.state: list[tuple[int, list[int]]] = [(_NEVER, []), (_NEVER, [])]

    def _split(self, at: int) -> int:
        k = bisect_right(self.starts, at) - 1
        if self.starts[k] != at:
            writer, readers = self.state[k]
            self.starts.insert(k + 1, at)
            self.state.insert(k + 1, (writer, list(readers)))
            k += 1
        return k

    def span(self, start: int, end: int) -> range:
        """Indices of the segments exactly covering [start, end), split as needed."""
        first = self._split(start)
        last = self._split(end)
        return range(first, last)

    def bounds(self, k: int) -> tuple[int, int]:
        return self.starts[k], self.starts[k + 1]


class _OnChip:
    """racecheck and initcheck over the on-chip buffers, in the abstract run's order."""

    def __init__(self, checker: _Checker):
        self.c = checker
        self.buffers: dict[Space, _Segments] = {}

    def run(self) -> None:
        instrs = self.c.instrs
        for i in self.c.order.started:
            ins = instrs[i]
            for region in ins.reads:
                if isinstance(region, Tile):
                    self._read(i, region)
            for region in ins.writes:
                if isinstance(region, Tile):
                    self._write(i, region)

    def _segments(self, tile: Tile) -> _Segments:
        seg = self.buffers.get(tile.space)
        if seg is None:
            seg = self.buffers[tile.space] = _Segments(tile.space)
        return seg

    @staticmethod
    def _where(seg: _Segments, k: int) -> str:
        lo, hi = seg.bounds(k)
        return f"{seg.space.value} bytes 0x{lo:04x}..0x{hi:04x}"

    def _read(self, i: int, tile: Tile) -> None:
        seg = self._segments(tile)
        c = self.c
        for k in seg.span(tile.offset, tile.end):
            writer, readers = seg.state[k]
            if writer == _NEVER:
                c.report(Kind.INIT, "read of bytes nothing in the task wrote", i, None, self._where(seg, k),
                         f"write them (a load, a vdup) before #{i}, ordered before it")
                seg.state[k] = (_REPORTED, readers)  # later readers of these bytes add nothing
            elif writer >= 0 and writer != i and not c.ordered(writer, i, "read after write"):
                c.report(Kind.RACE, "read after write", writer, i, self._where(seg, k),
                         _fix(c.instrs, writer, i))
            if not readers or readers[-1] != i:
                readers.append(i)

    def _write(self, i: int, tile: Tile) -> None:
        seg = self._segments(tile)
        c = self.c
        for k in seg.span(tile.offset, tile.end):
            writer, readers = seg.state[k]
            if writer >= 0 and writer != i and not c.ordered(writer, i, "write after write"):
                c.report(Kind.RACE, "write after write", writer, i, self._where(seg, k),
                         _fix(c.instrs, writer, i))
            for r in readers:
                if r != i and not c.ordered(r, i, "write after read"):
                    c.report(Kind.RACE, "write after read", r, i, self._where(seg, k), _fix(c.instrs, r, i))
            seg.state[k] = (i, [])


class _Gm:
    """racecheck over GM within the task: pairs of accesses to tensors the kernel writes."""

    def __init__(self, checker: _Checker):
        self.c = checker

    def run(self) -> None:
        c = self.c
        position = {i: at for at, i in enumerate(c.order.started)}
        written = {r.tensor for ins in c.instrs for r in ins.writes if isinstance(r, GmRegion)}
        by_tensor: dict[str, list[tuple[int, int, GmRegion, bool]]] = {}
        for i, ins in enumerate(c.instrs):
            if i not in position:
                continue
            for regions, write in ((ins.reads, False), (ins.writes, True)):
                for r in regions:
                    if isinstance(r, GmRegion) and r.tensor in written:
                        by_tensor.setdefault(r.tensor, []).append((r.row, position[i], r, write))
        for accesses in by_tensor.values():
            self._sweep(sorted(accesses, key=lambda a: (a[0], a[1])))

    def _sweep(self, accesses: list[tuple[int, int, GmRegion, bool]]) -> None:
        """Compare each access with the earlier-starting ones whose rows reach it."""
        started = self.c.order.started
        active: list[tuple[int, int, GmRegion, bool]] = []
        for acc in accesses:
            active = [a for a in active if a[2].last_row >= acc[0]]
            for other in active:
                if (acc[3] or other[3]) and overlaps(acc[2], other[2]):
                    first, second = sorted((other, acc), key=lambda a: a[1])
                    self._check(started[first[1]], started[second[1]], first, second)
            active.append(acc)

    def _check(self, a: int, b: int, first: tuple, second: tuple) -> None:
        if a == b:
            return
        what = {(False, True): "write after read", (True, False): "read after write",
                (True, True): "write after write"}[(first[3], second[3])]
        if not self.c.ordered(a, b, what):
            region: GmRegion = second[2]
            step = f":{region.row_step}" if region.row_step > 1 else ""
            rows = f"{region.row}:{region.last_row + 1}{step}"
            where = f"GM:{region.tensor}[{rows}, {region.col}:{region.col + region.cols}]"
            self.c.report(Kind.RACE, what, a, b, where, _fix(self.c.instrs, a, b))


def sanitize_kernel(kernel: Kernel) -> list[Finding]:
    """Every finding of one kernel, in the order of its first instruction."""
    return _Checker(kernel).run()


def sanitize(program: Program, cores: Iterable[str] | None = None) -> list[Finding]:
    """Every finding of a program: each distinct kernel analysed once, naming the tasks that run it.

    `cores`, if given, is the core of each task in program order (from a run), named in findings.
    """
    core_of = list(cores) if cores is not None else None
    tasks_of: dict[int, list[int]] = {}
    kernels: dict[int, Kernel] = {}
    for t, task in enumerate(program.tasks):
        tasks_of.setdefault(id(task.kernel), []).append(t)
        kernels[id(task.kernel)] = task.kernel
    findings: list[Finding] = []
    for key, kernel in kernels.items():
        indices = tasks_of[key]
        names = tuple(program.tasks[t].name for t in indices)
        placed = tuple(core_of[t] for t in indices) if core_of is not None else ()
        for f in sanitize_kernel(kernel):
            findings.append(dataclasses.replace(f, tasks=names, cores=placed))
    return findings

