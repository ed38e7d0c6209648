"""Generated kernels: synchronised exactly as they need, no findings; any one sync removed, a finding.

The generator keeps its own account of what each pipe knows has completed, for the one shape of
hand-off it writes (a set_flag immediately followed by its wait_flag, or a barrier), and emits a
sync only where the next instruction needs one and, of the syncs it could emit, the fewest that do.
So every sync in a generated kernel orders something: removing it leaves the hazard it was emitted
for unordered, and the sanitizer must name that hazard's two instructions.
"""

from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from isa import (
    Barrier,
    DType,
    GmRegion,
    Kernel,
    Load,
    Pipe,
    ScalarOp,
    SetFlag,
    Space,
    Store,
    Tile,
    VecScalar,
    WaitFlag,
)
from isa.program import CoreKind, Program, Task, Tensor
from isa.sanitize import Kind, sanitize

SLOTS = 4
ROWS, COLS = 16, 64
PIPES = (Pipe.MTE2, Pipe.V, Pipe.MTE3)


def _slot(i: int) -> Tile:
    return Tile(Space.UB, i * ROWS * COLS * 4, DType.FP32, (ROWS, COLS))


class _Writer:
    """Emits instructions with the syncs they need; records, per sync, the hazards it orders."""

    def __init__(self) -> None:
        self.body: list = []
        self.seq = dict.fromkeys(PIPES, 0)  # instructions issued per pipe
        self.known = {q: dict.fromkeys(PIPES, 0) for q in PIPES}  # known[q][p]: p's completed prefix
        self.writer: dict[int, tuple[Pipe, int, int]] = {}  # slot -> (pipe, seq, body index)
        self.readers: dict[int, list[tuple[Pipe, int, int]]] = {}
        self.syncs: list[tuple[tuple[int, ...], list[tuple[int, int]]]] = []  # (body indices, hazards)
        self.events: dict[tuple[Pipe, Pipe], int] = {}

    def _hazards(self, pipe: Pipe, reads: list[int], writes: list[int]) -> list[tuple[Pipe, int, int]]:
        """(producer pipe, its seq, its body index) of each earlier access this one must follow."""
        out = [self.writer[s] for s in reads if s in self.writer]
        for s in writes:
            if s in self.writer:
                out.append(self.writer[s])
            out += [r for r in self.readers.get(s, []) if r[0] is not pipe]  # same-pipe WAR is ordered
        return out

    def _satisfied(self, known: dict[Pipe, dict[Pipe, int]], pipe: Pipe, hazards) -> bool:
        return all(known[pipe][p] > seq for p, seq, _ in hazards)

    def _apply(self, known, pipe: Pipe, source: Pipe) -> dict:
        """What `pipe` knows after a hand-off from `source` (a barrier when source is pipe)."""
        new = {q: dict(k) for q, k in known.items()}
        if source is pipe:
            new[pipe][pipe] = self.seq[pipe]
        else:
            carried = {**known[source], source: self.seq[source]}
            new[pipe] = {p: max(new[pipe][p], carried[p]) for p in PIPES}
        return new

    def emit(self, instr, pipe: Pipe, reads: list[int], writes: list[int]) -> None:
        hazards = self._hazards(pipe, reads, writes)
        sources = sorted({p for p, _, _ in hazards}, key=PIPES.index)
        chosen: tuple[Pipe, ...] = ()
        for size in range(len(sources) + 1):
            found = next((c for c in combinations(sources, size)
                          if self._satisfied(self._after(c, pipe), pipe, hazards)), None)
            if found is not None:
                chosen = found
                break
        emitted = []
        for source in chosen:
            rest = self._after([c for c in chosen if c is not source], pipe)
            alone = [i for p, seq, i in hazards if rest[pipe][p] <= seq]  # what this sync alone orders
            at = len(self.body)
            if source is pipe:
                self.body.append(Barrier(pipe))
            else:
                e = self.events.get((source, pipe), 0)
                self.events[(source, pipe)] = e + 1  # a fresh event each: no flag is set twice
                self.body += [SetFlag(source, pipe, e), WaitFlag(source, pipe, e)]
            emitted.append((tuple(range(at, len(self.body))), alone))
        self.known = self._after(chosen, pipe)
        index = len(self.body)
        self.body.append(instr)
        self.syncs += [(removed, [(i, index) for i in producers]) for removed, producers in emitted]
        me = (pipe, self.seq[pipe], index)
        self.seq[pipe] += 1
        for s in reads:
            self.readers.setdefault(s, []).append(me)
        for s in writes:
            self.writer[s], self.readers[s] = me, []

    def _after(self, sources, pipe: Pipe) -> dict:
        known = self.known
        for source in sources:
            known = self._apply(known, pipe, source)
        return known


OPS = st.one_of(
    st.tuples(st.just("load"), st.integers(0, SLOTS - 1)),
    st.tuples(st.just("vmuls"), st.integers(0, SLOTS - 1), st.integers(0, SLOTS - 1)),
    st.tuples(st.just("store"), st.integers(0, SLOTS - 1)),
)


def _kernel(ops) -> tuple[Program, _Writer]:
    w = _Writer()
    stores = 0
    for op in ops:
        if op[0] == "load":
            w.emit(Load(_slot(op[1]), GmRegion("x", 0, 0, ROWS, COLS, DType.FP32)), Pipe.MTE2, [], [op[1]])
        elif op[1] in w.writer and (op[0] == "store" or op[2] in w.writer):
            if op[0] == "vmuls":
                w.emit(VecScalar(ScalarOp.MULS, _slot(op[2]), _slot(op[1]), 2.0), Pipe.V, [op[1]], [op[2]])
            else:  # each store its own rows of y: no GM hazards, only UB ones
                w.emit(Store(GmRegion("y", stores * ROWS, 0, ROWS, COLS, DType.FP32), _slot(op[1])),
                       Pipe.MTE3, [op[1]], [])
                stores += 1
    tensors = (Tensor("x", DType.FP32, (ROWS, COLS)), Tensor("y", DType.FP32, (max(1, stores) * ROWS, COLS)))
    kernel = Kernel("k", tuple(w.body))
    return Program("p", tensors, (Task.of(kernel, kind=CoreKind.VECTOR),)), w


@settings(max_examples=150, deadline=None)
@given(st.lists(OPS, min_size=2, max_size=24))
def test_generated_kernels_are_clean_and_each_missing_sync_is_named(ops):
    program, w = _kernel(ops)
    assert sanitize(program) == []
    body = program.tasks[0].kernel.instructions
    for removed, covered in w.syncs:
        kept = [i for i in range(len(body)) if i not in removed]
        new_index = {old: new for new, old in enumerate(kept)}
        mutant = Program("p", program.tensors,
                         (Task.of(Kernel("k", tuple(body[i] for i in kept)), kind=CoreKind.VECTOR),))
        races = {(f.first.index, f.second.index) for f in sanitize(mutant) if f.kind is Kind.RACE}
        named = {(new_index[a], new_index[b]) for a, b in covered}
        assert races & named, (removed, covered, races)
