"""Cost formulas in closed form: every expected figure is worked by hand from the formula of
npusim/costs.py and the numbers of the preset TOML, written out below; none comes from the code.

On-chip and compute costs are asked of `npusim.costs.cost`; GM transfers (load, store, fixpipe to
GM) are timed end to end, by a one-task program on one core, since the memory system times them.

The numbers used, from npusim/presets/910b2.toml (310p where it says so):
  cube:    m0 = n0 = 16, k0_bytes = 32, startup_cycles = 16, latency_cycles = 16
  mte1:    L1 -> L0A 256 B/cycle, L1 -> L0B 128 B/cycle, latency_cycles = 10
  fixpipe: L0C -> GM 110 B/cycle (310p 114), L0C -> UB 0 (310p 256), latency_cycles = 100, row_cycles 2
  vector:  bytes_per_repeat = 256, startup_cycles = 16, latency_cycles = 8; per repeat binary 2,
           div 4, scalar 1, exp 2, copy 1, cast 1, dup 1, fillpad 1, reduce 4, rowexpand 2
  mte2:    GM -> L1 160 B/cycle (310p 114), GM -> UB 110 (310p 114), burst 32 B, row_cycles 2,
           latency_cycles = 200
  mte3:    UB -> GM 64 B/cycle (310p 114), row_cycles 2, latency_cycles = 200
  chip:    dispatch_cycles = 200; frontend: issue_cycles = 1
"""

from math import ceil

import pytest

from isa import (
    Barrier,
    BinaryOp,
    Cast,
    DType,
    Dup,
    FillPad,
    Fixpipe,
    GmRegion,
    Kernel,
    Load,
    Mmad,
    Move,
    Pipe,
    Program,
    ReduceOp,
    Role,
    RowExpand,
    RowExpandOp,
    RowReduce,
    ScalarOp,
    SetFlag,
    Space,
    Store,
    Tensor,
    Tile,
    UnaryOp,
    VecBinary,
    VecScalar,
    VecUnary,
    WaitFlag,
)
from isa.errors import IsaError
from npusim import load_preset, simulate
from npusim.costs import cost

B2 = load_preset("910b2")
P310 = load_preset("310p")
FP16, BF16, FP32, INT8, INT32 = DType.FP16, DType.BF16, DType.FP32, DType.INT8, DType.INT32


def tile(space: Space, dtype: DType, rows: int, cols: int, offset: int = 0) -> Tile:
    return Tile(space, offset, dtype, (rows, cols))


def of(instr, config=B2):
    """(occupancy, latency, bytes, flops) of an on-chip or compute instruction."""
    c = cost(instr, config, {})
    return c.occupancy, c.latency, c.bytes, c.flops


# --- mmad: startup + ceil(M/m0) * ceil(K/k0) * ceil(N/n0), k0 = k0_bytes / element size ----------------

def mmad(dtype: DType, m: int, k: int, n: int) -> Mmad:
    acc = INT32 if dtype is INT8 else FP32
    return Mmad(tile(Space.L0C, acc, m, n), tile(Space.L0A, dtype, m, k), tile(Space.L0B, dtype, k, n))


@pytest.mark.parametrize(("dtype", "m", "k", "n", "occupancy"), [
    # k0 = 32 / 2 = 16 for fp16 and bf16
    (BF16, 16, 128, 128, 16 + ceil(16 / 16) * ceil(128 / 16) * ceil(128 / 16)),  # 80, docs/model.md §3
    (FP16, 64, 128, 64, 16 + ceil(64 / 16) * ceil(128 / 16) * ceil(64 / 16)),  # 144
    (FP16, 20, 50, 33, 16 + ceil(20 / 16) * ceil(50 / 16) * ceil(33 / 16)),  # 16 + 2*4*3 = 40
    (BF16, 1, 1, 1, 16 + 1 * 1 * 1),
    # k0 = 32 / 4 = 8 for fp32: half the fp16 rate along K
    (FP32, 16, 128, 128, 16 + ceil(16 / 16) * ceil(128 / 8) * ceil(128 / 16)),  # 144
    (FP32, 17, 9, 1, 16 + ceil(17 / 16) * ceil(9 / 8) * ceil(1 / 16)),  # 16 + 2*2*1 = 20
    # k0 = 32 / 1 = 32 for int8
    (INT8, 16, 128, 128, 16 + ceil(16 / 16) * ceil(128 / 32) * ceil(128 / 16)),  # 48
    (INT8, 33, 33, 17, 16 + ceil(33 / 16) * ceil(33 / 32) * ceil(17 / 16)),  # 16 + 3*2*2 = 28
])
def test_mmad_counts_fractals_of_m0_k0_n0(dtype, m, k, n, occupancy):
    assert of(mmad(dtype, m, k, n)) == (occupancy, occupancy + 16, 0, 2 * m * k * n)


def test_mmad_tiles_m_by_m0_and_n_by_n0_each():
    cfg = B2.replace({"cube.m0": 8, "cube.n0": 32, "cube.startup_cycles": 0, "cube.latency_cycles": 3})
    # bf16 [40, 16] @ [16, 40]: ceil(40/8) = 5 row fractals, 1 along K, ceil(40/32) = 2 column fractals
    assert of(mmad(BF16, 40, 16, 40), cfg)[:2] == (5 * 1 * 2, 5 * 1 * 2 + 3)


def test_mmad_k0_is_at_least_one_element():
    # k0_bytes = 1 is less than one fp16 element: k0 = max(1, 1 // 2) = 1, one fractal step per K
    cfg = B2.replace({"cube.k0_bytes": 1})
    assert of(mmad(FP16, 16, 5, 16), cfg)[:2] == (16 + 1 * 5 * 1, 16 + 5 + 16)


# --- MTE1: max(1, ceil(dst bytes / L1->L0A or L1->L0B bandwidth)) + latency 10 ----------------------

@pytest.mark.parametrize(("dst", "occupancy"), [
    (tile(Space.L0A, BF16, 16, 128), 16 * 128 * 2 // 256),  # 4096 B: 16
    (tile(Space.L0B, BF16, 128, 128), 128 * 128 * 2 // 128),  # 32768 B: 256
    (tile(Space.L0A, FP16, 16, 17), ceil(16 * 17 * 2 / 256)),  # 544 B: ceil(2.125) = 3
    (tile(Space.L0B, FP16, 16, 17), ceil(16 * 17 * 2 / 128)),  # 544 B: ceil(4.25) = 5
    (tile(Space.L0A, INT8, 1, 1), 1),  # 1 B: at least one cycle
    (tile(Space.L0B, FP32, 8, 8), 256 // 128),
])
def test_mte1_move_at_the_destination_buffer_rate(dst, occupancy):
    src = tile(Space.L1, dst.dtype, *dst.shape)
    assert of(Move(dst, src)) == (occupancy, occupancy + 10, dst.nbytes, 0)
    assert of(Move(tile(dst.space, dst.dtype, dst.cols, dst.rows), src, transpose=True))[:2] == (
        occupancy, occupancy + 10)  # a transposed move moves the same bytes


# --- fixpipe L0C -> UB (coupled 310p): max(1, ceil(max(src, dst bytes) / 256)) + latency 100 ----------

@pytest.mark.parametrize(("src", "dst", "moved"), [
    (tile(Space.L0C, FP32, 16, 128), tile(Space.UB, FP16, 16, 128), 16 * 128 * 4),  # the fp32 source
    (tile(Space.L0C, FP32, 16, 128), tile(Space.UB, FP32, 16, 128), 16 * 128 * 4),
    (tile(Space.L0C, INT32, 16, 16), tile(Space.UB, INT8, 16, 16), 16 * 16 * 4),
    (tile(Space.L0C, FP32, 16, 17), tile(Space.UB, FP32, 16, 17), 16 * 17 * 4),  # 1088 B
])
def test_fixpipe_to_ub_moves_the_larger_side_on_a_coupled_core(src, dst, moved):
    occupancy = max(1, ceil(moved / 256))  # 8192 B: 32; 1024 B: 4; 1088 B: ceil(4.25) = 5
    assert of(Fixpipe(dst, src), P310) == (occupancy, occupancy + 100, moved, 0)


@pytest.mark.parametrize("config", [B2, P310.replace({"fixpipe.l0c_to_ub_bytes_per_cycle": 0})],
                         ids=["910b2", "310p-without-the-path"])
def test_a_path_of_bandwidth_zero_is_an_error_naming_it(config):
    fix = Fixpipe(tile(Space.UB, FP32, 16, 16), tile(Space.L0C, FP32, 16, 16))
    with pytest.raises(IsaError, match="this preset has no L0C -> UB path"):
        cost(fix, config, {})


# --- vector: startup 16 + ceil(repeats * per repeat), repeats = ceil(largest bytes / 256); + 8 -----------

A = tile(Space.UB, FP32, 64, 128)  # 32768 B: 128 repeats
COL = tile(Space.UB, FP32, 64, 1)


@pytest.mark.parametrize(("instr", "occupancy", "flops"), [
    (VecBinary(BinaryOp.ADD, A, A, A), 16 + 128 * 2, 64 * 128),  # 272, docs/model.md §3
    (VecBinary(BinaryOp.MAX, A, A, A), 16 + 128 * 2, 64 * 128),
    (VecBinary(BinaryOp.DIV, A, A, A), 16 + 128 * 4, 64 * 128),  # vdiv: 4 a repeat
    (VecScalar(ScalarOp.MULS, A, A, 0.5), 16 + 128 * 1, 64 * 128),
    (VecUnary(UnaryOp.EXP, A, A), 16 + 128 * 2, 64 * 128),
    (VecUnary(UnaryOp.COPY, A, A), 16 + 128 * 1, 64 * 128),
    (RowReduce(ReduceOp.MAX, COL, A), 16 + 128 * 4, 64),  # repeats of the source; 528
    (RowExpand(RowExpandOp.SUB, A, A, COL), 16 + 128 * 2, 64 * 128),
    (Cast(A, tile(Space.UB, FP16, 64, 128)), 16 + 128 * 1, 64 * 128),  # the fp32 destination sets it
    (Cast(tile(Space.UB, FP16, 64, 128), A), 16 + 128 * 1, 64 * 128),  # the fp32 source sets it
    (Dup(A, 1.0), 16 + 128 * 1, 64 * 128),
    (FillPad(A, A, 100, 0.0), 16 + 128 * 1, 64 * 128),
    # fp16 [16, 100] = 3200 B: ceil(12.5) = 13 repeats
    (VecScalar(ScalarOp.ADDS, tile(Space.UB, FP16, 16, 100), tile(Space.UB, FP16, 16, 100), 1.0),
     16 + ceil(3200 / 256) * 1, 1600),
    (Dup(tile(Space.UB, FP16, 1, 1), 0.0), 16 + 1, 1),  # 2 B: one repeat
])
def test_vector_ops_on_the_910b2_preset(instr, occupancy, flops):
    assert of(instr) == (occupancy, occupancy + 8, 0, flops)


# Every op family at its own per-repeat rate: distinct fractional rates, so a family read at another
# family's rate, or a product not rounded up, gives a different figure. fp32 [6, 32] = 768 B: 3 repeats.
RATES = {"binary": 2.5, "div": 4.25, "scalar": 1.5, "exp": 3.75, "copy": 0.5, "cast": 1.25, "dup": 0.75,
         "fillpad": 1.75, "reduce": 5.5, "rowexpand": 2.25}
DISTINCT = B2.replace({f"vector.{key}": value for key, value in RATES.items()})
T = tile(Space.UB, FP32, 6, 32)
T_COL = tile(Space.UB, FP32, 6, 1)
FAMILIES = [
    *[(VecBinary(op, T, T, T), 2.5) for op in BinaryOp if op is not BinaryOp.DIV],
    (VecBinary(BinaryOp.DIV, T, T, T), 4.25),
    *[(VecScalar(op, T, T, 2.0), 1.5) for op in ScalarOp],
    (VecUnary(UnaryOp.EXP, T, T), 3.75),
    (VecUnary(UnaryOp.COPY, T, T), 0.5),
    *[(RowReduce(op, T_COL, T), 5.5) for op in ReduceOp],
    *[(RowExpand(op, T, T, T_COL), 2.25) for op in RowExpandOp],  # vrowexpanddiv too: not vdiv's rate
    (Cast(tile(Space.UB, FP16, 6, 32), T), 1.25),
    (Dup(T, 3.0), 0.75),
    (FillPad(T, T, 10, -1.0), 1.75),
]


@pytest.mark.parametrize(("instr", "per_repeat"), FAMILIES, ids=[i.mnemonic for i, _ in FAMILIES])
def test_each_vector_family_uses_its_own_cycles_per_repeat(instr, per_repeat):
    occupancy = 16 + ceil(3 * per_repeat)  # e.g. vdiv: 16 + ceil(12.75) = 29
    assert of(instr, DISTINCT)[:2] == (occupancy, occupancy + 8)


def test_an_exact_product_of_repeats_and_rate_does_not_round_up():
    # 30 repeats at 0.1 a repeat is 3 cycles (30 * 0.1 is 3.0000000000000004 in floating point)
    cfg = B2.replace({"vector.copy": 0.1})
    src = tile(Space.UB, FP32, 30, 64)  # 7680 B: 30 repeats
    assert of(VecUnary(UnaryOp.COPY, src, src), cfg)[:2] == (16 + 3, 16 + 3 + 8)


@pytest.mark.parametrize("instr", [
    SetFlag(Pipe.MTE2, Pipe.V, 0), WaitFlag(Pipe.MTE2, Pipe.V, 0), Barrier(Pipe.V), Barrier(None),
    SetFlag(Pipe.S, Pipe.MTE1, 7),
], ids=str)
def test_sync_instructions_cost_nothing(instr):
    assert of(instr) == (0, 0, 0, 0)


# --- GM transfers, end to end -----------------------------------------------------------------------
# occupancy = max(1, ceil(moved / bytes_per_cycle)) + ceil(rows * row_cycles) (the row cost only for
# rows not contiguous in GM, which move in whole 32-byte bursts); end = busy_end + latency_cycles.
# One task alone on a chip, first touch (an L2 miss): its first instruction issues and starts at
# dispatch_cycles + issue_cycles = 201. On 910b2 the run takes the uncontended fast path of the
# memory system; on 310p (a coupled core can move more than its LPDDR carries) the full fair-share
# one, where a flow alone still runs at its path's rate (114 B/cycle < 204.8 / 1.06 = 193 B/cycle).

FIRST = 200 + 1


def one_gm_instruction(instr, tensors, config):
    """(start, busy_end, end, bytes) of a one-instruction program, from the arrays and the record."""
    trace = simulate(Program.single(Kernel("k", (instr,)), tensors), config, numerics=False).traces[0]
    rec = trace.record(0)
    assert (rec.start, rec.busy_end, rec.end) == (trace.start[0], trace.busy_end[0], trace.end[0])
    return rec.start, rec.busy_end, rec.end, rec.bytes


X16 = Tensor("x", BF16, (48, 128))  # 256 B rows
KV = Tensor("kc", BF16, (4, 64, 2, 64))  # [blocks, block_size, kv_heads, head_dim]: 128 B rows
WIDE = Tensor("w", FP16, (64, 256), Role.OUTPUT)  # 512 B rows


@pytest.mark.parametrize(("name", "config", "dst_space", "region", "tensor", "occupancy"), [
    # contiguous, all columns: 16 rows x 256 B = 4096 B, no per-row cost
    ("L1 contiguous", B2, Space.L1, GmRegion("x", 0, 0, 16, 128, BF16), X16, ceil(4096 / 160)),  # 26
    ("UB contiguous", B2, Space.UB, GmRegion("x", 16, 0, 16, 128, BF16), X16, ceil(4096 / 110)),  # 38
    ("310p L1 contiguous", P310, Space.L1, GmRegion("x", 0, 0, 16, 128, BF16), X16, ceil(4096 / 114)),
    # one KV head: 64 rows of 128 B at row step 2: 4 bursts a row, 8192 B, 2 cycles a row
    ("L1 row step", B2, Space.L1, GmRegion("kc", 129, 0, 64, 64, BF16, row_step=2), KV,
     ceil(64 * ceil(128 / 32) * 32 / 160) + ceil(64 * 2.0)),  # 52 + 128 = 180, docs/model.md §3
    ("310p L1 row step", P310, Space.L1, GmRegion("kc", 129, 0, 64, 64, BF16, row_step=2), KV,
     ceil(64 * ceil(128 / 32) * 32 / 114) + ceil(64 * 2.0)),  # 72 + 128
    # 100 of 256 fp16 columns: 200 B rows move as 7 bursts = 224 B each
    ("UB partial rows", B2, Space.UB, GmRegion("w", 0, 0, 64, 100, FP16), WIDE,
     ceil(64 * ceil(200 / 32) * 32 / 110) + ceil(64 * 2.0)),  # ceil(130.3) + 128 = 259
    # a single row is contiguous whatever its columns: no bursts, no row cost
    ("UB one partial row", B2, Space.UB, GmRegion("w", 3, 10, 1, 100, FP16), WIDE, ceil(200 / 110)),
    ("UB one element", B2, Space.UB, GmRegion("w", 0, 0, 1, 1, FP16), WIDE, max(1, ceil(2 / 110))),
])
def test_load_holds_mte2_for_bytes_over_bandwidth_plus_row_costs(name, config, dst_space, region, tensor,
                                                                 occupancy):
    load = Load(tile(dst_space, region.dtype, region.rows, region.cols), region)
    assert one_gm_instruction(load, (tensor,), config) == (
        FIRST, FIRST + occupancy, FIRST + occupancy + 200, region.rows * region.cols * region.dtype.itemsize)


# Each path pays its own row cost and latency: distinct values catch one path read with another's.
PATHS = B2.replace({"mte2.row_cycles": 1.25, "mte3.row_cycles": 2.5, "fixpipe.row_cycles": 3.75,
                    "mte2.latency_cycles": 111, "mte3.latency_cycles": 222, "fixpipe.latency_cycles": 77})


def test_strided_load_pays_the_mte2_row_cost_and_latency():
    region = GmRegion("w", 1, 0, 3, 100, FP16, row_step=2)  # rows 1, 3, 5: 3 rows of 224 B on the wire
    load = Load(tile(Space.UB, FP16, 3, 100), region)
    occupancy = ceil(3 * 224 / 110) + ceil(3 * 1.25)  # 7 + ceil(3.75) = 11
    assert one_gm_instruction(load, (WIDE,), PATHS)[:3] == (FIRST, FIRST + occupancy, FIRST + occupancy + 111)


def test_store_runs_at_the_ub_to_gm_rate_with_mte2_bursts_and_mte3_rows():
    store = Store(GmRegion("w", 0, 0, 64, 100, FP16), tile(Space.UB, FP16, 64, 100))
    occupancy = ceil(64 * 224 / 64) + ceil(64 * 2.0)  # 224 + 128 = 352, docs/model.md §3
    assert one_gm_instruction(store, (WIDE,), B2) == (FIRST, FIRST + occupancy, FIRST + occupancy + 200,
                                                      64 * 100 * 2)
    occupancy = ceil(3 * 224 / 64) + ceil(3 * 2.5)  # 11 + 8
    three = Store(GmRegion("w", 0, 0, 3, 100, FP16), tile(Space.UB, FP16, 3, 100))
    assert one_gm_instruction(three, (WIDE,), PATHS)[:3] == (FIRST, FIRST + occupancy,
                                                             FIRST + occupancy + 222)


def test_fixpipe_to_gm_runs_at_the_l0c_to_gm_rate():
    out = Tensor("out", FP32, (16, 128), Role.OUTPUT)
    fix = Fixpipe(GmRegion("out", 0, 0, 16, 128, FP32), tile(Space.L0C, FP32, 16, 128))
    occupancy = ceil(8192 / 110)  # ceil(74.47) = 75, as tile_matmul's fixpipe in docs/model.md §3.1
    assert one_gm_instruction(fix, (out,), B2) == (FIRST, FIRST + occupancy, FIRST + occupancy + 100, 8192)
    occupancy = ceil(8192 / 114)  # 310p: 72
    assert one_gm_instruction(fix, (out,), P310)[:3] == (FIRST, FIRST + occupancy, FIRST + occupancy + 100)
    part = Fixpipe(GmRegion("out", 0, 0, 3, 20, FP32), tile(Space.L0C, FP32, 3, 20))  # 80 B rows: 3 bursts
    occupancy = ceil(3 * 96 / 110) + ceil(3 * 3.75)  # 3 + ceil(11.25) = 15
    assert one_gm_instruction(part, (out,), PATHS)[:3] == (FIRST, FIRST + occupancy, FIRST + occupancy + 77)
