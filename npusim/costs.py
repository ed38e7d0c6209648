"""What each instruction costs: pure functions of (instruction, config, GM tensor layout).

Every cost is a pair of whole cycles. `occupancy` is how long the instruction holds its pipe: the
next instruction of that pipe may start when it ends. `latency` is from start to completion (when
its result is written and flags waiting on it may fire); latency >= occupancy. Formulas:

- DMA (load, store, fixpipe to GM): occupancy = ceil(bytes / path bandwidth) + ceil(rows x
  row_cycles), where a region whose rows are not contiguous in GM (a row step, or fewer columns
  than the tensor has) moves each row in whole bursts and pays `row_cycles` per row (contiguous
  regions pay neither); latency = occupancy + the engine's latency_cycles. That is the figure for
  a core alone on the chip reading from HBM: in a run, the bytes go through the memory system
  (`npusim.memsys`), which shares HBM among cores and serves recently touched lines from L2.
- MTE1 move: occupancy = bytes / L1->L0A or L1->L0B bandwidth; latency adds mte1.latency_cycles.
- mmad: occupancy = startup + ceil(M/m0) * ceil(K/k0) * ceil(N/n0) with k0 = k0_bytes / element
  size (16 for fp16/bf16, 32 for int8, 8 for fp32: half rate); latency adds cube.latency_cycles.
- vector: occupancy = startup + repeats x cycles-per-repeat of the op, where repeats = the largest
  operand's bytes / bytes_per_repeat, rounded up; latency adds vector.latency_cycles.
- set_flag, wait_flag, barrier: no cost of their own; the engine times them (flag_cycles).
"""

from __future__ import annotations

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
from isa.types import Space
from npusim.config import HardwareConfig


@dataclass(frozen=True, slots=True)
class Transfer:
    """A GM access as the chip's memory system sees it; its time depends on who else is moving data."""

    region: GmRegion
    write: bool
    moved: int  # bytes on the wire: whole bursts per row when rows are not contiguous in GM
    cap: float  # bytes per cycle this core's path can carry
    overhead: int  # cycles of per-row cost, spent after the bytes
    latency: int  # from the end of the occupancy to completion (on an L2 miss, and for writes)


@dataclass(frozen=True, slots=True)
class Cost:
    """Cycles an instruction holds its pipe and takes to complete, and the work it does.

    For a GM access, `occupancy` and `latency` are the uncontended figures (an L2 miss with the
    HBM to itself); the engine times it through the memory system from `transfer`.
    """

    occupancy: int
    latency: int
    bytes: int = 0  # bytes moved, for DMA and MTE1
    flops: int = 0  # multiply-adds count 2; a vector op counts 1 per destination element
    transfer: Transfer | None = None


FREE = Cost(0, 0)


def _cycles(x: float) -> int:
    return math.ceil(x - 1e-9)  # whole cycles; the epsilon keeps exact quotients from rounding up


def _gm_transfer(gm: GmRegion, tensors: Mapping[str, Tensor], write: bool, bytes_per_cycle: float,
                 burst: int, row_cycles: float, latency: int, what: str) -> Cost:
    if bytes_per_cycle <= 0:
        raise IsaError(f"this preset has no {what} path (its bandwidth is 0)")
    tensor = tensors[gm.tensor]
    contiguous = gm.row_step == 1 and gm.cols == tensor.matrix_shape[1]
    if contiguous or gm.rows == 1:
        moved, overhead = gm.nbytes, 0
    else:
        row_bytes = gm.cols * gm.dtype.itemsize
        moved = gm.rows * math.ceil(row_bytes / burst) * burst
        overhead = _cycles(gm.rows * row_cycles)
    occ = max(1, _cycles(moved / bytes_per_cycle)) + overhead
    transfer = Transfer(gm, write, moved, bytes_per_cycle, overhead, latency)
    return Cost(occ, occ + latency, bytes=gm.nbytes, transfer=transfer)


def _load(i: Load, c: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
    m = c.mte2
    if i.dst.space is Space.L1:
        bw, what = m.gm_to_l1_bytes_per_cycle, "GM -> L1"
    else:
        bw, what = m.gm_to_ub_bytes_per_cycle, "GM -> UB"
    return _gm_transfer(i.src, tensors, False, bw, m.burst_bytes, m.row_cycles, m.latency_cycles, what)


def _store(i: Store, c: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
    m = c.mte3
    return _gm_transfer(i.dst, tensors, True, m.ub_to_gm_bytes_per_cycle, c.mte2.burst_bytes,
                        m.row_cycles, m.latency_cycles, "UB -> GM")


def _fixpipe(i: Fixpipe, c: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
    f = c.fixpipe
    if isinstance(i.dst, GmRegion):
        return _gm_transfer(i.dst, tensors, True, f.l0c_to_gm_bytes_per_cycle, c.mte2.burst_bytes,
                            f.row_cycles, f.latency_cycles, "L0C -> GM")
    return _on_chip(i.dst, max(i.src.nbytes, i.dst.nbytes), f.l0c_to_ub_bytes_per_cycle, f.latency_cycles,
                    "L0C -> UB")


def _on_chip(dst: Tile, nbytes: int, bytes_per_cycle: float, latency: int, what: str) -> Cost:
    if bytes_per_cycle <= 0:
        raise IsaError(f"this preset has no {what} path (its bandwidth is 0)")
    occ = max(1, _cycles(nbytes / bytes_per_cycle))
    return Cost(occ, occ + latency, bytes=nbytes)


def _move(i: Move, c: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
    m = c.mte1
    if i.dst.space is Space.L0A:
        return _on_chip(i.dst, i.dst.nbytes, m.l1_to_l0a_bytes_per_cycle, m.latency_cycles, "L1 -> L0A")
    return _on_chip(i.dst, i.dst.nbytes, m.l1_to_l0b_bytes_per_cycle, m.latency_cycles, "L1 -> L0B")


def _mmad(i: Mmad, c: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
    cube = c.cube
    (m, k), n = i.a.shape, i.b.shape[1]
    k0 = max(1, cube.k0_bytes // i.a.dtype.itemsize)
    fractals = math.ceil(m / cube.m0) * math.ceil(k / k0) * math.ceil(n / cube.n0)
    occ = cube.startup_cycles + fractals
    return Cost(occ, occ + cube.latency_cycles, flops=2 * m * k * n)


def _vector_cost(cycles_per_repeat: Callable[[Any, HardwareConfig], float]) -> Callable[..., Cost]:
    """The cost function of a vector instruction whose op costs `cycles_per_repeat(instr, config)`."""

    def cost(i: Instruction, c: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
        v = c.vector
        largest = max(r.nbytes for r in (*i.reads, *i.writes))
        repeats = math.ceil(largest / v.bytes_per_repeat)
        occ = v.startup_cycles + _cycles(repeats * cycles_per_repeat(i, c))
        dst = i.writes[0]
        return Cost(occ, occ + v.latency_cycles, flops=dst.shape[0] * dst.shape[1])

    return cost


def _sync(i: Instruction, c: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
    return FREE


COSTS: dict[type[Instruction], Callable[..., Cost]] = {
    Load: _load,
    Move: _move,
    Mmad: _mmad,
    Fixpipe: _fixpipe,
    Store: _store,
    VecBinary: _vector_cost(lambda i, c: c.vector.div if i.op is BinaryOp.DIV else c.vector.binary),
    VecScalar: _vector_cost(lambda i, c: c.vector.scalar),
    VecUnary: _vector_cost(lambda i, c: c.vector.exp if i.op is UnaryOp.EXP else c.vector.copy),
    RowReduce: _vector_cost(lambda i, c: c.vector.reduce),
    RowExpand: _vector_cost(lambda i, c: c.vector.rowexpand),
    Cast: _vector_cost(lambda i, c: c.vector.cast),
    Dup: _vector_cost(lambda i, c: c.vector.dup),
    FillPad: _vector_cost(lambda i, c: c.vector.fillpad),
    SetFlag: _sync,
    WaitFlag: _sync,
    Barrier: _sync,
}


def cost(instr: Instruction, config: HardwareConfig, tensors: Mapping[str, Tensor]) -> Cost:
    """The cost of one instruction under `config`, with GM regions laid out as `tensors` declares."""
    return COSTS[type(instr)](instr, config, tensors)
