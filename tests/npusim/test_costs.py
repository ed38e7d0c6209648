"""Cost formulas in closed form: every expected figure is worked by hand from the formula of
npusim/costs.py and the numbers of the preset TOML, written out below; none comes from the code.

On-chip and compute costs are asked of `npusim.costs.cost`; GM transfers (load, store, fixpipe to
GM) are timed end to end, by a one-task program on one core, since the memory system times them.

The numbers used, from npusim/presets/910b2.toml (310p where it says so):
  cube:    m0 = n0 = 16, k0_bytes = 32, startup_cycles = 6, fp32_step_cycles = 2, latency_cycles = 16
  mte1:    L1 -> L0A 256 B/cycle, L1 -> L0B 128 B/cycle, latency_cycles = 28
  fixpipe: L0C -> GM 120 B/cycle (310p 114), L0C -> UB 0 (310p 256), latency_cycles = 100, row_cycles 2
  vector:  bytes_per_repeat = 256, latency_cycles = 8; per family (startup, repeat, row) cycles:
           binary (32.5, 2, 0.5), div (49, 5, 0), scalar (29, 1, 0), exp (30, 2, 0), copy (21, 1, 0),
           cast (26, 1, 0), dup (21, 1, 0), fillpad (21, 1, 0), rowmax (63, 2, 4), rowsum (63, 2, 4.5),
           rowexpand (36, 1, 13)
  mte2:    GM -> L1 160 B/cycle (310p 114), GM -> UB 124 (310p 114), burst 32 B, row_cycles 2,
           latency_cycles = 180 (310p 200)
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


# --- mmad: startup 6 + step x ceil(M/m0) * ceil(K/k0) * ceil(N/n0), k0 = k0_bytes / element size,
# step = fp32_step_cycles (2) for fp32 inputs, 1 otherwise ------------------------------------------------

def mmad(dtype: DType, m: int, k: int, n: int) -> Mmad:
    acc = INT32 if dtype is INT8 else FP32
    return Mmad(tile(Space.L0C, acc, m, n), tile(Space.L0A, dtype, m, k), tile(Space.L0B, dtype, k, n))


@pytest.mark.parametrize(("dtype", "m", "k", "n", "occupancy"), [
    # k0 = 32 / 2 = 16 for fp16 and bf16, one cycle a fractal
    # 6 + 1*8*8 = 70, docs/model.md §3
    (BF16, 16, 128, 128, 6 + ceil(16 / 16) * ceil(128 / 16) * ceil(128 / 16)),
    (FP16, 64, 128, 64, 6 + ceil(64 / 16) * ceil(128 / 16) * ceil(64 / 16)),  # 6 + 4*8*4 = 134
    (FP16, 20, 50, 33, 6 + ceil(20 / 16) * ceil(50 / 16) * ceil(33 / 16)),  # 6 + 2*4*3 = 30
    (BF16, 1, 1, 1, 6 + 1 * 1 * 1),  # 7
    # k0 = 32 / 4 = 8 for fp32, two cycles a fractal: a quarter of the fp16 rate
    (FP32, 16, 128, 128, 6 + 2 * ceil(16 / 16) * ceil(128 / 8) * ceil(128 / 16)),  # 6 + 2*1*16*8 = 262
    (FP32, 17, 9, 1, 6 + 2 * ceil(17 / 16) * ceil(9 / 8) * ceil(1 / 16)),  # 6 + 2*(2*2*1) = 14
    # k0 = 32 / 1 = 32 for int8, one cycle a fractal
    (INT8, 16, 128, 128, 6 + ceil(16 / 16) * ceil(128 / 32) * ceil(128 / 16)),  # 6 + 4*8 = 38
    (INT8, 33, 33, 17, 6 + ceil(33 / 16) * ceil(33 / 32) * ceil(17 / 16)),  # 6 + 3*2*2 = 18
])
def test_mmad_counts_fractals_of_m0_k0_n0(dtype, m, k, n, occupancy):
    assert of(mmad(dtype, m, k, n)) == (occupancy, occupancy + 16, 0, 2 * m * k * n)


def test_fp32_mmad_runs_at_a_quarter_of_the_fp16_rate():
    # [16, 128] @ [128, 128]: fp16 64 fractals at 1 cycle, fp32 128 (k0 = 8) at 2 cycles: 4 x the work
    assert of(mmad(FP16, 16, 128, 128))[0] == 6 + 64  # 70
    assert of(mmad(FP32, 16, 128, 128))[0] == 6 + 4 * 64  # 262


def test_the_fp32_step_applies_to_fp32_inputs_only():
    # fp32_step_cycles = 3 and startup 5: distinct from the preset, so the step read wrong shows
    cfg = B2.replace({"cube.fp32_step_cycles": 3, "cube.startup_cycles": 5})
    assert of(mmad(FP32, 32, 16, 16), cfg)[:2] == (5 + 3 * (2 * 2 * 1), 5 + 12 + 16)  # 17, 33
    assert of(mmad(BF16, 32, 16, 16), cfg)[:2] == (5 + 2 * 1 * 1, 5 + 2 + 16)  # 7, 23
    assert of(mmad(FP16, 32, 16, 16), cfg)[:2] == (5 + 2 * 1 * 1, 5 + 2 + 16)
    assert of(mmad(INT8, 32, 32, 16), cfg)[:2] == (5 + 2 * 1 * 1, 5 + 2 + 16)


def test_mmad_tiles_m_by_m0_and_n_by_n0_each():
    cfg = B2.replace({"cube.m0": 8, "cube.n0": 32, "cube.startup_cycles": 0, "cube.latency_cycles": 3})
    # bf16 [40, 16] @ [16, 40]: ceil(40/8) = 5 row fractals, 1 along K, ceil(40/32) = 2 column fractals
    assert of(mmad(BF16, 40, 16, 40), cfg)[:2] == (5 * 1 * 2, 5 * 1 * 2 + 3)


def test_mmad_k0_is_at_least_one_element():
    # k0_bytes = 1 is less than one fp16 element: k0 = max(1, 1 // 2) = 1, one fractal step per K
    cfg = B2.replace({"cube.k0_bytes": 1})
    assert of(mmad(FP16, 16, 5, 16), cfg)[:2] == (6 + 1 * 5 * 1, 6 + 5 + 16)  # 11, 27


# --- MTE1: max(1, ceil(dst bytes / L1->L0A or L1->L0B bandwidth)) + latency 28 ----------------------

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
    assert of(Move(dst, src)) == (occupancy, occupancy + 28, dst.nbytes, 0)
    assert of(Move(tile(dst.space, dst.dtype, dst.cols, dst.rows), src, transpose=True))[:2] == (
        occupancy, occupancy + 28)  # a transposed move moves the same bytes


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


# --- vector: ceil(startup + rows x row_cycles + repeats x repeat_cycles) of the op's family, over the
# largest operand: rows = its rows, repeats = ceil(its bytes / 256), at least one a row for the two-tile
# ops (vadd ... vmin), or for the row-wise families (vrowmax, vrowsum, vrowexpand*)
# rows x ceil(its row bytes / 256); latency adds 8 --------------------------------------------------------

A = tile(Space.UB, FP32, 64, 128)  # 32768 B: 128 repeats; 64 rows of 512 B, 2 repeats a row
COL = tile(Space.UB, FP32, 64, 1)
NARROW = tile(Space.UB, FP32, 64, 8)  # 2048 B: 8 repeats over the tile; 64 rows of 32 B, 1 repeat each


@pytest.mark.parametrize(("instr", "occupancy", "flops"), [
    # 29 + 32 + 224 = 285, docs/model.md §3
    (VecBinary(BinaryOp.ADD, A, A, A), 29 + 64 * 0.5 + 128 * 1.75, 64 * 128),
    (VecBinary(BinaryOp.MAX, A, A, A), 285, 64 * 128),
    # fp16 [16, 100]: 3200 B = 13 repeats over 16 rows, so 16: 29 + 8 + 28 = 65
    (VecBinary(BinaryOp.SUB, *[tile(Space.UB, FP16, 16, 100)] * 3), 65, 1600),
    # fp16 [4, 300]: 2400 B = 10 repeats over 4 rows: 29 + 2 + 17.5 = 48.5, so 49
    (VecBinary(BinaryOp.MIN, *[tile(Space.UB, FP16, 4, 300)] * 3), 49, 1200),
    (VecBinary(BinaryOp.DIV, A, A, A), 49 + 64 * 0 + 128 * 5, 64 * 128),  # vdiv: 689
    (VecScalar(ScalarOp.MULS, A, A, 0.5), 29 + 128 * 1, 64 * 128),  # 157
    (VecUnary(UnaryOp.EXP, A, A), 30 + 128 * 2, 64 * 128),  # 286
    (VecUnary(UnaryOp.COPY, A, A), 21 + 128 * 1, 64 * 128),  # 149
    # the source's rows, each in 2 repeats of its own: 64 x 2 = 128 repeats
    (RowReduce(ReduceOp.MAX, COL, A), 63 + 64 * 4 + 128 * 2, 64),  # 63 + 256 + 256 = 575
    (RowReduce(ReduceOp.SUM, COL, A), 63 + ceil(64 * 4.5) + 128 * 2, 64),  # 63 + 288 + 256 = 607
    (RowExpand(RowExpandOp.SUB, A, A, COL), 36 + 64 * 13 + 128 * 1, 64 * 128),  # 36 + 832 + 128 = 996
    (Cast(A, tile(Space.UB, FP16, 64, 128)), 26 + 128 * 1, 64 * 128),  # the fp32 destination sets it: 154
    (Cast(tile(Space.UB, FP16, 64, 128), A), 26 + 128 * 1, 64 * 128),  # the fp32 source sets it: 154
    (Dup(A, 1.0), 21 + 128 * 1, 64 * 128),  # 149
    (FillPad(A, A, 100, 0.0), 21 + 128 * 1, 64 * 128),  # 149
    # fp16 [16, 100] = 3200 B: ceil(12.5) = 13 repeats
    (VecScalar(ScalarOp.ADDS, tile(Space.UB, FP16, 16, 100), tile(Space.UB, FP16, 16, 100), 1.0),
     29 + ceil(3200 / 256) * 1, 1600),  # 42
    (Dup(tile(Space.UB, FP16, 1, 1), 0.0), 21 + 1, 1),  # 2 B: one repeat
])
def test_vector_ops_on_the_910b2_preset(instr, occupancy, flops):
    assert of(instr) == (occupancy, occupancy + 8, 0, flops)


NARROW_COL = tile(Space.UB, FP32, 64, 1)
ODD = tile(Space.UB, FP32, 16, 100)  # 6400 B: 25 repeats over the tile; 16 rows of 400 B, 2 repeats each


@pytest.mark.parametrize(("instr", "occupancy"), [
    # row-wise: every row in a repeat of its own, 64 repeats where the tile holds 8
    (RowReduce(ReduceOp.MAX, NARROW_COL, NARROW), 63 + 64 * 4 + 64 * 1 * 2),  # 447 ([pto] TROWMAX fit: 494)
    (RowReduce(ReduceOp.SUM, NARROW_COL, NARROW), 63 + ceil(64 * 4.5) + 64 * 1 * 2),  # 63 + 288 + 128 = 479
    (RowExpand(RowExpandOp.MUL, NARROW, NARROW, NARROW_COL), 36 + 64 * 13 + 64 * 1 * 1),  # 932
    # 16 rows of 400 B: 2 repeats each, 32 in all where the tile holds 25: 63 + 64 + 64 = 191
    (RowReduce(ReduceOp.MAX, tile(Space.UB, FP32, 16, 1), ODD), 63 + 16 * 4 + 16 * 2 * 2),
    # two-tile ops count repeats over the whole tile but take at least one a row: 64, not 8
    (VecBinary(BinaryOp.ADD, NARROW, NARROW, NARROW), 29 + 64 * 0.5 + 64 * 1.75),  # 173
    (VecBinary(BinaryOp.ADD, ODD, ODD, ODD), ceil(29 + 16 * 0.5 + 25 * 1.75)),  # 80.75: 81
    # the others count repeats over the whole tile only
    (VecUnary(UnaryOp.EXP, NARROW, NARROW), 30 + 8 * 2),  # 46
])
def test_row_wise_ops_take_each_row_in_repeats_of_its_own(instr, occupancy):
    assert of(instr)[:2] == (occupancy, occupancy + 8)


# Every op family at its own numbers: distinct fractional startups, per-repeat and per-row costs, so a
# family read at another family's numbers (or with the other way of counting repeats, or a sum not
# rounded up) gives a different figure. fp32 [6, 32] = 768 B: 6 rows, 3 repeats over the tile, and 6
# (one a row) for the row-wise families and the two-tile ops but vdiv.
NUMBERS = {  # family: (startup_cycles, repeat_cycles, row_cycles)
    "binary": (10.25, 2.75, 5.0), "div": (20.25, 3.5, 2.5), "scalar": (30.25, 1.75, 0.5),
    "exp": (40.25, 2.5, 3.5), "copy": (50.25, 0.75, 1.5), "cast": (60.25, 0.5, 2.0),
    "dup": (70.25, 1.5, 4.0), "fillpad": (80.25, 3.75, 4.5), "rowmax": (90.25, 1.25, 5.5),
    "rowsum": (100.25, 2.25, 3.0), "rowexpand": (110.25, 3.25, 1.0),
}
DISTINCT = B2.replace({f"vector.{family}.{key}": value for family, (startup, repeat, row) in NUMBERS.items()
                       for key, value in (("startup_cycles", startup), ("repeat_cycles", repeat),
                                          ("row_cycles", row))})
T = tile(Space.UB, FP32, 6, 32)
T_COL = tile(Space.UB, FP32, 6, 1)
FAMILIES = [  # startup + 6 rows x row + 3 (a repeat a row: 6) repeats x repeat, rounded up
    # a repeat a row at least: 10.25 + 6 x 5 + 6 x 2.75 = 56.75
    *[(VecBinary(op, T, T, T), 57) for op in BinaryOp if op is not BinaryOp.DIV],
    (VecBinary(BinaryOp.DIV, T, T, T), 46),  # 20.25 + 6 x 2.5 + 3 x 3.5 = 45.75
    *[(VecScalar(op, T, T, 2.0), 39) for op in ScalarOp],  # 30.25 + 6 x 0.5 + 3 x 1.75 = 38.5
    (VecUnary(UnaryOp.EXP, T, T), 69),  # 40.25 + 6 x 3.5 + 3 x 2.5 = 68.75
    (VecUnary(UnaryOp.COPY, T, T), 62),  # 50.25 + 6 x 1.5 + 3 x 0.75 = 61.5
    (RowReduce(ReduceOp.MAX, T_COL, T), 131),  # 90.25 + 6 x 5.5 + 6 x 1.25 = 130.75
    (RowReduce(ReduceOp.SUM, T_COL, T), 132),  # 100.25 + 6 x 3 + 6 x 2.25 = 131.75
    # vrowexpanddiv too: a row expansion, not vdiv
    *[(RowExpand(op, T, T, T_COL), 136) for op in RowExpandOp],  # 110.25 + 6 x 1 + 6 x 3.25 = 135.75
    (Cast(tile(Space.UB, FP16, 6, 32), T), 74),  # 60.25 + 6 x 2 + 3 x 0.5 = 73.75
    (Dup(T, 3.0), 99),  # 70.25 + 6 x 4 + 3 x 1.5 = 98.75
    (FillPad(T, T, 10, -1.0), 119),  # 80.25 + 6 x 4.5 + 3 x 3.75 = 118.5
]


@pytest.mark.parametrize(("instr", "occupancy"), FAMILIES, ids=[i.mnemonic for i, _ in FAMILIES])
def test_each_vector_family_uses_its_own_numbers(instr, occupancy):
    assert of(instr, DISTINCT)[:2] == (occupancy, occupancy + 8)


def test_an_exact_sum_does_not_round_up():
    # 30 repeats at 0.1 a repeat is 3 cycles (30 * 0.1 is 3.0000000000000004 in floating point)
    cfg = B2.replace({"vector.copy.startup_cycles": 0.0, "vector.copy.repeat_cycles": 0.1})
    src = tile(Space.UB, FP32, 30, 64)  # 7680 B: 30 repeats; vcopy has no per-row cost
    assert of(VecUnary(UnaryOp.COPY, src, src), cfg)[:2] == (3, 3 + 8)


@pytest.mark.parametrize("instr", [
    SetFlag(Pipe.MTE2, Pipe.V, 0), WaitFlag(Pipe.MTE2, Pipe.V, 0), Barrier(Pipe.V), Barrier(None),
    SetFlag(Pipe.S, Pipe.MTE1, 7),
], ids=str)
def test_sync_instructions_cost_nothing(instr):
    assert of(instr) == (0, 0, 0, 0)


# --- GM transfers, end to end -----------------------------------------------------------------------
# occupancy = max(1, ceil(moved / bytes_per_cycle)) + ceil(rows * row_cycles) (the row cost only for
# rows not contiguous in GM, which move in whole 32-byte bursts); end = busy_end + latency_cycles (MTE2
# 180 on 910b2, 200 on 310p).
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


@pytest.mark.parametrize(("name", "config", "dst_space", "region", "tensor", "occupancy", "latency"), [
    # contiguous, all columns: 16 rows x 256 B = 4096 B, no per-row cost
    ("L1 contiguous", B2, Space.L1, GmRegion("x", 0, 0, 16, 128, BF16), X16, ceil(4096 / 160), 180),  # 26
    ("UB contiguous", B2, Space.UB, GmRegion("x", 16, 0, 16, 128, BF16), X16, ceil(4096 / 124), 180),  # 34
    ("310p L1 contiguous", P310, Space.L1, GmRegion("x", 0, 0, 16, 128, BF16), X16, ceil(4096 / 114),
     200),  # 36
    # one KV head: 64 rows of 128 B at row step 2: 4 bursts a row, 8192 B, 2 cycles a row
    ("L1 row step", B2, Space.L1, GmRegion("kc", 129, 0, 64, 64, BF16, row_step=2), KV,
     ceil(64 * ceil(128 / 32) * 32 / 160) + ceil(64 * 2.0), 180),  # 52 + 128 = 180, docs/model.md §3
    ("310p L1 row step", P310, Space.L1, GmRegion("kc", 129, 0, 64, 64, BF16, row_step=2), KV,
     ceil(64 * ceil(128 / 32) * 32 / 114) + ceil(64 * 2.0), 200),  # 72 + 128
    # 100 of 256 fp16 columns: 200 B rows move as 7 bursts = 224 B each
    ("UB partial rows", B2, Space.UB, GmRegion("w", 0, 0, 64, 100, FP16), WIDE,
     ceil(64 * ceil(200 / 32) * 32 / 124) + ceil(64 * 2.0), 180),  # ceil(115.6) + 128 = 244
    # a single row is contiguous whatever its columns: no bursts, no row cost
    ("UB one partial row", B2, Space.UB, GmRegion("w", 3, 10, 1, 100, FP16), WIDE, ceil(200 / 124), 180),  # 2
    ("UB one element", B2, Space.UB, GmRegion("w", 0, 0, 1, 1, FP16), WIDE, max(1, ceil(2 / 124)), 180),
])
def test_load_holds_mte2_for_bytes_over_bandwidth_plus_row_costs(name, config, dst_space, region, tensor,
                                                                 occupancy, latency):
    load = Load(tile(dst_space, region.dtype, region.rows, region.cols), region)
    nbytes = region.rows * region.cols * region.dtype.itemsize
    end = FIRST + occupancy + latency
    assert one_gm_instruction(load, (tensor,), config) == (FIRST, FIRST + occupancy, end, nbytes)


# Each path pays its own row cost and latency: distinct values catch one path read with another's.
PATHS = B2.replace({"mte2.row_cycles": 1.25, "mte3.row_cycles": 2.5, "fixpipe.row_cycles": 3.75,
                    "mte2.latency_cycles": 111, "mte3.latency_cycles": 222, "fixpipe.latency_cycles": 77})


def test_strided_load_pays_the_mte2_row_cost_and_latency():
    region = GmRegion("w", 1, 0, 3, 100, FP16, row_step=2)  # rows 1, 3, 5: 3 rows of 224 B on the wire
    load = Load(tile(Space.UB, FP16, 3, 100), region)
    occupancy = ceil(3 * 224 / 124) + ceil(3 * 1.25)  # ceil(5.42) + ceil(3.75) = 6 + 4 = 10
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
    occupancy = ceil(8192 / 120)  # ceil(68.27) = 69, as tile_matmul's fixpipe in docs/model.md §3.1
    assert one_gm_instruction(fix, (out,), B2) == (FIRST, FIRST + occupancy, FIRST + occupancy + 100, 8192)
    occupancy = ceil(8192 / 114)  # 310p: 72
    assert one_gm_instruction(fix, (out,), P310)[:3] == (FIRST, FIRST + occupancy, FIRST + occupancy + 100)
    part = Fixpipe(GmRegion("out", 0, 0, 3, 20, FP32), tile(Space.L0C, FP32, 3, 20))  # 80 B rows: 3 bursts
    occupancy = ceil(3 * 96 / 120) + ceil(3 * 3.75)  # ceil(2.4) + ceil(11.25) = 3 + 12 = 15
    assert one_gm_instruction(part, (out,), PATHS)[:3] == (FIRST, FIRST + occupancy, FIRST + occupancy + 77)


def test_vexp_computes_at_fp32_width_whatever_its_dtype():
    # fp16 [32, 128]: 4096 elements at 4 bytes a lane = 64 repeats, as many as fp32 [32, 128]; a
    # byte count would give 32. pto-isa's TEXP fit: 0.0314 x 4096 + 30.1 = 158.7 for either dtype.
    half, single = tile(Space.UB, FP16, 32, 128), tile(Space.UB, FP32, 32, 128)
    assert of(VecUnary(UnaryOp.EXP, half, half))[:2] == (30 + 64 * 2, 30 + 64 * 2 + 8)
    assert of(VecUnary(UnaryOp.EXP, single, single))[:2] == (30 + 64 * 2, 30 + 64 * 2 + 8)
    assert of(VecUnary(UnaryOp.COPY, half, half))[:2] == (21 + 32 * 1, 21 + 32 + 8)  # copy: by bytes
