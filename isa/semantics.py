"""What each instruction computes, as pure functions of its source values.

`compute(instr, sources)` takes the values of `instr.reads` (numpy arrays of each region's dtype and
shape, in that order) and returns the value of `instr.writes[0]`, of that region's dtype and shape.
It never mutates its sources; the result may share memory with a source (plain copies return it).

Numeric contract of the ISA (the timing engine and the interpreter both call this module, so a
correctly synchronised program gives bit-identical results in both):

- load / move / store: copy; `transpose` gives the source's transpose.
- fixpipe: the source (fp32 or int32 from L0C) converted to the destination dtype by the cast
  rule below (fp32 -> fp16/bf16 rounds to nearest even; same dtype is a copy).
- mmad: fp32 accumulation, as on the cube (`mmad_product`, then `accumulate`). fp16/bf16/fp32
  inputs are widened to fp32 (products of fp16/bf16 values are exact there), summed over K in
  fp32 in the order of the host's sgemm (so results are bit-identical on one machine and may
  differ in the last bits between BLAS builds), and with `accumulate` the old fp32 C is added,
  rounding once more. int8 inputs accumulate in
  int64 and wrap to int32.
- Element-wise vector ops (vadd vsub vmul vdiv vmax vmin, vadds vmuls vmaxs vmins, vexp, the
  rowexpand family): fp16/bf16 tiles compute in float32 and round to nearest even (for + - * /
  this equals the correctly rounded result: fp32 has at least 2p+2 bits of fp16/bf16's p);
  fp32 tiles compute in float32; int tiles compute in their own type and wrap. vdiv and vexp
  have no int form. max/min propagate NaN.
- A scalar operand (vadds ..., vdup, vfillpad) is rounded to the tile dtype first: to fp32, then
  to fp16/bf16 (as torch does), or for int tiles by the float -> int cast rule.
- vrowmax / vrowsum: [rows, cols] -> [rows, 1]; the sum runs left to right in float32 for float
  tiles (in the tile's int type, wrapping, for int tiles) and is then rounded to the tile dtype.
- vcast: float -> float rounds to nearest even; float -> int rounds half to even, saturates to
  the int range, NaN -> 0; int -> float as numpy's astype (int32 -> bf16 rounds through fp32, as
  torch does); int -> int saturates.
- Floating-point exceptions follow IEEE (inf, NaN) and never raise. Callers run instructions
  inside `numeric_context()`, which silences numpy's warnings about them and keeps the host's BLAS
  on one thread, so an mmad's summation order does not depend on the thread count or the load.

Sync instructions (set_flag, wait_flag, barrier) compute nothing; `compute` on them is a TypeError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from isa.errors import IsaError
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
    ReduceOp,
    RowExpand,
    RowExpandOp,
    RowReduce,
    ScalarOp,
    SetFlag,
    Store,
    UnaryOp,
    VecBinary,
    VecScalar,
    VecUnary,
    WaitFlag,
)
from isa.types import DType

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_I64 = np.dtype(np.int64)
_NARROW = frozenset({DType.FP16, DType.BF16})  # float dtypes that compute in fp32

_BINARY: dict[BinaryOp, Callable[..., np.ndarray]] = {
    BinaryOp.ADD: np.add,
    BinaryOp.SUB: np.subtract,
    BinaryOp.MUL: np.multiply,
    BinaryOp.DIV: np.divide,
    BinaryOp.MAX: np.maximum,
    BinaryOp.MIN: np.minimum,
}
_SCALAR: dict[ScalarOp, Callable[..., np.ndarray]] = {
    ScalarOp.ADDS: np.add,
    ScalarOp.MULS: np.multiply,
    ScalarOp.MAXS: np.maximum,
    ScalarOp.MINS: np.minimum,
}
_UNARY: dict[UnaryOp, Callable[..., np.ndarray]] = {
    UnaryOp.EXP: np.exp,
}  # vcopy moves bits (NaN payloads included), so it is no arithmetic and has no entry
_ROW_EXPAND: dict[RowExpandOp, Callable[..., np.ndarray]] = {
    RowExpandOp.SUB: np.subtract,
    RowExpandOp.MUL: np.multiply,
    RowExpandOp.DIV: np.divide,
}
# Ops whose numpy function would leave the int type (true division, exp) have no int form.
_FLOAT_ONLY: frozenset[Any] = frozenset({BinaryOp.DIV, UnaryOp.EXP, RowExpandOp.DIV})


@contextmanager
def numeric_context() -> Iterator[None]:
    """Where instructions compute: IEEE results without warnings, and single-threaded BLAS.

    One BLAS thread makes mmad's fp32 summation order fixed on a host whatever the thread count,
    and a 128x128 tile gains nothing from threads; on a busy machine they only wait on each other.
    """
    with np.errstate(all="ignore"), threadpool_limits(limits=1, user_api="blas"):
        yield


def convert(value: np.ndarray, dtype: DType) -> np.ndarray:
    """`value` converted to `dtype` by the ISA's cast rule (see the module docstring)."""
    target = dtype.np
    if value.dtype == target:
        return value
    if not dtype.is_float:
        info = np.iinfo(target)
        if value.dtype.kind in "iu":
            if np.can_cast(value.dtype, target):
                return value.astype(target)
            return np.clip(value, info.min, info.max).astype(target)
        # float64 holds every int32 exactly, so the clip bounds are exact too.
        wide = np.rint(value.astype(_F64))
        wide[np.isnan(wide)] = 0.0
        return np.clip(wide, info.min, info.max).astype(target)
    # numpy and ml_dtypes round float -> float to nearest even, int -> float through fp32 as torch.
    return value.astype(target)


def round_scalar(value: float, dtype: DType) -> np.generic:
    """A Python scalar rounded to `dtype` as an instruction's scalar operand is (fp32 first)."""
    if dtype.is_float:
        return np.float32(value).astype(dtype.np)
    return convert(np.array([value], _F64), dtype)[0]


def _elementwise(fn: Callable[..., np.ndarray], dtype: DType, *operands: Any) -> np.ndarray:
    """fn on the operands in the arithmetic type of a `dtype` tile, rounded back to `dtype`."""
    if dtype in _NARROW:
        return fn(*(np.asarray(x).astype(_F32) for x in operands)).astype(dtype.np)
    return fn(*operands)


def _require_float(op: Any, dtype: DType) -> None:
    if op in _FLOAT_ONLY and not dtype.is_float:
        raise IsaError(f"{op.value} has no {dtype} form; it needs a float tile (fp16, bf16, fp32)")


def _copy(instr: Load | Move, sources: Sequence[np.ndarray]) -> np.ndarray:
    return sources[0].T if instr.transpose else sources[0]


def _store(instr: Store, sources: Sequence[np.ndarray]) -> np.ndarray:
    return sources[0]


def _fixpipe(instr: Fixpipe, sources: Sequence[np.ndarray]) -> np.ndarray:
    return convert(sources[0], instr.dst.dtype)


def mmad_product(instr: Mmad, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A @ B as the cube computes it, in the accumulator's dtype (before any old C is added).

    Float: products of fp16/bf16 values are exact in fp32 and the K-sum rounds in fp32, in the
    order of the host's sgemm. int8: exact in int64, wrapped to int32 (two's complement).
    """
    if instr.a.dtype.is_float:
        return a.astype(_F32) @ b.astype(_F32)
    return (a.astype(_I64) @ b.astype(_I64)).astype(instr.dst.dtype.np)


def accumulate(old: np.ndarray, product: np.ndarray) -> np.ndarray:
    """C + A @ B into the accumulator: an fp32 add, or an int32 add that wraps."""
    return old + product


def _mmad(instr: Mmad, sources: Sequence[np.ndarray]) -> np.ndarray:
    product = mmad_product(instr, sources[0], sources[1])
    return accumulate(sources[2], product) if instr.accumulate else product


def _vec_binary(instr: VecBinary, sources: Sequence[np.ndarray]) -> np.ndarray:
    _require_float(instr.op, instr.dst.dtype)
    return _elementwise(_BINARY[instr.op], instr.dst.dtype, sources[0], sources[1])


def _vec_scalar(instr: VecScalar, sources: Sequence[np.ndarray]) -> np.ndarray:
    dtype = instr.dst.dtype
    return _elementwise(_SCALAR[instr.op], dtype, sources[0], round_scalar(instr.scalar, dtype))


def _vec_unary(instr: VecUnary, sources: Sequence[np.ndarray]) -> np.ndarray:
    if instr.op is UnaryOp.COPY:
        return sources[0]
    _require_float(instr.op, instr.dst.dtype)
    return _elementwise(_UNARY[instr.op], instr.dst.dtype, sources[0])


def _row_max(x: np.ndarray) -> np.ndarray:
    return np.max(x, axis=1, keepdims=True)


def _row_reduce(instr: RowReduce, sources: Sequence[np.ndarray]) -> np.ndarray:
    src, dtype = sources[0], instr.dst.dtype
    if instr.op is ReduceOp.MAX:
        # The max is one of the inputs, so widening fp16/bf16 to fp32 and back is exact.
        return _elementwise(_row_max, dtype, src)
    acc = src.astype(_F32) if dtype.is_float else src
    # cumsum is sequential by definition: a fixed left-to-right order, unlike np.sum's pairwise one.
    return np.cumsum(acc, axis=1, dtype=acc.dtype)[:, -1:].astype(dtype.np)


def _row_expand(instr: RowExpand, sources: Sequence[np.ndarray]) -> np.ndarray:
    _require_float(instr.op, instr.dst.dtype)
    return _elementwise(_ROW_EXPAND[instr.op], instr.dst.dtype, sources[0], sources[1])


def _cast(instr: Cast, sources: Sequence[np.ndarray]) -> np.ndarray:
    return convert(sources[0], instr.dst.dtype)


def _dup(instr: Dup, sources: Sequence[np.ndarray]) -> np.ndarray:
    return np.full(instr.dst.shape, round_scalar(instr.value, instr.dst.dtype), instr.dst.dtype.np)


def _fill_pad(instr: FillPad, sources: Sequence[np.ndarray]) -> np.ndarray:
    out = sources[0].copy()
    out[:, instr.valid_cols :] = round_scalar(instr.value, instr.dst.dtype)
    return out


SEMANTICS: dict[type[Instruction], Callable[[Any, Sequence[np.ndarray]], np.ndarray] | None] = {
    Load: _copy,
    Move: _copy,
    Mmad: _mmad,
    Fixpipe: _fixpipe,
    Store: _store,
    VecBinary: _vec_binary,
    VecScalar: _vec_scalar,
    VecUnary: _vec_unary,
    RowReduce: _row_reduce,
    RowExpand: _row_expand,
    Cast: _cast,
    Dup: _dup,
    FillPad: _fill_pad,
    SetFlag: None,  # sync instructions order pipes and compute nothing
    WaitFlag: None,
    Barrier: None,
}
"""What each instruction class computes: `fn(instr, sources)` -> the value of `instr.writes[0]`."""


def compute(instr: Instruction, sources: Sequence[np.ndarray]) -> np.ndarray:
    """The value `instr` writes to `instr.writes[0]`, given the values of `instr.reads` in order.

    Raises TypeError for an instruction that computes nothing (sync) and IsaError for an op that
    has no form for the tile's dtype (vdiv, vexp on int tiles).
    """
    fn = SEMANTICS.get(type(instr))
    if fn is None:
        raise TypeError(
            f"{type(instr).__name__} computes nothing; compute() takes one of "
            f"{', '.join(c.__name__ for c, f in SEMANTICS.items() if f is not None)}"
        )
    return fn(instr, sources)
