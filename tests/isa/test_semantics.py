"""Each instruction's semantics against PyTorch on random data, bit-exact where the contract says so."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import torch

from isa.errors import IsaError
from isa.instructions import (
    Barrier,
    BinaryOp,
    Cast,
    Dup,
    FillPad,
    Fixpipe,
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
from isa.regions import GmRegion, Tile
from isa.semantics import compute
from isa.types import DType, Pipe, Space

FP32, FP16, BF16, INT8, INT32 = DType.FP32, DType.FP16, DType.BF16, DType.INT8, DType.INT32
FLOATS = [FP32, FP16, BF16]
TORCH = {FP32: torch.float32, FP16: torch.float16, BF16: torch.bfloat16, INT8: torch.int8, INT32: torch.int32}
UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32}
# Overflow to inf is part of the data here (fp32 -> fp16 casts, exp), as the ISA's IEEE contract says.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")


def ub(dtype: DType, shape: tuple[int, int], offset: int = 0) -> Tile:
    return Tile(Space.UB, offset, dtype, shape)


def to_torch(a: np.ndarray) -> torch.Tensor:
    if a.dtype == ml_dtypes.bfloat16:  # torch.from_numpy does not know ml_dtypes
        return torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(a))


def from_torch(t: torch.Tensor) -> np.ndarray:
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.contiguous().numpy()


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(UINT[a.dtype.itemsize])


def assert_bits_equal(got: np.ndarray, want: np.ndarray, nan_payloads: bool = False) -> None:
    """Bit equality; NaNs only need to be NaN in both unless `nan_payloads` (a copy keeps them)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    if got.dtype.kind != "i" and not nan_payloads:
        nan = np.isnan(got.astype(np.float32))
        np.testing.assert_array_equal(nan, np.isnan(want.astype(np.float32)))
        got, want = got[~nan], want[~nan]
    np.testing.assert_array_equal(bits(got), bits(want))


def ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Distance in units in the last place between same-signed finite floats."""
    return np.abs(bits(got).astype(np.int64) - bits(want).astype(np.int64))


def rand(rng: np.random.Generator, dtype: DType, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    if dtype is INT8:
        return rng.integers(-128, 128, shape, dtype=np.int8)
    if dtype is INT32:
        return rng.integers(-(2**31), 2**31, shape, dtype=np.int32)
    return (rng.standard_normal(shape) * scale).astype(np.float32).astype(dtype.np)


def run(instr, *sources: np.ndarray) -> np.ndarray:
    """compute(), checking the result's dtype and shape and that no source was modified."""
    before = [s.copy() for s in sources]
    out = compute(instr, list(sources))
    dst = instr.dst
    assert out.dtype == dst.dtype.np and out.shape == dst.shape
    for s, b in zip(sources, before, strict=True):
        np.testing.assert_array_equal(bits(s), bits(b))
    return out


# --- data movement ----------------------------------------------------------------------------


@pytest.mark.parametrize("transpose", [False, True])
def test_load_copies_gm_region_optionally_transposed(transpose: bool) -> None:
    src = rand(np.random.default_rng(1), BF16, (16, 48))
    region = GmRegion("k", 0, 0, 16, 48, BF16)
    dst = Tile(Space.L1, 0, BF16, (48, 16) if transpose else (16, 48))
    want = to_torch(src).T if transpose else to_torch(src)
    assert_bits_equal(run(Load(dst, region, transpose), src), from_torch(want))


@pytest.mark.parametrize("transpose", [False, True])
def test_move_copies_l1_tile_optionally_transposed(transpose: bool) -> None:
    src = rand(np.random.default_rng(2), FP16, (32, 16))
    dst = Tile(Space.L0B, 0, FP16, (16, 32) if transpose else (32, 16))
    want = to_torch(src).T if transpose else to_torch(src)
    assert_bits_equal(run(Move(dst, Tile(Space.L1, 0, FP16, (32, 16)), transpose), src), from_torch(want))


def test_store_copies_ub_tile_to_gm() -> None:
    src = rand(np.random.default_rng(3), FP32, (8, 24))
    src.view(np.uint32)[0, 0] = 0xFFC00123  # a NaN with a sign and a payload
    assert_bits_equal(
        run(Store(GmRegion("o", 0, 0, 8, 24, FP32), ub(FP32, (8, 24))), src), src, nan_payloads=True
    )


# --- cube -------------------------------------------------------------------------------------


def mmad(dtype: DType, m: int, k: int, n: int, accumulate: bool, acc: DType = FP32) -> Mmad:
    return Mmad(
        Tile(Space.L0C, 0, acc, (m, n)),
        Tile(Space.L0A, 0, dtype, (m, k)),
        Tile(Space.L0B, 0, dtype, (k, n)),
        accumulate,
    )


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("dtype", [BF16, FP16, FP32])
def test_mmad_float_accumulates_in_fp32(dtype: DType, accumulate: bool) -> None:
    rng = np.random.default_rng(4)
    a, b = rand(rng, dtype, (16, 256)), rand(rng, dtype, (256, 32))
    c = rand(rng, FP32, (16, 32), scale=8.0)
    ta, tb, tc = to_torch(a), to_torch(b), to_torch(c)
    instr = mmad(dtype, 16, 256, 32, accumulate)
    out = run(instr, a, b, c) if accumulate else run(instr, a, b)
    assert out.dtype == np.float32
    # Exactly an fp32 GEMM of the widened inputs (the host's sgemm), plus C rounded in fp32.
    gemm = a.astype(np.float32) @ b.astype(np.float32)
    assert_bits_equal(out, gemm + c if accumulate else gemm)
    # And within fp32 rounding of K terms of the exact result, as torch's fp32 matmul is.
    exact = ta.double() @ tb.double() + (tc.double() if accumulate else 0.0)
    bound = 257 * 2.0**-24 * ((ta.double().abs() @ tb.double().abs()) + tc.double().abs())
    assert torch.all((torch.from_numpy(out).double() - exact).abs() <= bound)
    fp32 = (ta.float() @ tb.float() + (tc if accumulate else 0.0)).double()
    assert torch.all((torch.from_numpy(out).double() - fp32).abs() <= 2 * bound)


def test_mmad_accumulate_adds_the_old_value_in_fp32() -> None:
    a = np.array([[1.0, 2.0]], dtype=np.float16)
    b = np.array([[3.0], [0.5]], dtype=np.float16)
    c = np.array([[0.25]], dtype=np.float32)
    assert run(mmad(FP16, 1, 2, 1, True), a, b, c)[0, 0] == np.float32(4.25)
    assert run(mmad(FP16, 1, 2, 1, False), a, b)[0, 0] == np.float32(4.0)


@pytest.mark.parametrize("accumulate", [False, True])
def test_mmad_int8_accumulates_into_wrapping_int32(accumulate: bool) -> None:
    rng = np.random.default_rng(5)
    a, b, c = rand(rng, INT8, (16, 64)), rand(rng, INT8, (64, 16)), rand(rng, INT32, (16, 16))
    a[0], c[0] = 127, 2**31 - 1  # row 0 overflows where b's column sum is positive
    instr = mmad(INT8, 16, 64, 16, accumulate, acc=INT32)
    out = run(instr, a, b, c) if accumulate else run(instr, a, b)
    want = to_torch(a).long() @ to_torch(b).long() + (to_torch(c).long() if accumulate else 0)
    np.testing.assert_array_equal(out, want.to(torch.int32).numpy())
    assert accumulate or np.abs(want.numpy()).max() < 2**31  # init: no wrap needed to match
    if accumulate:
        assert np.any(want.numpy() >= 2**31), "row 0 should overflow somewhere"


# --- fixpipe and cast -------------------------------------------------------------------------


def halfway_fp32(rng: np.random.Generator, dtype: DType, n: int) -> np.ndarray:
    """fp32 values exactly halfway between two neighbouring finite `dtype` values."""
    lo = rand(rng, dtype, (n,)).astype(np.float32)
    hi = np.nextafter(lo.astype(dtype.np), np.array(np.inf, dtype.np)).astype(np.float32)
    return ((lo.astype(np.float64) + hi) / 2).astype(np.float32)  # exact: both have few bits


@pytest.mark.parametrize("dtype", [BF16, FP16])
def test_fixpipe_fp32_to_narrow_matches_torch_bitwise(dtype: DType) -> None:
    rng = np.random.default_rng(6)
    src = np.concatenate([rand(rng, FP32, (512,), 100.0), halfway_fp32(rng, dtype, 512)]).reshape(32, 32)
    instr = Fixpipe(GmRegion("o", 0, 0, 32, 32, dtype), Tile(Space.L0C, 0, FP32, (32, 32)))
    assert_bits_equal(run(instr, src), from_torch(to_torch(src).to(TORCH[dtype])))


@pytest.mark.parametrize("dtype", [FP32, INT32])
def test_fixpipe_same_dtype_is_a_bit_copy(dtype: DType) -> None:
    src = rand(np.random.default_rng(7), dtype, (16, 16))
    src.view(np.uint32)[3, 3] = 0xFFC00123  # a NaN with a payload in fp32
    out = run(Fixpipe(ub(dtype, (16, 16)), Tile(Space.L0C, 0, dtype, (16, 16))), src)
    assert_bits_equal(out, src, nan_payloads=True)


FLOAT_PAIRS = [(s, d) for s in FLOATS for d in FLOATS if s is not d]


@pytest.mark.parametrize(("src_t", "dst_t"), FLOAT_PAIRS, ids=[f"{s}-{d}" for s, d in FLOAT_PAIRS])
def test_cast_float_to_float_matches_torch_bitwise(src_t: DType, dst_t: DType) -> None:
    rng = np.random.default_rng(8)
    values = np.concatenate([rand(rng, FP32, (1000,), 1000.0), [np.inf, -np.inf, 0.0, -0.0, 1e-30, 7e4]])
    if src_t is FP32 and dst_t is not FP32:
        values = np.concatenate([values, halfway_fp32(rng, dst_t, 1000)])
    src = values.astype(np.float32).astype(src_t.np).reshape(1, -1)
    out = run(Cast(ub(dst_t, src.shape), ub(src_t, src.shape)), src)
    assert_bits_equal(out, from_torch(to_torch(src).to(TORCH[dst_t])))


def test_cast_fp32_to_bf16_ties_go_to_even() -> None:
    # fp32 bits b<<16 | 0x8000 lie exactly halfway between bf16 b and b+1.
    low = np.arange(0x3F80, 0x3F80 + 64, dtype=np.uint32)
    src = ((low << 16) | 0x8000).view(np.float32).reshape(1, -1)
    out = bits(run(Cast(ub(BF16, src.shape), ub(FP32, src.shape)), src))[0]
    np.testing.assert_array_equal(out, np.where(low % 2 == 0, low, low + 1))


CAST_TO_INT = [
    (
        FP32,
        INT32,
        [0.5, 1.5, 2.5, -0.5, -2.5, 3.7, -3.7, 1e10, -1e10, np.inf, -np.inf, np.nan, 2147483520.0],
        [0, 2, 2, 0, -2, 4, -4, 2**31 - 1, -(2**31), 2**31 - 1, -(2**31), 0, 2147483520],
    ),
    (
        FP16,
        INT8,
        [127.5, 128.0, -128.5, -129.0, 300.0, 0.5, np.nan, -np.inf],
        [127, 127, -128, -128, 127, 0, 0, -128],
    ),
    (BF16, INT32, [2.5, -1.5, 3e38, np.nan, 256.0], [2, -2, 2**31 - 1, 0, 256]),
    (FP32, INT8, [126.5, 125.5, -127.5, 1e9], [126, 126, -128, 127]),
]


@pytest.mark.parametrize(("src_t", "dst_t", "values", "want"), CAST_TO_INT)
def test_cast_float_to_int_rounds_half_even_saturates_and_zeroes_nan(src_t, dst_t, values, want) -> None:
    src = np.array([values], dtype=np.float32).astype(src_t.np)
    out = run(Cast(ub(dst_t, src.shape), ub(src_t, src.shape)), src)
    np.testing.assert_array_equal(out[0], np.array(want, dtype=dst_t.np))


@pytest.mark.parametrize("src_t", FLOATS)
def test_cast_float_to_int32_matches_torch_round_in_range(src_t: DType) -> None:
    src = rand(np.random.default_rng(9), src_t, (8, 64), scale=300.0)
    out = run(Cast(ub(INT32, src.shape), ub(src_t, src.shape)), src)
    np.testing.assert_array_equal(out, torch.round(to_torch(src).double()).to(torch.int32).numpy())


INT_TO_FLOAT = [(s, d) for s in (INT8, INT32) for d in FLOATS]


@pytest.mark.parametrize(("src_t", "dst_t"), INT_TO_FLOAT, ids=[f"{s}-{d}" for s, d in INT_TO_FLOAT])
def test_cast_int_to_float_matches_torch(src_t: DType, dst_t: DType) -> None:
    src = rand(np.random.default_rng(10), src_t, (4, 256))
    if src_t is INT32:
        src[0, :8] = [0, 1, -1, 2**24 + 1, 2**31 - 1, -(2**31), 65519, 65520]
    out = run(Cast(ub(dst_t, src.shape), ub(src_t, src.shape)), src)
    assert_bits_equal(out, from_torch(to_torch(src).to(TORCH[dst_t])))


def test_cast_int_to_int_saturates_down_and_is_exact_up() -> None:
    wide = np.array([[300, -300, 127, -128, 5, 2**31 - 1]], dtype=np.int32)
    np.testing.assert_array_equal(
        run(Cast(ub(INT8, (1, 6)), ub(INT32, (1, 6))), wide), [[127, -128, 127, -128, 5, 127]]
    )
    narrow = np.array([[-128, 127, 0]], dtype=np.int8)
    np.testing.assert_array_equal(run(Cast(ub(INT32, (1, 3)), ub(INT8, (1, 3))), narrow), [[-128, 127, 0]])


# --- vector element-wise ----------------------------------------------------------------------

TORCH_BINARY = {
    BinaryOp.ADD: torch.add,
    BinaryOp.SUB: torch.sub,
    BinaryOp.MUL: torch.mul,
    BinaryOp.DIV: torch.div,
    BinaryOp.MAX: torch.maximum,
    BinaryOp.MIN: torch.minimum,
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", list(BinaryOp))
def test_vec_binary_matches_torch_bitwise(op: BinaryOp, dtype: DType) -> None:
    rng = np.random.default_rng(11)
    x, y = rand(rng, dtype, (16, 128), 100.0), rand(rng, dtype, (16, 128), 0.01)
    x[0, :3], y[0, :3] = np.nan, [1.0, np.nan, 0.0]
    out = run(VecBinary(op, ub(dtype, x.shape), ub(dtype, x.shape), ub(dtype, x.shape, 0x8000)), x, y)
    assert_bits_equal(out, from_torch(TORCH_BINARY[op](to_torch(x), to_torch(y))))


def test_vec_binary_int32_wraps_and_has_no_division() -> None:
    x = np.array([[2**31 - 1, -(2**31), 7]], dtype=np.int32)
    y = np.array([[1, -1, -9]], dtype=np.int32)
    t = ub(INT32, (1, 3))
    np.testing.assert_array_equal(run(VecBinary(BinaryOp.ADD, t, t, t), x, y), [[-(2**31), 2**31 - 1, -2]])
    np.testing.assert_array_equal(run(VecBinary(BinaryOp.MUL, t, t, t), x, y), [[2**31 - 1, -(2**31), -63]])
    with pytest.raises(IsaError, match="vdiv has no int32 form"):
        compute(VecBinary(BinaryOp.DIV, t, t, t), [x, y])


TORCH_SCALAR = {
    ScalarOp.ADDS: torch.add,
    ScalarOp.MULS: torch.mul,
    ScalarOp.MAXS: torch.maximum,
    ScalarOp.MINS: torch.minimum,
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", list(ScalarOp))
@pytest.mark.parametrize("scalar", [0.1, -3.3333333333, 1e-3])
def test_vec_scalar_rounds_scalar_to_tile_dtype_first(op: ScalarOp, dtype: DType, scalar: float) -> None:
    x = rand(np.random.default_rng(12), dtype, (8, 64))
    out = run(VecScalar(op, ub(dtype, x.shape), ub(dtype, x.shape), scalar), x)
    s = torch.tensor(scalar, dtype=torch.float32).to(TORCH[dtype])  # the contract: via fp32
    assert_bits_equal(out, from_torch(TORCH_SCALAR[op](to_torch(x), s)))


def test_vec_scalar_int32() -> None:
    x = np.array([[1, -5, 2**31 - 1]], dtype=np.int32)
    t = ub(INT32, (1, 3))
    np.testing.assert_array_equal(run(VecScalar(ScalarOp.ADDS, t, t, 1.5), x), [[3, -3, -(2**31) + 1]])
    np.testing.assert_array_equal(run(VecScalar(ScalarOp.MAXS, t, t, 0.0), x), [[1, 0, 2**31 - 1]])


@pytest.mark.parametrize("dtype", FLOATS)
def test_vec_exp_within_ulps_of_torch(dtype: DType) -> None:
    x = rand(np.random.default_rng(13), dtype, (16, 256), 10.0)
    out = run(VecUnary(UnaryOp.EXP, ub(dtype, x.shape), ub(dtype, x.shape)), x)
    want = from_torch(torch.exp(to_torch(x)))
    finite = np.isfinite(want.astype(np.float32)) & (want.astype(np.float32) > 0)
    assert finite.sum() > 1000
    assert ulps(out[finite], want[finite]).max() <= (2 if dtype is FP32 else 1)
    np.testing.assert_array_equal(out[~finite].astype(np.float32), want[~finite].astype(np.float32))


@pytest.mark.parametrize("dtype", [*FLOATS, INT8, INT32])
def test_vec_copy_is_a_bit_copy(dtype: DType) -> None:
    x = rand(np.random.default_rng(14), dtype, (4, 32))
    if dtype.is_float:
        x.view(UINT[dtype.itemsize])[0, 0] = np.iinfo(UINT[dtype.itemsize]).max  # a NaN with a payload
    out = run(VecUnary(UnaryOp.COPY, ub(dtype, x.shape), ub(dtype, x.shape)), x)
    assert_bits_equal(out, x, nan_payloads=True)


def test_vec_exp_has_no_int_form() -> None:
    with pytest.raises(IsaError, match="vexp has no int32 form"):
        compute(VecUnary(UnaryOp.EXP, ub(INT32, (1, 4)), ub(INT32, (1, 4))), [np.zeros((1, 4), np.int32)])


# --- rows -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS)
def test_row_max_matches_torch(dtype: DType) -> None:
    x = rand(np.random.default_rng(15), dtype, (16, 200))
    out = run(RowReduce(ReduceOp.MAX, ub(dtype, (16, 1)), ub(dtype, x.shape)), x)
    assert_bits_equal(out, from_torch(torch.amax(to_torch(x), dim=1, keepdim=True)))


@pytest.mark.parametrize("dtype", FLOATS)
def test_row_sum_accumulates_left_to_right_in_fp32(dtype: DType) -> None:
    x = rand(np.random.default_rng(16), dtype, (8, 300))
    out = run(RowReduce(ReduceOp.SUM, ub(dtype, (8, 1)), ub(dtype, x.shape)), x)
    for r in range(8):
        acc = np.float32(0)
        for v in x[r].astype(np.float32):
            acc = np.float32(acc + v)
        assert bits(out[r])[0] == bits(np.array([acc]).astype(dtype.np))[0]
    want = to_torch(x).double().sum(dim=1, keepdim=True)
    torch.testing.assert_close(
        to_torch(out).double(), want, rtol=1e-2 if dtype is not FP32 else 1e-5, atol=1e-3
    )


def test_row_sum_order_is_sequential_not_pairwise() -> None:
    # Sequentially every 2^-24 ties back to 1.0; a pairwise sum would keep 16 * 2^-24.
    x = np.array([[1.0] + [2.0**-24] * 16], dtype=np.float32)
    assert run(RowReduce(ReduceOp.SUM, ub(FP32, (1, 1)), ub(FP32, x.shape)), x)[0, 0] == np.float32(1.0)


TORCH_EXPAND = {RowExpandOp.SUB: torch.sub, RowExpandOp.MUL: torch.mul, RowExpandOp.DIV: torch.div}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", list(RowExpandOp))
def test_row_expand_broadcasts_column_along_rows(op: RowExpandOp, dtype: DType) -> None:
    rng = np.random.default_rng(17)
    x, col = rand(rng, dtype, (16, 64), 10.0), rand(rng, dtype, (16, 1))
    out = run(RowExpand(op, ub(dtype, x.shape), ub(dtype, x.shape), ub(dtype, (16, 1), 0x8000)), x, col)
    assert_bits_equal(out, from_torch(TORCH_EXPAND[op](to_torch(x), to_torch(col))))


# --- fills ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "value"), [(FP32, 0.1), (BF16, 0.1), (FP16, -np.inf), (FP16, 1e6), (BF16, 1 / 3)]
)
def test_dup_fills_with_value_rounded_via_fp32(dtype: DType, value: float) -> None:
    out = run(Dup(ub(dtype, (4, 32)), value))
    want = torch.full((4, 32), value, dtype=torch.float32).to(TORCH[dtype])
    assert_bits_equal(out, from_torch(want))


def test_dup_int32_rounds_half_even() -> None:
    np.testing.assert_array_equal(run(Dup(ub(INT32, (1, 2)), 2.5)), [[2, 2]])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("valid_cols", [0, 5, 64])
def test_fill_pad_masks_columns_from_valid_cols(dtype: DType, valid_cols: int) -> None:
    x = rand(np.random.default_rng(18), dtype, (8, 64))
    out = run(FillPad(ub(dtype, x.shape), ub(dtype, x.shape), valid_cols, -np.inf), x)
    mask = torch.arange(64) >= valid_cols
    assert_bits_equal(out, from_torch(to_torch(x).masked_fill(mask, float("-inf"))))


# --- what computes nothing --------------------------------------------------------------------


@pytest.mark.parametrize("instr", [SetFlag(Pipe.MTE2, Pipe.V, 0), WaitFlag(Pipe.MTE2, Pipe.V, 0), Barrier()])
def test_compute_rejects_sync_instructions(instr) -> None:
    with pytest.raises(TypeError, match="computes nothing"):
        compute(instr, [])
