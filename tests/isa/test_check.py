"""Tests of isa.check: each rule is broken once and the exact problem text is asserted."""

from __future__ import annotations

import math

import pytest

from isa import (
    Barrier,
    BinaryOp,
    Cast,
    CoreLimits,
    DType,
    Dup,
    FillPad,
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
    RowExpand,
    RowExpandOp,
    RowReduce,
    ScalarOp,
    SetFlag,
    Space,
    Store,
    Task,
    Tensor,
    Tile,
    UnaryOp,
    VecBinary,
    VecScalar,
    VecUnary,
    WaitFlag,
)
from isa.check import check_kernel, check_program, problems
from isa.errors import CheckError

BF16, FP16, FP32, INT8, INT32 = DType.BF16, DType.FP16, DType.FP32, DType.INT8, DType.INT32
L1, L0A, L0B, L0C, UB = Space.L1, Space.L0A, Space.L0B, Space.L0C, Space.UB

TENSORS = (
    Tensor("q", BF16, (64, 64)),
    Tensor("kv", BF16, (4, 16, 2, 64)),  # matrix [128, 64]; row_step 2 picks one KV head
    Tensor("out", FP32, (64, 64)),
    Tensor("ints", INT32, (64, 64)),
)


def limits(without: Space | None = None) -> CoreLimits:
    """A 910B-like core; `without` drops one buffer (an AIC core has no UB)."""
    capacity = {L1: 524288, L0A: 65536, L0B: 65536, L0C: 131072, UB: 196608}
    alignment = {L1: 32, UB: 32, L0A: 512, L0B: 512, L0C: 64}
    capacity.pop(without, None)
    return CoreLimits(capacity, alignment, num_events=8)


def t(space: Space, offset: int, dtype: DType, rows: int, cols: int) -> Tile:
    return Tile(space, offset, dtype, (rows, cols))


def gm(tensor: str, dtype: DType, rows: int = 64, cols: int = 64, row: int = 0, col: int = 0,
       step: int = 1) -> GmRegion:
    return GmRegion(tensor, row, col, rows, cols, dtype, step)


def found(*instrs: Instruction, lim: CoreLimits | None = None) -> list[str]:
    return problems(Kernel("k", instrs), TENSORS, lim or limits())


def only(instr: Instruction, message: str, lim: CoreLimits | None = None) -> None:
    """Assert that the one-instruction kernel has exactly this one problem."""
    assert found(instr, lim=lim) == [f"instruction 0 `{instr}`: {message}"]


def clean_kernel() -> Kernel:
    """A small matmul then a softmax-like vector pass, correctly synchronised."""
    a, b = t(L1, 0, BF16, 64, 64), t(L1, 8192, BF16, 64, 64)
    a0, b0, c = t(L0A, 0, BF16, 64, 64), t(L0B, 0, BF16, 64, 64), t(L0C, 0, FP32, 64, 64)
    x, y, m = t(UB, 0, FP32, 64, 64), t(UB, 16384, FP32, 64, 64), t(UB, 32768, FP32, 64, 1)
    h, i = t(UB, 33024, FP16, 64, 64), t(UB, 41216, INT32, 64, 64)
    return Kernel("clean", (
        Load(a, gm("q", BF16)), Load(b, gm("kv", BF16, row=1, step=2), transpose=True),
        SetFlag(Pipe.MTE2, Pipe.MTE1, 0), WaitFlag(Pipe.MTE2, Pipe.MTE1, 0),
        Move(a0, a), Move(b0, b, transpose=True),
        SetFlag(Pipe.MTE1, Pipe.M, 0), WaitFlag(Pipe.MTE1, Pipe.M, 0),
        Mmad(c, a0, b0), Mmad(c, a0, b0, accumulate=True),
        SetFlag(Pipe.M, Pipe.FIX, 0), WaitFlag(Pipe.M, Pipe.FIX, 0),
        Fixpipe(gm("out", FP32), c),
        Load(x, gm("out", FP32)), Load(i, gm("ints", INT32)),
        FillPad(x, x, 40, -math.inf), RowReduce(ReduceOp.MAX, m, x), RowExpand(RowExpandOp.SUB, y, x, m),
        VecUnary(UnaryOp.EXP, y, y), VecScalar(ScalarOp.MULS, y, y, 0.125), VecBinary(BinaryOp.ADD, x, x, y),
        VecScalar(ScalarOp.ADDS, i, i, 3.0), Cast(h, x), Dup(y, -math.inf), VecUnary(UnaryOp.COPY, x, y),
        Barrier(Pipe.V), SetFlag(Pipe.V, Pipe.MTE3, 7), WaitFlag(Pipe.V, Pipe.MTE3, 7),
        Store(gm("out", FP32), x), Barrier(None),
    ))


def test_clean_kernel_passes_all_entry_points() -> None:
    kernel = clean_kernel()
    assert problems(kernel, TENSORS, limits()) == []
    assert problems(kernel, {x.name: x for x in TENSORS}, limits()) == []
    check_kernel(kernel, TENSORS, limits())
    check_program(Program("p", TENSORS, (Task.of(kernel, "a"), Task.of(kernel, "b"))), limits())


# --- regions --------------------------------------------------------------------------------------


def test_capacity_names_the_buffer_size_and_bytes_needed() -> None:
    only(Move(t(L0A, 0xF000, BF16, 64, 64), t(L1, 0, BF16, 64, 64)),
         "L0A holds 65536 bytes; dst needs bytes 61440..69632")


@pytest.mark.parametrize(("space", "offset", "align"), [(L0A, 0x100, 512), (L1, 16, 32), (L0C, 32, 64)])
def test_alignment_names_the_offset_and_required_alignment(space: Space, offset: int, align: int) -> None:
    dtype = FP32 if space is L0C else BF16
    mmad = Mmad(t(L0C, offset if space is L0C else 0, FP32, 16, 16), t(L0A, 0, BF16, 16, 16),
                t(L0B, 0, BF16, 16, 16))
    instr = mmad if space is L0C else Move(t(L0A, offset if space is L0A else 0, dtype, 16, 16),
                                         t(L1, offset if space is L1 else 0, dtype, 16, 16))
    name = "dst" if space is not L1 else "src"
    only(instr, f"{name} {space.value} offset 0x{offset:04X} is not {align}-byte aligned")


def test_buffer_the_core_lacks_lists_its_buffers() -> None:
    only(Load(t(UB, 0, BF16, 64, 64), gm("q", BF16)),
         "dst is a tile in UB; core has buffers L1, L0A, L0B, L0C", lim=limits(without=UB))


def test_negative_offset_and_empty_shape() -> None:
    instr = VecBinary(BinaryOp.ADD, t(UB, -32, FP32, 8, 8), t(UB, 0, FP32, 0, 8), t(UB, 256, FP32, 8, 8))
    assert found(instr) == [
        f"instruction 0 `{instr}`: dst UB offset -32 is negative",
        f"instruction 0 `{instr}`: src0 shape [0, 8] must be [rows, cols] with both positive",
        f"instruction 0 `{instr}`: shapes differ (dst [8, 8], src0 [0, 8], src1 [8, 8]); they must be one "
        "shape",
    ]


@pytest.mark.parametrize(("region", "message"), [
    (gm("k", BF16), "src reads GM tensor 'k', which is not declared; declared: q, kv, out, ints"),
    (gm("kv", FP16), "src is fp16 but GM tensor kv is bf16"),
    (gm("kv", BF16, rows=0), "src shape [0, 64] must have positive rows and cols"),
    (gm("kv", BF16, rows=64, step=0), "src row step 0 must be at least 1"),
    (gm("kv", BF16, rows=64, row=1, step=2, cols=64), None),  # last row 127 of 128: fits
    (gm("kv", BF16, rows=64, row=2, step=2),
     "src needs rows 2 to 128 (step 2) of kv, whose matrix is [128, 64]: valid rows 0 to 127"),
    (gm("kv", BF16, rows=64, row=-1), "src needs rows -1 to 62 (step 1) of kv, whose matrix is [128, 64]: "
                                      "valid rows 0 to 127"),
    (gm("kv", BF16, rows=64, cols=32, col=32), None),  # cols 32..63: the last column fits
    (gm("kv", BF16, rows=64, cols=32, col=33),
     "src needs cols 33 to 64 of kv, whose matrix is [128, 64]: valid cols 0 to 63"),
])
def test_gm_region_rules(region: GmRegion, message: str | None) -> None:
    instr = Load(t(L1, 0, region.dtype, region.rows, region.cols), region)
    if message is None:
        assert found(instr) == []
    else:
        assert f"instruction 0 `{instr}`: {message}" in found(instr)


# --- data movement and cube -------------------------------------------------------------------


@pytest.mark.parametrize(("instr", "message"), [
    (Load(t(L0A, 0, BF16, 64, 64), gm("q", BF16)), "dst is in L0A; it must be in L1, UB"),
    (Load(t(L1, 0, FP16, 64, 64), gm("q", BF16)),
     "dtypes differ (dst fp16, src bf16); they must be one dtype"),
    (Load(t(UB, 0, BF16, 64, 64), gm("q", BF16), transpose=True), "transpose loads only into L1, not UB"),
    (Load(t(L1, 0, BF16, 64, 32), gm("q", BF16, cols=32), transpose=True),
     "dst shape [64, 32] must be [32, 64] (src transposed)"),
    (Load(t(L1, 0, BF16, 32, 64), gm("q", BF16, cols=32)),
     "dst shape [32, 64] must be [64, 32] (src's shape)"),
])
def test_load_rules(instr: Load, message: str) -> None:
    only(instr, message)


@pytest.mark.parametrize(("instr", "message"), [
    (Move(t(L0C, 0, BF16, 16, 16), t(L1, 0, BF16, 16, 16)), "dst is in L0C; it must be in L0A, L0B"),
    (Move(t(L0A, 0, BF16, 16, 16), t(UB, 0, BF16, 16, 16)), "src is in UB; it must be in L1"),
    (Move(t(L0B, 0, FP16, 16, 16), t(L1, 0, BF16, 16, 16)),
     "dtypes differ (dst fp16, src bf16); they must be one dtype"),
    (Move(t(L0B, 0, BF16, 16, 32), t(L1, 0, BF16, 16, 32), transpose=True),
     "dst shape [16, 32] must be [32, 16] (src transposed)"),
])
def test_move_rules(instr: Move, message: str) -> None:
    only(instr, message)


@pytest.mark.parametrize(("instr", "message"), [
    (Mmad(t(L0C, 0, FP32, 16, 16), t(L0B, 0, BF16, 16, 16), t(L0B, 512, BF16, 16, 16)),
     "a is in L0B; it must be in L0A"),
    (Mmad(t(L0C, 0, FP32, 16, 16), t(L0A, 0, BF16, 16, 16), t(L0B, 0, FP16, 16, 16)),
     "dtypes differ (a bf16, b fp16); they must be one dtype"),
    (Mmad(t(L0C, 0, FP16, 16, 16), t(L0A, 0, FP16, 16, 16), t(L0B, 0, FP16, 16, 16)),
     "dst is fp16; fp16 inputs accumulate in: fp32"),
    (Mmad(t(L0C, 0, FP32, 16, 16), t(L0A, 0, INT8, 16, 32), t(L0B, 0, INT8, 32, 16)),
     "dst is fp32; int8 inputs accumulate in: int32"),
    (Mmad(t(L0C, 0, INT32, 16, 16), t(L0A, 0, INT32, 16, 16), t(L0B, 0, INT32, 16, 16)),
     "a is int32; cube inputs: fp16, bf16, fp32, int8"),
    (Mmad(t(L0C, 0, FP32, 16, 16), t(L0A, 0, BF16, 16, 32), t(L0B, 0, BF16, 16, 16)),
     "b shape [16, 16] must be [32, 16] (K = a's 32 cols)"),
    (Mmad(t(L0C, 0, FP32, 16, 32), t(L0A, 0, BF16, 16, 16), t(L0B, 0, BF16, 16, 16)),
     "dst shape [16, 32] must be [16, 16] (a's rows by b's cols)"),
])
def test_mmad_rules(instr: Mmad, message: str) -> None:
    only(instr, message)


def test_mmad_int8_accumulates_in_int32() -> None:
    assert found(Mmad(t(L0C, 0, INT32, 16, 16), t(L0A, 0, INT8, 16, 32), t(L0B, 0, INT8, 32, 16))) == []


@pytest.mark.parametrize(("instr", "message"), [
    (Fixpipe(gm("out", FP32), t(L1, 0, FP32, 64, 64)), "src is in L1; it must be in L0C"),
    (Fixpipe(gm("q", BF16), t(L0C, 0, FP16, 64, 64)), "src is fp16; valid: fp32, int32"),
    (Fixpipe(t(UB, 0, INT8, 64, 64), t(L0C, 0, FP32, 64, 64)),
     "dst is int8; fp32 converts to: fp32, fp16, bf16"),
    (Fixpipe(gm("q", BF16), t(L0C, 0, INT32, 64, 64)), "dst is bf16; int32 converts to: int32"),
    (Fixpipe(t(L1, 0, FP32, 64, 64), t(L0C, 0, FP32, 64, 64)),
     "dst is in L1; it must be a GM region or a UB tile"),
    (Fixpipe(gm("out", FP32, cols=32), t(L0C, 0, FP32, 64, 64)),
     "shapes differ (dst [64, 32], src [64, 64]); they must be one shape"),
])
def test_fixpipe_rules(instr: Fixpipe, message: str) -> None:
    only(instr, message)


def test_fixpipe_casts_to_ub_and_gm() -> None:
    assert found(Fixpipe(t(UB, 0, FP16, 64, 64), t(L0C, 0, FP32, 64, 64)),
                 Fixpipe(gm("q", BF16), t(L0C, 0, FP32, 64, 64)),
                 Fixpipe(gm("ints", INT32), t(L0C, 0, INT32, 64, 64))) == []


@pytest.mark.parametrize(("instr", "message"), [
    (Store(gm("out", FP32), t(L1, 0, FP32, 64, 64)), "src is in L1; it must be in UB"),
    (Store(gm("q", BF16), t(UB, 0, FP32, 64, 64)),
     "dtypes differ (dst bf16, src fp32); they must be one dtype"),
    (Store(gm("out", FP32, rows=32), t(UB, 0, FP32, 64, 64)),
     "shapes differ (dst [32, 64], src [64, 64]); they must be one shape"),
])
def test_store_rules(instr: Store, message: str) -> None:
    only(instr, message)


def test_transposed_copies_take_the_transposed_shape() -> None:
    assert found(Load(t(L1, 0, BF16, 32, 64), gm("q", BF16, cols=32), transpose=True),
                 Move(t(L0B, 0, BF16, 32, 16), t(L1, 0, BF16, 16, 32), transpose=True)) == []


# --- vector unit ------------------------------------------------------------------------------


@pytest.mark.parametrize(("instr", "message"), [
    (VecBinary(BinaryOp.ADD, t(UB, 0, FP32, 8, 8), t(L1, 0, FP32, 8, 8), t(UB, 256, FP32, 8, 8)),
     "src0 is in L1; it must be in UB"),
    (VecBinary(BinaryOp.MUL, t(UB, 0, FP32, 8, 8), t(UB, 256, FP16, 8, 8), t(UB, 512, FP32, 8, 8)),
     "dtypes differ (dst fp32, src0 fp16, src1 fp32); they must be one dtype"),
    (VecBinary(BinaryOp.SUB, t(UB, 0, FP32, 8, 8), t(UB, 256, FP32, 8, 8), t(UB, 512, FP32, 4, 16)),
     "shapes differ (dst [8, 8], src0 [8, 8], src1 [4, 16]); they must be one shape"),
    (VecBinary(BinaryOp.MAX, t(UB, 0, BF16, 8, 8), t(UB, 128, BF16, 8, 8), t(UB, 256, BF16, 8, 8)),
     "dst is bf16; vmax takes: fp16, fp32, int32"),
    (VecBinary(BinaryOp.DIV, t(UB, 0, INT32, 8, 8), t(UB, 256, INT32, 8, 8), t(UB, 512, INT32, 8, 8)),
     "dst is int32; vdiv takes: fp16, fp32"),
    (VecScalar(ScalarOp.ADDS, t(UB, 0, INT32, 8, 8), t(UB, 256, INT32, 8, 8), 0.5),
     "scalar 0.5 is not held by int32: valid are integers -2147483648..2147483647"),
    (VecScalar(ScalarOp.MULS, t(UB, 0, INT8, 8, 8), t(UB, 256, INT8, 8, 8), 2.0),
     "dst is int8; vmuls takes: fp16, fp32, int32"),
    (VecScalar(ScalarOp.MAXS, t(UB, 0, FP32, 8, 8), t(UB, 256, FP16, 8, 8), 1.0),
     "dtypes differ (dst fp32, src fp16); they must be one dtype"),
    (VecUnary(UnaryOp.EXP, t(UB, 0, INT32, 8, 8), t(UB, 256, INT32, 8, 8)),
     "dst is int32; vexp takes: fp16, fp32"),
    (VecUnary(UnaryOp.COPY, t(UB, 0, INT8, 8, 8), t(UB, 256, INT8, 4, 16)),
     "shapes differ (dst [8, 8], src [4, 16]); they must be one shape"),
    (RowReduce(ReduceOp.MAX, t(UB, 0, FP32, 8, 8), t(UB, 256, FP32, 8, 8)),
     "dst shape [8, 8] must be [8, 1] (one column per src row)"),
    (RowReduce(ReduceOp.SUM, t(UB, 0, INT32, 8, 1), t(UB, 256, INT32, 8, 8)),
     "src is int32; vrowsum takes: fp16, fp32"),
    (RowExpand(RowExpandOp.SUB, t(UB, 0, FP32, 8, 8), t(UB, 256, FP32, 8, 8), t(UB, 512, FP32, 1, 8)),
     "col shape [1, 8] must be [8, 1] (one value per src row)"),
    (RowExpand(RowExpandOp.DIV, t(UB, 0, FP32, 8, 8), t(UB, 256, FP32, 8, 8), t(UB, 512, FP16, 8, 1)),
     "dtypes differ (dst fp32, src fp32, col fp16); they must be one dtype"),
    (RowExpand(RowExpandOp.MUL, t(UB, 0, BF16, 8, 8), t(UB, 256, BF16, 8, 8), t(UB, 512, BF16, 8, 1)),
     "src is bf16; vrowexpandmul takes: fp16, fp32"),
    (Cast(t(UB, 0, FP32, 8, 8), t(UB, 256, FP32, 8, 8)),
     "dst and src are both fp32; use vcopy to copy unconverted"),
    (Cast(t(UB, 0, FP16, 8, 8), t(UB, 256, FP32, 8, 4)),
     "shapes differ (dst [8, 8], src [8, 4]); they must be one shape"),
    (Dup(t(UB, 0, INT8, 8, 8), 300), "value 300 is not held by int8: valid are integers -128..127"),
    (Dup(t(UB, 0, INT32, 8, 8), 1.5),
     "value 1.5 is not held by int32: valid are integers -2147483648..2147483647"),
    (Dup(t(UB, 0, FP16, 8, 8), math.nan), "value is NaN; fp16 operands must be finite or +-inf"),
    (Dup(t(UB, 0, FP16, 8, 8), 1e6),
     "value 1000000.0 overflows fp16 (largest finite 65504); write inf if intended"),
    (Dup(t(L1, 0, FP16, 8, 8), 1.0), "dst is in L1; it must be in UB"),
    (FillPad(t(UB, 0, FP32, 8, 8), t(UB, 0, FP32, 8, 8), 9, 0.0),
     "valid_cols 9 must be in 0..8 (src has 8 cols)"),
    (FillPad(t(UB, 0, FP32, 8, 8), t(UB, 0, FP32, 8, 8), -1, 0.0),
     "valid_cols -1 must be in 0..8 (src has 8 cols)"),
    (FillPad(t(UB, 0, INT32, 8, 8), t(UB, 0, INT32, 8, 8), 4, -math.inf),
     "value -inf is not finite; only fp16, bf16, fp32 hold it"),
    (FillPad(t(UB, 0, FP32, 8, 8), t(UB, 256, FP16, 8, 8), 4, 0.0),
     "dtypes differ (dst fp32, src fp16); they must be one dtype"),
])
def test_vector_rules(instr: Instruction, message: str) -> None:
    only(instr, message)


def test_vector_values_that_fit() -> None:
    assert found(Dup(t(UB, 0, FP16, 8, 8), -math.inf), Dup(t(UB, 0, BF16, 8, 8), 1e38),
                 Dup(t(UB, 0, INT8, 8, 8), -128),
                 FillPad(t(UB, 0, BF16, 8, 8), t(UB, 0, BF16, 8, 8), 0, -math.inf),
                 VecScalar(ScalarOp.MINS, t(UB, 0, INT32, 8, 8), t(UB, 0, INT32, 8, 8), -7.0),
                 Cast(t(UB, 256, INT8, 8, 8), t(UB, 0, BF16, 8, 8))) == []


# --- overlap ------------------------------------------------------------------------------------


def test_partial_overlap_of_dst_and_a_source() -> None:
    only(VecBinary(BinaryOp.ADD, t(UB, 128, FP32, 8, 8), t(UB, 0, FP32, 8, 8), t(UB, 512, FP32, 8, 8)),
         "dst UB bytes 128..384 partially overlap src0 bytes 0..256; "
         "make them identical (in place) or disjoint")


def test_in_place_and_disjoint_operands_are_allowed() -> None:
    assert found(VecBinary(BinaryOp.ADD, t(UB, 0, FP32, 8, 8), t(UB, 0, FP32, 8, 8), t(UB, 256, FP32, 8, 8)),
                 Cast(t(UB, 0, INT32, 8, 8), t(UB, 0, FP32, 8, 8)),  # same bytes, element for element
                 Mmad(t(L0C, 0, FP32, 16, 16), t(L0A, 0, FP16, 16, 16), t(L0B, 0, FP16, 16, 16), True)) == []


def test_same_offset_but_different_size_is_a_partial_overlap() -> None:
    only(Cast(t(UB, 0, FP16, 8, 8), t(UB, 0, FP32, 8, 8)),
         "dst UB bytes 0..128 partially overlap src bytes 0..256; "
         "make them identical (in place) or disjoint")


# --- synchronisation ----------------------------------------------------------------------------


def test_event_out_of_range() -> None:
    s, w = SetFlag(Pipe.MTE2, Pipe.V, 8), WaitFlag(Pipe.MTE2, Pipe.V, 8)
    assert found(s, w) == [f"instruction 0 `{s}`: event 8 is out of range; valid: 0..7",
                           f"instruction 1 `{w}`: event 8 is out of range; valid: 0..7"]


def test_flag_within_one_pipe_suggests_barrier() -> None:
    s, w = SetFlag(Pipe.V, Pipe.V, 0), WaitFlag(Pipe.V, Pipe.V, 0)
    hint = "src and dst are both pipe V; use `barrier V` to order instructions within one pipe"
    assert found(s, w) == [f"instruction 0 `{s}`: {hint}", f"instruction 1 `{w}`: {hint}"]


def test_wait_never_set_names_the_key() -> None:
    s, w = SetFlag(Pipe.MTE2, Pipe.V, 0), WaitFlag(Pipe.MTE2, Pipe.V, 1)
    assert found(s, w) == [f"instruction 1 `{w}`: waits on flag (MTE2, V, 1), which no set_flag in this "
                           "kernel sets; flags set: (MTE2, V, 0)"]


def test_more_waits_than_sets_flags_the_extra_wait() -> None:
    w, s = WaitFlag(Pipe.V, Pipe.MTE2, 0), SetFlag(Pipe.V, Pipe.MTE2, 0)
    # a wait listed before its set is fine (the set is on another pipe); waits past the sets are not
    assert found(w, s, s, w) == []
    never = ("flag (V, MTE2, 0) is set 2 time(s) but waited 4 times; a set releases one wait, "
             "so this one never fires")
    assert found(w, s, w, s, w, w) == [f"instruction {i} `{w}`: {never}" for i in (4, 5)]


def test_barriers_need_no_flags() -> None:
    assert found(*(Barrier(p) for p in Pipe), Barrier(None)) == []


# --- errors and ordering ------------------------------------------------------------------------


def test_check_kernel_raises_with_every_problem_in_index_order() -> None:
    move = Move(t(L0A, 0x100, BF16, 16, 16), t(L1, 0, FP16, 16, 16))
    wait = WaitFlag(Pipe.MTE1, Pipe.M, 9)
    load = Load(t(L1, 0, BF16, 64, 64), gm("missing", BF16))
    kernel = Kernel("bad", (wait, move, load))
    with pytest.raises(CheckError) as caught:
        check_kernel(kernel, TENSORS, limits())
    assert caught.value.problems == [
        f"instruction 0 `{wait}`: event 9 is out of range; valid: 0..7",
        f"instruction 0 `{wait}`: waits on flag (MTE1, M, 9), which no set_flag in this kernel sets; "
        "flags set: none",
        f"instruction 1 `{move}`: dst L0A offset 0x0100 is not 512-byte aligned",
        f"instruction 1 `{move}`: dtypes differ (dst bf16, src fp16); they must be one dtype",
        f"instruction 2 `{load}`: src reads GM tensor 'missing', which is not declared; "
        "declared: q, kv, out, ints",
    ]
    assert str(caught.value).startswith("kernel bad: 5 problem(s) found before running:")


def test_check_program_names_the_failing_kernel() -> None:
    bad = Kernel("second", (Dup(t(UB, 3, FP32, 8, 8), 0.0),))
    with pytest.raises(CheckError, match=r"kernel second: 1 problem\(s\)") as caught:
        check_program(Program("p", TENSORS, (Task.of(clean_kernel()), Task.of(bad))), limits())
    assert caught.value.problems == [f"instruction 0 `{bad.instructions[0]}`: dst UB offset 0x0003 is not "
                                     "32-byte aligned"]


def test_an_object_that_is_no_instruction_is_reported() -> None:
    assert problems(Kernel("k", ("nop",)), TENSORS, limits()) == [  # type: ignore[arg-type]
        "instruction 0: str is not an ISA instruction; valid: Load, Move, Mmad, Fixpipe, Store, VecBinary, "
        "VecScalar, VecUnary, RowReduce, RowExpand, Cast, Dup, FillPad, SetFlag, WaitFlag, Barrier"]


def test_an_instruction_on_a_pipe_the_core_lacks_is_a_problem():
    vector_core = CoreLimits({UB: 196608}, {UB: 32}, num_events=8,
                             pipes=frozenset({Pipe.S, Pipe.MTE2, Pipe.V, Pipe.MTE3}), name="AIV")
    kernel = Kernel("k", (SetFlag(Pipe.M, Pipe.V, 0), WaitFlag(Pipe.M, Pipe.V, 0)))
    assert problems(kernel, TENSORS, vector_core) == [
        f"instruction {i} `{kernel.instructions[i]}`: AIV has no pipe M; its pipes: S, MTE2, MTE3, V"
        for i in (0, 1)
    ]


def test_a_program_checks_each_task_against_its_own_core_even_when_two_cores_share_a_name():
    """Checks shared across a program's kernels are kept per core: an 8 KiB tile fits the big UB only."""
    from isa.cores import CoreKind
    from isa.regions import GmRegion as Gm

    big = CoreLimits({UB: 1 << 20}, {UB: 32}, num_events=8)
    small = CoreLimits({UB: 4096}, {UB: 32}, num_events=8)  # the same default name as `big`
    load = Load(Tile(UB, 0, DType.FP32, (32, 64)), Gm("x", 0, 0, 32, 64, DType.FP32))  # 8 KiB
    x = Tensor("x", DType.FP32, (32, 64))
    tasks = (Task.of(Kernel("a", (load,)), kind=CoreKind.CUBE),
             Task.of(Kernel("b", (load,)), kind=CoreKind.VECTOR))
    with pytest.raises(CheckError, match="UB holds 4096 bytes"):
        check_program(Program("p", (x,), tasks), {CoreKind.CUBE: big, CoreKind.VECTOR: small})
