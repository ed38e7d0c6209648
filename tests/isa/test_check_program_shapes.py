"""`check_program` clears kernels by shape; it must raise exactly what checking every task in full raises.

Programs here look like the paged-attention ones: many tasks of a few kernel shapes, equal on-chip
instructions pooled as one object, GM accesses that differ per task in where their region starts.
Random faults go into some tasks (a GM region out of bounds or of the wrong kind, a misaligned or
oversized tile, a missing flag, a task no core runs), and the outcome is compared with the plain
path: `problems` on each task in order, with nothing shared between kernels.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

import pytest

from isa import (
    BinaryOp,
    CoreLimits,
    DType,
    Fixpipe,
    GmRegion,
    Instruction,
    Kernel,
    Load,
    Mmad,
    Move,
    Pipe,
    Program,
    ReduceOp,
    RowReduce,
    SetFlag,
    Space,
    Store,
    Task,
    Tensor,
    Tile,
    VecBinary,
    WaitFlag,
)
from isa.check import check_program, problems
from isa.cores import CoreKind
from isa.errors import CheckError

BF16, FP32 = DType.BF16, DType.FP32
TENSORS = (
    Tensor("q", BF16, (8, 16, 64)),  # matrix [128, 64]
    Tensor("kv", BF16, (16, 16, 2, 64)),  # matrix [512, 64]; row_step 2 picks one KV head
    Tensor("out", FP32, (128, 64)),
)
ROWS = {"q": 128, "kv": 512, "out": 128}
CUBE = CoreLimits({Space.L1: 65536, Space.L0A: 16384, Space.L0B: 16384, Space.L0C: 32768},
                  {Space.L1: 32, Space.L0A: 512, Space.L0B: 512, Space.L0C: 64}, num_events=4,
                  pipes=CoreKind.CUBE.pipes, name="AIC")
VECTOR = CoreLimits({Space.UB: 65536}, {Space.UB: 32}, num_events=4, pipes=CoreKind.VECTOR.pipes, name="AIV")

NO_CORE = "<no core runs this kind>"
Fault = Callable[[random.Random, list[Instruction]], None]


def tile(space: Space, offset: int, dtype: DType, rows: int, cols: int) -> Tile:
    return Tile(space, offset, dtype, (rows, cols))


def cube_kernel(r: random.Random, pool: dict[Instruction, Instruction]) -> list[Instruction]:
    """q @ k^T for a random q tile and KV block, pooled on-chip instructions, per-task GM regions."""
    q_row, kv_row, head = r.randrange(0, 128, 16), r.randrange(0, 512 - 32, 32), r.randrange(2)
    a, b = tile(Space.L1, 0, BF16, 16, 64), tile(Space.L1, 2048, BF16, 64, 16)
    c = tile(Space.L0C, 0, FP32, 16, 16)
    shared = [SetFlag(Pipe.MTE2, Pipe.MTE1, 0), WaitFlag(Pipe.MTE2, Pipe.MTE1, 0),
              Move(tile(Space.L0A, 0, BF16, 16, 64), a),
              Move(tile(Space.L0B, 0, BF16, 16, 64), b, transpose=True),
              SetFlag(Pipe.MTE1, Pipe.M, 0), WaitFlag(Pipe.MTE1, Pipe.M, 0),
              Mmad(c, tile(Space.L0A, 0, BF16, 16, 64), tile(Space.L0B, 0, BF16, 64, 16)),
              SetFlag(Pipe.M, Pipe.FIX, 1), WaitFlag(Pipe.M, Pipe.FIX, 1)]
    return [Load(a, GmRegion("q", q_row, 0, 16, 64, BF16)),
            Load(b, GmRegion("kv", kv_row + head, 0, 16, 64, BF16, 2), transpose=True),
            *(pool.setdefault(i, i) for i in shared),
            Fixpipe(GmRegion("out", q_row, r.randrange(0, 64, 16), 16, 16, FP32), c)]


def vector_kernel(r: random.Random, pool: dict[Instruction, Instruction]) -> list[Instruction]:
    """A row max over a random out tile, stored back: the other kind of core, its own shape."""
    row, x, m = r.randrange(0, 128, 8), tile(Space.UB, 0, FP32, 8, 64), tile(Space.UB, 4096, FP32, 8, 1)
    shared = [SetFlag(Pipe.MTE2, Pipe.V, 0), WaitFlag(Pipe.MTE2, Pipe.V, 0), RowReduce(ReduceOp.MAX, m, x),
              VecBinary(BinaryOp.ADD, x, x, x), SetFlag(Pipe.V, Pipe.MTE3, 0), WaitFlag(Pipe.V, Pipe.MTE3, 0)]
    return [Load(x, GmRegion("out", row, 0, 8, 64, FP32)), *(pool.setdefault(i, i) for i in shared),
            Store(GmRegion("out", row, 0, 8, 64, FP32), x)]


def _gm_index(r: random.Random, instrs: list[Instruction]) -> tuple[int, str, GmRegion]:
    at = r.choice([j for j, i in enumerate(instrs) if isinstance(i, Load | Store | Fixpipe)
                   and isinstance(getattr(i, "src" if isinstance(i, Load) else "dst"), GmRegion)])
    name = "src" if isinstance(instrs[at], Load) else "dst"
    return at, name, getattr(instrs[at], name)


def _move_gm(**change: Callable[[GmRegion], object]) -> Fault:
    def fault(r: random.Random, instrs: list[Instruction]) -> None:
        at, name, gm = _gm_index(r, instrs)
        region = GmRegion(**{f: getattr(gm, f) for f in ("tensor", "row", "col", "rows", "cols", "dtype",
                                                         "row_step")} | {k: f(gm) for k, f in change.items()})
        instrs[at] = type(instrs[at])(**{f: getattr(instrs[at], f) for f in instrs[at].__match_args__}
                                      | {name: region})  # type: ignore[attr-defined]
    return fault


def _drop_set(r: random.Random, instrs: list[Instruction]) -> None:
    del instrs[r.choice([j for j, i in enumerate(instrs) if isinstance(i, SetFlag)])]


def _new_object(r: random.Random, instrs: list[Instruction]) -> None:
    """An equal copy of a pooled instruction: clean, but not the object the shape was learnt with."""
    at = r.choice([j for j, i in enumerate(instrs) if not isinstance(i, Load | Store | Fixpipe)])
    instrs[at] = type(instrs[at])(*(getattr(instrs[at], f) for f in instrs[at].__match_args__))  # type: ignore


def _misalign(r: random.Random, instrs: list[Instruction]) -> None:
    at = r.choice([j for j, i in enumerate(instrs) if isinstance(i, Move | RowReduce)])
    i = instrs[at]
    dst = Tile(i.dst.space, i.dst.offset + 32 * r.randrange(1, 4) + r.choice((0, 2)), i.dst.dtype,  # type: ignore
               i.dst.shape)  # type: ignore[attr-defined]
    instrs[at] = type(i)(**{f: getattr(i, f) for f in i.__match_args__} | {"dst": dst})  # type: ignore


def _swap_gm_and_onchip(r: random.Random, instrs: list[Instruction]) -> None:
    """A GM access and an on-chip instruction trade places: the same count of each, another shape."""
    gm_at, _, _ = _gm_index(r, instrs)
    other = r.choice([j for j, i in enumerate(instrs) if not isinstance(i, Load | Store | Fixpipe)])
    instrs[gm_at], instrs[other] = instrs[other], instrs[gm_at]


def _onchip_for_gm(r: random.Random, instrs: list[Instruction]) -> None:
    """A new on-chip object where the shape has a GM access: the shape's key again, but not its kinds."""
    gm_at, _, _ = _gm_index(r, instrs)
    other = r.choice([i for i in instrs if isinstance(i, Move | RowReduce | SetFlag)])
    instrs[gm_at] = type(other)(*(getattr(other, f) for f in other.__match_args__))  # type: ignore[attr-defined]


FAULTS: tuple[Fault, ...] = (
    _move_gm(row=lambda g: ROWS[g.tensor] - g.row_step * (g.rows - 1)),  # the last row one past the end
    _move_gm(row=lambda g: ROWS[g.tensor] - g.row_step * (g.rows - 1) - 1),  # the last row exactly: clean
    _move_gm(row=lambda g: -g.row_step),
    _move_gm(col=lambda g: 64 - g.cols + 1),
    _move_gm(col=lambda g: 64 - g.cols),  # the last column exactly: clean
    _move_gm(col=lambda g: -1),
    _move_gm(row_step=lambda g: 0),
    _move_gm(rows=lambda g: 0),
    _move_gm(rows=lambda g: g.rows * 64),  # more rows than the tensor has wherever it starts
    _move_gm(tensor=lambda g: "nope"),
    _move_gm(dtype=lambda g: FP32 if g.dtype is BF16 else BF16),
    _move_gm(tensor=lambda g: "kv" if g.tensor == "q" else g.tensor),  # another tensor, in bounds: clean
    _drop_set, _new_object, _misalign, _swap_gm_and_onchip, _onchip_for_gm,
)


def random_program(seed: int) -> Program:
    r = random.Random(seed)
    pool: dict[Instruction, Instruction] = {}
    tasks = []
    for n in range(r.randrange(1, 40)):
        kind = r.choice((CoreKind.CUBE, CoreKind.VECTOR))
        instrs = (cube_kernel if kind is CoreKind.CUBE else vector_kernel)(r, pool)
        if r.random() < 0.08:
            r.choice(FAULTS)(r, instrs)
        if r.random() < 0.05:  # the same GM object in two tasks
            instrs[0] = tasks[-1].kernel.instructions[0] if tasks and tasks[-1].kind is kind else instrs[0]
        tasks.append(Task(f"t{n}", Kernel(f"k{n}_{kind.value}", tuple(instrs)), kind))
    return Program(f"p{seed}", TENSORS, tuple(tasks))


def plain_check(program: Program, limits: CoreLimits | Mapping[CoreKind, CoreLimits]) -> None:
    """What check_program states, done the plain way: each task in order, checked in full, alone."""
    for task in program.tasks:
        if isinstance(limits, CoreLimits):
            core = limits
        elif task.kind in limits:
            core = limits[task.kind]
        else:
            raise CheckError(task.name, [NO_CORE])
        found = problems(task.kernel, program.tensors, core)
        if found:
            raise CheckError(task.kernel.name, found)


def outcome(check: Callable[[], None]) -> tuple[str, list[str]] | None:
    """The kernel (or task) named and its problems; a task no core runs as NO_CORE (test_check has the
    text)."""
    try:
        check()
    except CheckError as e:
        return e.kernel, [NO_CORE] if e.problems[0].startswith("it is a") else e.problems
    return None


@pytest.mark.parametrize("seed", range(300))
def test_check_program_agrees_with_checking_each_task_in_full(seed: int) -> None:
    program = random_program(seed)
    by_kind = {CoreKind.CUBE: CUBE, CoreKind.VECTOR: VECTOR}
    limits = by_kind if seed % 7 else {CoreKind.CUBE: CUBE}  # now and then a kind no core runs
    assert outcome(lambda: check_program(program, limits)) == outcome(lambda: plain_check(program, limits))


def test_the_faults_are_found_and_some_programs_are_clean() -> None:
    """The comparison above means something: both clean programs and each kind of problem occur."""
    seen: set[str] = set()
    clean = 0
    for seed in range(300):
        by_kind = {CoreKind.CUBE: CUBE, CoreKind.VECTOR: VECTOR}
        got = outcome(lambda s=seed, k=by_kind: plain_check(random_program(s), k))  # type: ignore[misc]
        if got is None:
            clean += 1
        else:
            seen.update(p.split(": ", 1)[1].split(" ")[0] for p in got[1])
    assert clean > 50
    assert {"src", "dst", "waits"} <= seen
