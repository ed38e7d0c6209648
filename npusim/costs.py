"""What each instruction costs: pure functions of (instruction, config, GM tensor layout).

Every cost is a pair of whole cycles. `occupancy` is how long the instruction holds its pipe: the
next instruction of that pipe may start when it ends. `latency` is from start to completion (when
its result is written and flags waiting on it may fire); latency >= occupancy. Formulas:

- DMA (load, store, fixpipe to GM): no cycles here. The cost model describes the transfer
  (`Transfer`: the region, its path, the bytes on the wire and the rows that pay a per-row cost):
  a region whose rows are not contiguous in GM (a row step, or fewer columns than the tensor has)
  moves each row in whole bursts and pays the path's `row_cycles` per row; contiguous regions pay
  neither. `npusim.memsys` owns all GM timing: the path's rate shared with every other core, L2
  hits, the per-row cost and the latency. Assumed, and relied on by `npusim.decode` (which costs
  one access per `isa.shapes.placement` key, at its tensor's origin): a transfer's path, bytes and
  rows do not depend on where its region starts, only on its tensor, shape, dtype and row step.
- MTE1 move: occupancy = bytes / L1->L0A or L1->L0B bandwidth; latency adds mte1.latency_cycles.
- mmad: occupancy = startup + step x ceil(M/m0) * ceil(K/k0) * ceil(N/n0) with k0 = k0_bytes /
  element size, at least 1 (16 for fp16/bf16, 32 for int8, 8 for fp32) and step = 1 cycle, or
  cube.fp32_step_cycles for fp32 inputs (fp32 at a quarter of the fp16 rate on the 910B); latency
  adds cube.latency_cycles.
- vector: occupancy = startup + rows x row_cycles + repeats x repeat_cycles of the op's family
  (`config.vector.<family>`), over the largest operand: repeats = its bytes / bytes_per_repeat,
  rounded up over the whole tile, at least one per row for two-tile ops (vadd, vmul, ...), or
  per row for row-wise families (vrowmax, vrowsum, vrowexpand*); latency adds
  vector.latency_cycles.
- set_flag, wait_flag, barrier: no cost of their own; the engine times them (flag_cycles).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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
    RowReduce,
    SetFlag,
    Store,
    UnaryOp,
    VecBinary,
    VecScalar,
    VecUnary,
    WaitFlag,
)
from isa.program import Tensor
from isa.regions import GmRegion, Tile
from isa.types import DType, Space
from npusim.config import HardwareConfig, Vector, VectorOp


class GmPath(enum.Enum):
    """Which DMA path a GM access takes; the memory system knows each path's rate and latency."""

    GM_TO_L1 = "GM -> L1"  # MTE2
    GM_TO_UB = "GM -> UB"  # MTE2
    UB_TO_GM = "UB -> GM"  # MTE3
    L0C_TO_GM = "L0C -> GM"  # FIX

    @property
    def write(self) -> bool:
        return self in (GmPath.UB_TO_GM, GmPath.L0C_TO_GM)


@dataclass(frozen=True, slots=True)
class Transfer:
    """A GM access as the cost model describes it: what moves, not when (`npusim.memsys` times it)."""

    region: GmRegion
    path: GmPath
    moved: int  # bytes on the wire: whole bursts per row when rows are not contiguous in GM
    rows: int  # rows that each pay the path's per-row cost: 0 for a contiguous region

    @property
    def write(self) -> bool:
        return self.path.write


@dataclass(frozen=True, slots=True)
class Cost:
    """Cycles an instruction holds its pipe and takes to complete, and the work it does.

    A GM access has no cycles of its own here: its `transfer` says what moves, and the memory
    system, which sees every other core's traffic, decides when.
    """

    occupancy: int
    latency: int
    bytes: int = 0  # bytes moved, for DMA and MTE1
    flops: int = 0  # multiply-adds count 2; a vector op counts 1 per destination element
    transfer: Transfer | None = None


FREE = Cost(0, 0)


def cycles(x: float) -> int:
    """Whole cycles for a fractional figure; the epsilon keeps exact quotients from rounding up."""
    return math.ceil(x - 1e-9)


def path_rate(path: GmPath, c: HardwareConfig) -> tuple[float, float, int]:
    """(bytes per cycle, cycles per non-contiguous row, latency cycles) of a DMA path under `c`.

    Every GM path exists on every chip: the config refuses a GM bandwidth that is not positive.
    """
    if path is GmPath.GM_TO_L1:
        return (c.mte2.gm_to_l1_bytes_per_cycle, c.mte2.row_cycles, c.mte2.latency_cycles)
    if path is GmPath.GM_TO_UB:
        return (c.mte2.gm_to_ub_bytes_per_cycle, c.mte2.row_cycles, c.mte2.latency_cycles)
    if path is GmPath.UB_TO_GM:
        return (c.mte3.ub_to_gm_bytes_per_cycle, c.mte3.row_cycles, c.mte3.latency_cycles)
    return (c.fixpipe.l0c_to_gm_bytes_per_cycle, c.fixpipe.row_cycles, c.fixpipe.latency_cycles)


def _gm_transfer(gm: GmRegion, path: GmPath, tensors: Mapping[str, Tensor], c: HardwareConfig) -> Cost:
    tensor = tensors[gm.tensor]
    contiguous = gm.row_step == 1 and gm.cols == tensor.matrix_shape[1]
    if contiguous or gm.rows == 1:
        moved, rows = gm.nbytes, 0
    else:
        burst = c.mte2.burst_bytes
        moved, rows = gm.rows * math.ceil(gm.cols * gm.dtype.itemsize / burst) * burst, gm.rows
    return Cost(0, 0, bytes=gm.nbytes, transfer=Transfer(gm, path, moved, rows))


def _load(i: Load, c: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
    return _gm_transfer(i.src, GmPath.GM_TO_L1 if i.dst.space is Space.L1 else GmPath.GM_TO_UB, tensors, c)


def _store(i: Store, c: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
    return _gm_transfer(i.dst, GmPath.UB_TO_GM, tensors, c)


def _fixpipe(i: Fixpipe, c: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
    f = c.fixpipe
    if isinstance(i.dst, GmRegion):
        return _gm_transfer(i.dst, GmPath.L0C_TO_GM, tensors, c)
    return _on_chip(i.dst, max(i.src.nbytes, i.dst.nbytes), f.l0c_to_ub_bytes_per_cycle, f.latency_cycles,
                    "L0C -> UB")


def _on_chip(dst: Tile, nbytes: int, bytes_per_cycle: float, latency: int, what: str) -> Cost:
    if bytes_per_cycle <= 0:
        raise IsaError(f"this preset has no {what} path (its bandwidth is 0)")
    occ = max(1, cycles(nbytes / bytes_per_cycle))
    return Cost(occ, occ + latency, bytes=nbytes)


def _move(i: Move, c: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
    m = c.mte1
    if i.dst.space is Space.L0A:
        return _on_chip(i.dst, i.dst.nbytes, m.l1_to_l0a_bytes_per_cycle, m.latency_cycles, "L1 -> L0A")
    return _on_chip(i.dst, i.dst.nbytes, m.l1_to_l0b_bytes_per_cycle, m.latency_cycles, "L1 -> L0B")


def cube_k0(c: HardwareConfig, dtype: DType) -> int:
    """Elements of `dtype` the cube takes along K per fractal step (k0_bytes / element size, >= 1)."""
    return max(1, c.cube.k0_bytes // dtype.itemsize)


def _mmad(i: Mmad, c: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
    cube = c.cube
    (m, k), n = i.a.shape, i.b.shape[1]
    k0 = cube_k0(c, i.a.dtype)
    fractals = math.ceil(m / cube.m0) * math.ceil(k / k0) * math.ceil(n / cube.n0)
    step = cube.fp32_step_cycles if i.a.dtype is DType.FP32 else 1
    occ = cube.startup_cycles + step * fractals
    return Cost(occ, occ + cube.latency_cycles, flops=2 * m * k * n)


class Repeats(enum.Enum):
    """How a vector op counts the 256-byte repeats of its largest operand, a [rows, cols] tile."""

    TILE = "tile"  # packed over the whole tile, rows back to back
    ROW_MIN = "row_min"  # packed, but at least one per row: a narrow row still costs a repeat
    PER_ROW = "per_row"  # every row in repeats of its own (row-wise reductions and expansions)

    def count(self, rows: int, row_bytes: int, bytes_per_repeat: int) -> int:
        if self is Repeats.PER_ROW:
            return rows * math.ceil(row_bytes / bytes_per_repeat)
        packed = math.ceil(rows * row_bytes / bytes_per_repeat)
        return max(rows, packed) if self is Repeats.ROW_MIN else packed


def _vector_cost(family: Callable[[Any, Vector], VectorOp], repeats: Repeats = Repeats.TILE,
                 fp32_lanes: Callable[[Any], bool] = lambda i: False) -> Callable[..., Cost]:
    """The cost function of a vector instruction of the op family `family(instr, config.vector)`.

    Repeats are counted over the largest operand as `repeats` says. Where `fp32_lanes(instr)`, the
    op computes at fp32 width whatever its dtype, so its repeats count 4 bytes per element
    (pto-isa's TEXP fit has one per-element cost for fp16 and fp32).
    """

    def cost(i: Instruction, c: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
        v = c.vector
        op = family(i, v)
        largest = max((*i.reads, *i.writes), key=lambda r: r.nbytes)
        rows, cols = largest.shape
        row_bytes = cols * (4 if fp32_lanes(i) else largest.dtype.itemsize)
        n = repeats.count(rows, row_bytes, v.bytes_per_repeat)
        occ = cycles(op.startup_cycles + rows * op.row_cycles + n * op.repeat_cycles)
        dst = i.writes[0]
        return Cost(occ, occ + v.latency_cycles, flops=dst.shape[0] * dst.shape[1])

    return cost


# vdiv is fitted to pto-isa's TDIVS, which packs narrow rows; TMUL and TSUB take a repeat a row at least
_vbinary = _vector_cost(lambda i, v: v.binary, Repeats.ROW_MIN)
_vdiv = _vector_cost(lambda i, v: v.div)


def _sync(i: Instruction, c: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
    return FREE


COSTS: dict[type[Instruction], Callable[..., Cost]] = {
    Load: _load,
    Move: _move,
    Mmad: _mmad,
    Fixpipe: _fixpipe,
    Store: _store,
    VecBinary: lambda i, c, t: (_vdiv if i.op is BinaryOp.DIV else _vbinary)(i, c, t),
    VecScalar: _vector_cost(lambda i, v: v.scalar),
    VecUnary: _vector_cost(lambda i, v: v.exp if i.op is UnaryOp.EXP else v.copy,
                           fp32_lanes=lambda i: i.op is UnaryOp.EXP),
    RowReduce: _vector_cost(lambda i, v: v.rowmax if i.op is ReduceOp.MAX else v.rowsum,
                           Repeats.PER_ROW),
    RowExpand: _vector_cost(lambda i, v: v.rowexpand, Repeats.PER_ROW),
    Cast: _vector_cost(lambda i, v: v.cast),
    Dup: _vector_cost(lambda i, v: v.dup),
    FillPad: _vector_cost(lambda i, v: v.fillpad),
    SetFlag: _sync,
    WaitFlag: _sync,
    Barrier: _sync,
}


def cost(instr: Instruction, config: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
    """The cost of one instruction under `config`, with GM regions laid out as `tensors` declares."""
    return COSTS[type(instr)](instr, config, tensors)
