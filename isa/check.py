"""Static checks on a kernel before it runs: regions, per-instruction dtype/shape rules, and flags.

`problems` lists every mistake it finds, each naming the instruction index, its text, what was wrong
and what would be valid; `check_kernel` and `check_program` raise `CheckError` with that list.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from isa.errors import CheckError
from isa.instructions import (
    Barrier,
    BinaryOp,
    Cast,
    Dup,
    FillPad,
    Fixpipe,
    Instruction,
    Load,
    Mmad,
    Move,
    RowExpand,
    RowReduce,
    SetFlag,
    Store,
    UnaryOp,
    VecBinary,
    VecScalar,
    VecUnary,
    WaitFlag,
)
from isa.limits import CoreLimits
from isa.program import CoreKind, Kernel, Program, Tensor
from isa.regions import GmRegion, Region, Tile
from isa.shapes import Pinned, at_origin, placement
from isa.types import DType, Pipe, Space

VEC_FLOAT = (DType.FP16, DType.FP32)
VEC_ARITH = (DType.FP16, DType.FP32, DType.INT32)
MMAD_ACCUMULATOR = {DType.FP16: DType.FP32, DType.BF16: DType.FP32, DType.FP32: DType.FP32,
                    DType.INT8: DType.INT32}
FIXPIPE_CASTS = {DType.FP32: (DType.FP32, DType.FP16, DType.BF16), DType.INT32: (DType.INT32,)}

Tensors = Mapping[str, Tensor] | Iterable[Tensor]
"""GM tensor declarations, by name or as a list (e.g. `Program.tensors`)."""


def _names(items: Iterable[Any]) -> str:
    return ", ".join(str(getattr(item, "value", item)) for item in items)


def _shape(shape: Sequence[int]) -> str:
    return f"[{', '.join(str(d) for d in shape)}]"


def _field_names(instr: Instruction) -> tuple[str, ...]:
    """The instruction's dataclass field names, in declaration order."""
    names = _FIELD_NAMES.get(type(instr))
    if names is None:  # dataclasses.fields is slow: read each class's field names once
        names = _FIELD_NAMES[type(instr)] = tuple(f.name for f in fields(instr))  # type: ignore[arg-type]
    return names


def _regions(instr: Instruction) -> list[tuple[str, Region]]:
    """Each region operand with its field name, in declaration order (so each appears once)."""
    values = ((name, getattr(instr, name)) for name in _field_names(instr))
    return [(name, v) for name, v in values if isinstance(v, (Tile, GmRegion))]


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


# --- region checks (every instruction) --------------------------------------------------------


def _tile_problems(name: str, tile: Tile, limits: CoreLimits) -> list[str]:
    space = tile.space.value
    if tile.space not in limits.capacity:
        where = "GM, which holds tensor regions, not tiles" if tile.space is Space.GM else space
        return [f"{name} is a tile in {where}; {limits.name} has buffers {_names(limits.capacity)}"]
    if len(tile.shape) != 2 or min(tile.shape) <= 0:
        return [f"{name} shape {_shape(tile.shape)} must be [rows, cols] with both positive"]
    found = []
    if tile.offset < 0:
        found.append(f"{name} {space} offset {tile.offset} is negative")
    elif tile.end > limits.capacity[tile.space]:
        found.append(f"{space} holds {limits.capacity[tile.space]} bytes; {name} needs bytes "
                     f"{tile.offset}..{tile.end}")
    align = limits.alignment[tile.space]
    if tile.offset % align:
        found.append(f"{name} {space} offset 0x{tile.offset:04X} is not {align}-byte aligned")
    return found


def _gm_problems(name: str, gm: GmRegion, tensors: Mapping[str, Tensor]) -> list[str]:
    tensor = tensors.get(gm.tensor)
    if tensor is None:
        return [f"{name} reads GM tensor {gm.tensor!r}, which is not declared; declared: "
                f"{_names(tensors) or 'none'}"]
    found = []
    if gm.dtype is not tensor.dtype:
        found.append(f"{name} is {gm.dtype.value} but GM tensor {tensor.name} is {tensor.dtype.value}")
    if gm.rows <= 0 or gm.cols <= 0:
        return [*found, f"{name} shape {_shape(gm.shape)} must have positive rows and cols"]
    if gm.row_step < 1:
        return [*found, f"{name} row step {gm.row_step} must be at least 1"]
    mrows, mcols = tensor.matrix_shape
    if gm.row < 0 or gm.last_row >= mrows:
        found.append(f"{name} needs rows {gm.row} to {gm.last_row} (step {gm.row_step}) of {tensor.name}, "
                     f"whose matrix is {_shape((mrows, mcols))}: valid rows 0 to {mrows - 1}")
    if gm.col < 0 or gm.col + gm.cols > mcols:
        found.append(f"{name} needs cols {gm.col} to {gm.col + gm.cols - 1} of {tensor.name}, "
                     f"whose matrix is {_shape((mrows, mcols))}: valid cols 0 to {mcols - 1}")
    return found


def _overlap_problems(instr: Instruction) -> list[str]:
    """A destination sharing only some bytes with a source would read half-updated data."""
    named = _regions(instr)
    found = []
    for wname, w in named:
        if not isinstance(w, Tile) or not any(w is x for x in instr.writes):
            continue
        for rname, r in named:
            if r is w or not isinstance(r, Tile) or r not in instr.reads or not w.overlaps(r):
                continue
            if w.nbytes <= 0 or r.nbytes <= 0:  # an empty tile, already reported, touches no bytes
                continue
            if (w.offset, w.end) != (r.offset, r.end):
                found.append(f"{wname} {w.space.value} bytes {w.offset}..{w.end} partially overlap {rname} "
                             f"bytes {r.offset}..{r.end}; make them identical (in place) or disjoint")
    return found


# --- helpers that return one problem or None ---------------------------------------------------


def _space(name: str, region: Region, *allowed: Space) -> str | None:
    if region.space in allowed:
        return None
    return f"{name} is in {region.space.value}; it must be in {_names(allowed)}"


def _dtype(name: str, dtype: DType, allowed: Iterable[DType], what: str = "") -> str | None:
    allowed = tuple(allowed)
    if dtype in allowed:
        return None
    return f"{name} is {dtype.value}; {what or 'valid'}: {_names(allowed)}"


def _same_dtype(*named: tuple[str, Region]) -> str | None:
    if len({r.dtype for _, r in named}) <= 1:
        return None
    listed = ", ".join(f"{n} {r.dtype.value}" for n, r in named)
    return f"dtypes differ ({listed}); they must be one dtype"


def _same_shape(*named: tuple[str, Region]) -> str | None:
    if len({tuple(r.shape) for _, r in named}) <= 1:
        return None
    listed = ", ".join(f"{n} {_shape(r.shape)}" for n, r in named)
    return f"shapes differ ({listed}); they must be one shape"


def _shape_is(name: str, region: Region, expected: tuple[int, int], why: str) -> str | None:
    if tuple(region.shape) == expected:
        return None
    return f"{name} shape {_shape(region.shape)} must be {_shape(expected)} ({why})"


def _value(what: str, value: float, dtype: DType) -> str | None:
    """Whether a scalar operand can be held by `dtype` without NaN, truncation or overflow."""
    v = float(value)
    if not dtype.is_float:
        info = np.iinfo(dtype.np)
        if not math.isfinite(v):
            return f"{what} {v} is not finite; only {_names(d for d in DType if d.is_float)} hold it"
        if not v.is_integer() or not info.min <= v <= info.max:
            return f"{what} {value!r} is not held by {dtype.value}: valid are integers {info.min}..{info.max}"
        return None
    if math.isnan(v):
        return f"{what} is NaN; {dtype.value} operands must be finite or +-inf"
    with np.errstate(over="ignore"):
        rounded = float(np.asarray(v).astype(dtype.np))
    if math.isfinite(v) and not math.isfinite(rounded):
        import ml_dtypes  # here, not at the top: isa.types loads it on first use, so must this module

        largest = float(ml_dtypes.finfo(dtype.np).max)
        return f"{what} {v!r} overflows {dtype.value} (largest finite {largest:g}); write inf if intended"
    return None


# --- per-instruction rules ---------------------------------------------------------------------


def _load(i: Load) -> list[str | None]:
    expected = i.src.shape[::-1] if i.transpose else i.src.shape
    return [_space("dst", i.dst, Space.L1, Space.UB), _space("src", i.src, Space.GM),
            _same_dtype(("dst", i.dst), ("src", i.src)),
            "transpose loads only into L1, not UB" if i.transpose and i.dst.space is Space.UB else None,
            _shape_is("dst", i.dst, expected, "src transposed" if i.transpose else "src's shape")]


def _move(i: Move) -> list[str | None]:
    expected = i.src.shape[::-1] if i.transpose else i.src.shape
    return [_space("dst", i.dst, Space.L0A, Space.L0B), _space("src", i.src, Space.L1),
            _same_dtype(("dst", i.dst), ("src", i.src)),
            _shape_is("dst", i.dst, expected, "src transposed" if i.transpose else "src's shape")]


def _mmad(i: Mmad) -> list[str | None]:
    acc = MMAD_ACCUMULATOR.get(i.a.dtype)
    return [_space("a", i.a, Space.L0A), _space("b", i.b, Space.L0B), _space("dst", i.dst, Space.L0C),
            _same_dtype(("a", i.a), ("b", i.b)), _dtype("a", i.a.dtype, MMAD_ACCUMULATOR, "cube inputs"),
            _dtype("dst", i.dst.dtype, [acc], f"{i.a.dtype.value} inputs accumulate in") if acc else None,
            _shape_is("b", i.b, (i.a.cols, i.b.cols), f"K = a's {i.a.cols} cols"),
            _shape_is("dst", i.dst, (i.a.rows, i.b.cols), "a's rows by b's cols")]


def _fixpipe(i: Fixpipe) -> list[str | None]:
    casts = FIXPIPE_CASTS.get(i.src.dtype)
    in_ub = isinstance(i.dst, GmRegion) or i.dst.space is Space.UB
    dst_space = None if in_ub else f"dst is in {i.dst.space.value}; it must be a GM region or a UB tile"
    return [_space("src", i.src, Space.L0C), dst_space, _dtype("src", i.src.dtype, FIXPIPE_CASTS),
            _dtype("dst", i.dst.dtype, casts, f"{i.src.dtype.value} converts to") if casts else None,
            _same_shape(("dst", i.dst), ("src", i.src))]


def _store(i: Store) -> list[str | None]:
    return [_space("src", i.src, Space.UB), _space("dst", i.dst, Space.GM),
            _same_dtype(("dst", i.dst), ("src", i.src)), _same_shape(("dst", i.dst), ("src", i.src))]


def _vec_binary(i: VecBinary) -> list[str | None]:
    ops = ("dst", i.dst), ("src0", i.src0), ("src1", i.src1)
    allowed = VEC_FLOAT if i.op is BinaryOp.DIV else VEC_ARITH
    return [_same_dtype(*ops), _same_shape(*ops), _dtype("dst", i.dst.dtype, allowed, f"{i.op.value} takes")]


def _vec_scalar(i: VecScalar) -> list[str | None]:
    ops = ("dst", i.dst), ("src", i.src)
    return [_same_dtype(*ops), _same_shape(*ops),
            _dtype("dst", i.dst.dtype, VEC_ARITH, f"{i.op.value} takes"),
            _value("scalar", i.scalar, i.dst.dtype)]


def _vec_unary(i: VecUnary) -> list[str | None]:
    ops = ("dst", i.dst), ("src", i.src)
    exp = _dtype("dst", i.dst.dtype, VEC_FLOAT, f"{i.op.value} takes") if i.op is UnaryOp.EXP else None
    return [_same_dtype(*ops), _same_shape(*ops), exp]


def _row_reduce(i: RowReduce) -> list[str | None]:
    return [_same_dtype(("dst", i.dst), ("src", i.src)),
            _dtype("src", i.src.dtype, VEC_FLOAT, f"{i.op.value} takes"),
            _shape_is("dst", i.dst, (i.src.rows, 1), "one column per src row")]


def _row_expand(i: RowExpand) -> list[str | None]:
    return [_same_dtype(("dst", i.dst), ("src", i.src), ("col", i.col)),
            _dtype("src", i.src.dtype, VEC_FLOAT, f"{i.op.value} takes"),
            _same_shape(("dst", i.dst), ("src", i.src)),
            _shape_is("col", i.col, (i.src.rows, 1), "one value per src row")]


def _cast(i: Cast) -> list[str | None]:
    same = i.dst.dtype is i.src.dtype
    return [f"dst and src are both {i.src.dtype.value}; use vcopy to copy unconverted" if same else None,
            _same_shape(("dst", i.dst), ("src", i.src))]


def _dup(i: Dup) -> list[str | None]:
    return [_value("value", i.value, i.dst.dtype)]


def _fill_pad(i: FillPad) -> list[str | None]:
    ops = ("dst", i.dst), ("src", i.src)
    cols = i.src.cols
    bad_cols = not 0 <= i.valid_cols <= cols
    return [_same_dtype(*ops), _same_shape(*ops), _value("value", i.value, i.dst.dtype),
            f"valid_cols {i.valid_cols} must be in 0..{cols} (src has {cols} cols)" if bad_cols else None]


def _vector(rule: Callable[[Any], list[str | None]]) -> Callable[[Any], list[str | None]]:
    """Wrap a vector rule with the check every vector instruction shares: all operands in UB."""
    def checked(i: Instruction) -> list[str | None]:
        return [*(_space(n, r, Space.UB) for n, r in _regions(i)), *rule(i)]
    return checked


RULES: dict[type[Instruction], Callable[[Any], list[str | None]]] = {
    Load: _load, Move: _move, Mmad: _mmad, Fixpipe: _fixpipe, Store: _store,
    VecBinary: _vector(_vec_binary), VecScalar: _vector(_vec_scalar), VecUnary: _vector(_vec_unary),
    RowReduce: _vector(_row_reduce), RowExpand: _vector(_row_expand), Cast: _vector(_cast),
    Dup: _vector(_dup), FillPad: _vector(_fill_pad),
    SetFlag: lambda i: [], WaitFlag: lambda i: [], Barrier: lambda i: [],  # flags: see _flag_problems
}


# --- synchronisation ---------------------------------------------------------------------------


def _key(key: tuple[Any, Any, int]) -> str:
    return f"({key[0].value}, {key[1].value}, {key[2]})"


def _flag_problems(instrs: Sequence[Instruction], limits: CoreLimits, objects: Mapping[int, Instruction],
                   uses: Mapping[int, int]) -> list[tuple[int, str]]:
    """Event ids in range, flags across two pipes, and every wait matched by a set.

    Sets and waits are counted over the whole kernel, not in program order: a wait may precede its
    set in the listing (the set is on another pipe), but each set releases exactly one wait.
    `objects` are the kernel's distinct instruction objects by id and `uses` how often each occurs.
    """
    sets: Counter[tuple[Any, Any, int]] = Counter()
    waits: Counter[tuple[Any, Any, int]] = Counter()
    for key, instr in objects.items():
        if type(instr) is SetFlag:
            sets[instr.key] += uses[key]
        elif type(instr) is WaitFlag:
            waits[instr.key] += uses[key]
    num_events = limits.num_events
    if all(0 <= k[2] < num_events and k[0] is not k[1] and waits[k] <= sets[k] for k in sets | waits):
        return []  # the usual case, found in two passes; only a faulty kernel is walked again
    flags = [(index, i) for index, i in enumerate(instrs) if type(i) in (SetFlag, WaitFlag)]
    seen: Counter[tuple[Any, Any, int]] = Counter()
    found = []
    for index, i in flags:
        if not 0 <= i.event < num_events:
            found.append((index, f"event {i.event} is out of range; valid: 0..{num_events - 1}"))
        if i.src is i.dst:
            found.append((index, f"src and dst are both pipe {i.src.value}; use `barrier {i.src.value}` "
                                 "to order instructions within one pipe"))
        if not isinstance(i, WaitFlag):
            continue
        key = i.key
        seen[key] += 1
        if sets[key] == 0:
            found.append((index, f"waits on flag {_key(key)}, which no set_flag in this kernel sets; "
                                 f"flags set: {', '.join(map(_key, sets)) or 'none'}"))
        elif seen[key] > sets[key]:
            found.append((index, f"flag {_key(key)} is set {sets[key]} time(s) but waited "
                                 f"{waits[key]} times; a set releases one wait, so this one never fires"))
    return found


# --- entry points ------------------------------------------------------------------------------


def problems(kernel: Kernel, tensors: Tensors, limits: CoreLimits,
             seen: dict[Instruction, list[str]] | None = None) -> list[str]:
    """Every static problem of `kernel` against the declared GM `tensors` and the core's `limits`.

    `seen`: the problems of instructions already checked against the same tensors and limits, shared
    by the kernels of one program (its tasks repeat on-chip instructions); filled as this one checks.
    """
    declared = dict(tensors) if isinstance(tensors, Mapping) else {t.name: t for t in tensors}
    instrs = kernel.instructions
    found: list[tuple[int, str]] = []
    # Kernels repeat instructions, often as one shared object: each distinct object is checked once
    # (equal objects share the result), and only a kernel with a problem is walked in order again.
    objects = dict(zip(map(id, instrs), instrs, strict=True))
    uses = Counter(map(id, instrs))
    by_value: dict[Instruction, list[str]] = {} if seen is None else seen
    bad: dict[int, list[str]] = {}
    for key, instr in objects.items():
        rule = RULES.get(type(instr))
        if rule is None:
            own = [f"{type(instr).__name__} is not an ISA instruction; valid: "
                   f"{_names(c.__name__ for c in RULES)}"]
        else:
            own = by_value.get(instr)
            if own is None:
                own = by_value[instr] = _instruction_problems(instr, rule, declared, limits)
        if own:
            bad[key] = own
    if bad:
        for index, instr in enumerate(instrs):
            found.extend((index, p) for p in bad.get(id(instr), ()))
    found.extend(_flag_problems(instrs, limits, objects, uses))
    found.sort(key=lambda item: item[0])  # stable: keeps each instruction's problems in check order
    return [_at(index, instrs[index], p) for index, p in found]


def _instruction_problems(instr: Instruction, rule: Callable[[Any], list[str | None]],
                          declared: Mapping[str, Tensor], limits: CoreLimits) -> list[str]:
    own = []
    for name, region in _regions(instr):
        own += (_tile_problems(name, region, limits) if isinstance(region, Tile)
                else _gm_problems(name, region, declared))
    own += [p for p in rule(instr) if p is not None]
    own += _overlap_problems(instr)
    used = (instr.src, instr.dst) if isinstance(instr, SetFlag | WaitFlag) else (instr.pipe,)
    for pipe in dict.fromkeys(used):
        if pipe not in limits.pipes:
            have = ", ".join(p.value for p in Pipe if p in limits.pipes)
            own.append(f"{limits.name} has no pipe {pipe.value}; its pipes: {have}")
    return own


def _at(index: int, instr: Instruction, problem: str) -> str:
    text = f" `{instr}`" if type(instr) in RULES else ""  # an unknown object may not print as assembly
    return f"instruction {index}{text}: {problem}"


def check_kernel(kernel: Kernel, tensors: Tensors, limits: CoreLimits,
                 seen: dict[Instruction, list[str]] | None = None) -> None:
    """Raise CheckError listing every problem of `kernel`; return quietly if it has none."""
    found = problems(kernel, tensors, limits, seen)
    if found:
        raise CheckError(kernel.name, found)


def check_program(program: Program, limits: CoreLimits | Mapping[CoreKind, CoreLimits]) -> None:
    """Check each task of `program` against its tensors and the core that runs it.

    `limits` is one core for every task, or the cores of a chip by the kind of kernel they run;
    a task whose kind no core runs is an error. Raises CheckError for the first failing task.
    A program's tasks repeat a few kernel shapes, so each task is first cleared by `_Cleared`, whose
    work grows with the distinct instructions and shapes; a task it does not clear is checked in full.
    """
    declared = {t.name: t for t in program.tensors}
    cleared: dict[int, _Cleared] = {}  # by core (identity): what its kernels have shown clean
    for task in program.tasks:
        if isinstance(limits, CoreLimits):
            core = limits
        elif task.kind in limits:
            core = limits[task.kind]
        else:
            have = ", ".join(k.value for k in limits)
            why = ("it uses both cube and vector pipes or buffers, which only a coupled core has"
                   if task.kind is CoreKind.MIXED else f"no core runs {task.kind.value} kernels")
            raise CheckError(task.name, [f"it is a {task.kind.value} kernel and {why}; this chip's "
                                         f"cores run: {have}"])
        known = cleared.get(id(core))
        if known is None:
            known = cleared[id(core)] = _Cleared(declared, core)
        if not known.passes(task.kernel):
            check_kernel(task.kernel, declared, core, known.seen)


# --- clearing the kernels of a program by shape --------------------------------------------------


class _Cleared:
    """Which kernels surely pass the checks against one core, learnt once per distinct instruction and shape.

    Kernels are cleared by shape (`isa.shapes`): for each shape, the instructions without a GM
    region and the flags are checked once; each GM access is checked once per placement key, at the
    origin of its tensor (every rule but the GM bounds looks at a region's tensor, shape, dtype and
    row step, never at where it starts), and then only for its bounds. A kernel this does not clear
    may still pass: `problems` decides, in full and with its exact messages.
    """

    def __init__(self, declared: Mapping[str, Tensor], limits: CoreLimits) -> None:
        self.declared, self.limits = declared, limits
        self.seen: dict[Instruction, list[str]] = {}  # each instruction's problems, by value
        self.clean: Pinned[int] = Pinned()  # objects checked whole and clean (no GM accesses), as their id
        self.shapes: dict[tuple[int | None, ...], tuple[int, ...]] = {}  # clean shape -> its GM positions
        self.gm_keys: dict[tuple[Any, ...], bool] = {}  # placement key -> clean at the tensor's origin
        self.matrix = {name: t.matrix_shape for name, t in declared.items()}

    def passes(self, kernel: Kernel) -> bool:
        """True if `kernel` has no problem; False if it may have one."""
        instrs = kernel.instructions
        ids = tuple(map(id, instrs))
        gm_at = self.shapes.get(self.clean.shape(ids))
        if gm_at is None:
            gm_at = self._learn(instrs, ids)
        return gm_at is not None and all(self._gm_passes(instrs[p]) for p in gm_at)

    def _learn(self, instrs: Sequence[Instruction], ids: tuple[int, ...]) -> tuple[int, ...] | None:
        """Check a new shape's instructions not yet known clean, and its flags: its GM positions, or
        None if any of that has a problem."""
        gm_at = []
        for index, instr in enumerate(instrs):
            if ids[index] in self.clean:
                continue
            if placement(instr) is not None:
                gm_at.append(index)
                continue
            rule = RULES.get(type(instr))
            if rule is None:
                return None
            own = self.seen.get(instr)
            if own is None:
                own = self.seen[instr] = _instruction_problems(instr, rule, self.declared, self.limits)
            if own:
                return None
            self.clean.add(instr, ids[index])
        if _flag_problems(instrs, self.limits, dict(zip(ids, instrs, strict=True)), Counter(ids)):
            return None
        found = self.shapes[self.clean.shape(ids)] = tuple(gm_at)
        return found

    def _gm_passes(self, instr: Instruction) -> bool:
        """Whether a GM access of a known shape is clean: its key at the origin, then its bounds."""
        placed = placement(instr)
        if placed is None:  # a new object where the shape's kernel had a GM access
            return False
        key, _, gm = placed
        clean = self.gm_keys.get(key)
        if clean is None:
            moved = at_origin(instr, placed)
            found = _instruction_problems(moved, RULES[type(instr)], self.declared, self.limits)
            clean = self.gm_keys[key] = not found
        if not clean:
            return False
        rows, cols = self.matrix[gm.tensor]
        return gm.row >= 0 and gm.row + (gm.rows - 1) * gm.row_step < rows and 0 <= gm.col <= cols - gm.cols
