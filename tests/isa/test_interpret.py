"""The machine state (on-chip buffers, GM tensors) and the interpreter, against torch."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import torch

from isa.asm import parse_program
from isa.errors import IsaError
from isa.instructions import (
    Barrier,
    Fixpipe,
    Load,
    Mmad,
    Move,
    ReduceOp,
    RowExpand,
    RowExpandOp,
    RowReduce,
    SetFlag,
    Store,
    UnaryOp,
    VecUnary,
    WaitFlag,
)
from isa.interpret import execute, interpret
from isa.limits import CoreLimits
from isa.memory import CoreMemory, GlobalMemory, MachineState
from isa.program import Kernel, Program, Role, Tensor
from isa.regions import GmRegion, Tile
from isa.types import DType, Pipe, Space

BF16, FP16, FP32, INT32 = DType.BF16, DType.FP16, DType.FP32, DType.INT32
L1, L0A, L0B, L0C, UB = Space.L1, Space.L0A, Space.L0B, Space.L0C, Space.UB


def limits(without: Space | None = None) -> CoreLimits:
    """A 910B-like core; `without` drops one buffer (a cube core has no UB)."""
    capacity = {L1: 512 * 1024, L0A: 64 * 1024, L0B: 64 * 1024, L0C: 128 * 1024, UB: 192 * 1024}
    alignment = {L1: 32, UB: 32, L0A: 512, L0B: 512, L0C: 64}
    capacity.pop(without, None)
    alignment.pop(without, None)
    return CoreLimits(capacity, alignment, num_events=8)


def bf16_to_torch(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(torch.bfloat16)


def rand_bf16(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32).astype(ml_dtypes.bfloat16)


# --- on-chip memory ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "is_poison"), [(FP32, np.isnan), (FP16, np.isnan), (BF16, np.isnan), (INT32, lambda v: v == -1)]
)
def test_never_written_tile_reads_as_poison(dtype: DType, is_poison) -> None:
    core = CoreMemory(limits())
    core.write(Tile(UB, 0, FP32, (1, 8)), np.zeros((1, 8), np.float32))  # neighbours stay poisoned
    value = core.read(Tile(UB, 64, dtype, (4, 16)))
    assert value.dtype == dtype.np and value.shape == (4, 16)
    assert np.all(is_poison(value.astype(np.float64)))


def test_tile_write_then_read_round_trips_and_reads_are_copies() -> None:
    core = CoreMemory(limits())
    tile = Tile(L1, 0x200, BF16, (16, 32))
    value = rand_bf16(np.random.default_rng(0), (16, 32))
    core.write(tile, value)
    got = core.read(tile)
    np.testing.assert_array_equal(got.view(np.uint16), value.view(np.uint16))
    got[:] = 0  # must not reach the buffer: the timing engine holds read values across later writes
    np.testing.assert_array_equal(core.read(tile).view(np.uint16), value.view(np.uint16))


def test_tiles_are_views_of_one_byte_buffer_per_space() -> None:
    core = CoreMemory(limits())
    core.write(Tile(UB, 32, FP32, (1, 2)), np.array([[1.0, -2.0]], np.float32))
    np.testing.assert_array_equal(core.read(Tile(UB, 32, INT32, (1, 2))), [[0x3F800000, -0x40000000]])
    assert np.isnan(core.read(Tile(L1, 32, FP32, (1, 2)))).all()  # another space, still poisoned


def test_tile_outside_buffer_or_core_is_an_error() -> None:
    core = CoreMemory(limits(without=UB))
    with pytest.raises(IsaError, match="UB is not a buffer of this core; it has"):
        core.read(Tile(UB, 0, FP32, (1, 8)))
    with pytest.raises(IsaError, match="L0A holds 65536 bytes"):
        core.read(Tile(L0A, 65536 - 512, FP16, (16, 32)))


def test_write_rejects_a_value_of_another_dtype() -> None:
    with pytest.raises(TypeError):
        CoreMemory(limits()).write(Tile(UB, 0, BF16, (1, 4)), np.zeros((1, 4), np.float32))


# --- global memory ----------------------------------------------------------------------------

TENSORS = (
    Tensor("q", BF16, (4, 2, 16)),
    Tensor("ids", INT32, (8,)),
    Tensor("out", FP32, (8, 16), Role.OUTPUT),
    Tensor("ws", FP16, (4, 4), Role.WORKSPACE),
)


def gm_inputs() -> dict[str, np.ndarray]:
    return {"q": rand_bf16(np.random.default_rng(1), (4, 2, 16)), "ids": np.arange(8, dtype=np.int32)}


def test_gm_outputs_and_workspaces_start_zero_and_inputs_are_copied() -> None:
    inputs = gm_inputs()
    gm = GlobalMemory(TENSORS, inputs)
    inputs["ids"][0] = 99  # the caller's array is not the GM tensor
    tensors = gm.tensors()
    assert sorted(tensors) == ["ids", "out", "q", "ws"]
    assert tensors["ids"][0] == 0 and tensors["q"].shape == (4, 2, 16)
    assert tensors["out"].dtype == np.float32 and not tensors["out"].any()
    assert tensors["ws"].dtype == np.float16 and not tensors["ws"].any()
    given = GlobalMemory(TENSORS, {**gm_inputs(), "out": np.ones((8, 16), np.float32)}).tensors()
    assert (given["out"] == 1).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"q": None}, r"input tensor q \(bf16\[4, 2, 16\]\) was not given"),
        ({"q": np.zeros((4, 2, 16), np.float32)}, r"tensor q: given dtype float32 .*expected .*dtype bf16"),
        ({"ids": np.zeros((2, 4), np.int32)}, r"tensor ids: given .*shape \[2, 4\]; expected .*shape \[8\]"),
        ({"k": np.zeros(3, np.float32)}, r"undeclared tensor\(s\) k; declared: q, ids, out, ws"),
        (
            {"ids": torch.arange(8, dtype=torch.int32)},
            r"tensor ids: given a torch.Tensor; expected a numpy array",
        ),
    ],
)
def test_gm_rejects_bad_inputs_naming_the_tensor(change: dict, message: str) -> None:
    inputs = {**gm_inputs(), **change}
    inputs = {k: v for k, v in inputs.items() if v is not None}
    with pytest.raises(IsaError, match=message):
        GlobalMemory(TENSORS, inputs)


def test_strided_gm_region_is_one_kv_head_of_a_paged_cache() -> None:
    blocks, block_size, kv_heads, head_dim = 5, 16, 3, 32
    cache = rand_bf16(np.random.default_rng(2), (blocks, block_size, kv_heads, head_dim))
    gm = GlobalMemory([Tensor("k", BF16, cache.shape)], {"k": cache})
    want = bf16_to_torch(cache).clone()
    for b, h in [(0, 0), (3, 2), (4, 1)]:
        region = GmRegion(
            "k", b * block_size * kv_heads + h, 0, block_size, head_dim, BF16, row_step=kv_heads
        )
        got = gm.read(region)
        assert torch.equal(bf16_to_torch(got), want[b, :, h, :])
        new = rand_bf16(np.random.default_rng(b), (block_size, head_dim))
        gm.write(region, new)
        want[b, :, h, :] = bf16_to_torch(new)
    assert torch.equal(bf16_to_torch(gm.tensors()["k"]), want)  # nothing else changed


@pytest.mark.parametrize(
    "region",
    [
        GmRegion("q", 0, 0, 9, 16, BF16),  # one row past the [8, 16] matrix
        GmRegion("q", 2, 0, 4, 16, BF16, row_step=2),  # rows 2, 4, 6, 8
        GmRegion("q", 0, 8, 8, 9, BF16),
        GmRegion("q", -1, 0, 2, 16, BF16),
    ],
)
def test_gm_region_outside_its_tensor_is_an_error(region: GmRegion) -> None:
    gm = GlobalMemory(TENSORS, gm_inputs())
    with pytest.raises(IsaError, match=r"outside the tensor's \[8, 16\] matrix \(shape \[4, 2, 16\]\)"):
        gm.read(region)
    with pytest.raises(IsaError, match="outside"):
        gm.write(region, np.zeros(region.shape, ml_dtypes.bfloat16))


def test_gm_strided_region_may_end_on_the_last_row() -> None:
    inputs = gm_inputs()
    got = GlobalMemory(TENSORS, inputs).read(GmRegion("q", 1, 0, 4, 16, BF16, row_step=2))
    np.testing.assert_array_equal(got.view(np.uint16), inputs["q"].reshape(8, 16)[1::2].view(np.uint16))


def test_gm_region_of_an_undeclared_tensor_is_an_error() -> None:
    with pytest.raises(IsaError, match="GM has no tensor 'nope'; declared: q, ids, out, ws"):
        GlobalMemory(TENSORS, gm_inputs()).read(GmRegion("nope", 0, 0, 1, 1, BF16))


def test_machine_state_dispatches_tiles_to_the_core_and_regions_to_gm() -> None:
    inputs = gm_inputs()
    state = MachineState(CoreMemory(limits()), GlobalMemory(TENSORS, inputs))
    region, tile = GmRegion("q", 2, 0, 2, 16, BF16), Tile(UB, 0, BF16, (2, 16))
    execute(Load(tile, region), state)
    want = inputs["q"].reshape(8, 16)[2:4]
    np.testing.assert_array_equal(state.read(tile).view(np.uint16), want.view(np.uint16))
    state.write(GmRegion("q", 0, 0, 2, 16, BF16), state.read(tile))
    np.testing.assert_array_equal(state.gm.tensors()["q"][0].view(np.uint16), want.view(np.uint16))


# --- the interpreter --------------------------------------------------------------------------


def matmul_program(m: int, k: int, n: int) -> Program:
    """out = q @ kt.T (kt is [n, k], loaded transposed), K split in two chunks: init then accumulate."""
    half = k // 2
    instrs = [
        Load(Tile(L1, 0x4000, BF16, (k, n)), GmRegion("kt", 0, 0, n, k, BF16), transpose=True),
        SetFlag(Pipe.MTE2, Pipe.MTE1, 0),
        WaitFlag(Pipe.MTE2, Pipe.MTE1, 0),
    ]
    for i, accumulate in enumerate([False, True]):
        # q's K chunk goes through L1 transposed and back (both transposes); kt^T's is a row block.
        instrs += [
            Load(
                Tile(L1, 0x10000, BF16, (half, m)), GmRegion("q", 0, i * half, m, half, BF16), transpose=True
            ),
            Move(Tile(L0A, 0, BF16, (m, half)), Tile(L1, 0x10000, BF16, (half, m)), transpose=True),
            Move(Tile(L0B, 0, BF16, (half, n)), Tile(L1, 0x4000 + i * half * n * 2, BF16, (half, n))),
            Barrier(Pipe.MTE1),
            Mmad(
                Tile(L0C, 0, FP32, (m, n)),
                Tile(L0A, 0, BF16, (m, half)),
                Tile(L0B, 0, BF16, (half, n)),
                accumulate,
            ),
        ]
    instrs.append(Fixpipe(GmRegion("out", 0, 0, m, n, FP32), Tile(L0C, 0, FP32, (m, n))))
    instrs.append(Fixpipe(GmRegion("out16", 0, 0, m, n, BF16), Tile(L0C, 0, FP32, (m, n))))
    tensors = [
        Tensor("q", BF16, (m, k)),
        Tensor("kt", BF16, (n, k)),
        Tensor("out", FP32, (m, n), Role.OUTPUT),
        Tensor("out16", BF16, (m, n), Role.OUTPUT),
    ]
    return Program.single(Kernel("qk", tuple(instrs)), tensors)


def test_interpret_matmul_kernel_matches_torch() -> None:
    m, k, n = 16, 128, 64
    rng = np.random.default_rng(3)
    q, kt = rand_bf16(rng, (m, k)), rand_bf16(rng, (n, k))
    out = interpret(matmul_program(m, k, n), {"q": q, "kt": kt}, limits())
    tq, tk = bf16_to_torch(q).float(), bf16_to_torch(kt).float().T
    q32, k32 = q.astype(np.float32), kt.astype(np.float32).T
    first = q32[:, : k // 2] @ k32[: k // 2]  # fp32 GEMM per chunk; L0C holds fp32 between them
    want = torch.from_numpy(q32[:, k // 2 :] @ k32[k // 2 :] + first)
    assert torch.equal(torch.from_numpy(out["out"]), want)
    assert torch.equal(bf16_to_torch(out["out16"]), want.to(torch.bfloat16))
    torch.testing.assert_close(torch.from_numpy(out["out"]), (tq.float() @ tk.float()), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out["q"].view(np.uint16), q.view(np.uint16))  # inputs come back too


def test_interpret_softmax_vector_kernel_matches_torch() -> None:
    x = np.random.default_rng(4).standard_normal((8, 64)).astype(np.float32) * 4
    t, col = Tile(UB, 0, FP32, (8, 64)), Tile(UB, 0x1000, FP32, (8, 1))
    kernel = Kernel(
        "softmax",
        (
            Load(t, GmRegion("x", 0, 0, 8, 64, FP32)),
            RowReduce(ReduceOp.MAX, col, t),
            RowExpand(RowExpandOp.SUB, t, t, col),  # in place: reads are taken before the write
            VecUnary(UnaryOp.EXP, t, t),
            RowReduce(ReduceOp.SUM, col, t),
            RowExpand(RowExpandOp.DIV, t, t, col),
            Store(GmRegion("y", 0, 0, 8, 64, FP32), t),
        ),
    )
    program = Program.single(kernel, [Tensor("x", FP32, (8, 64)), Tensor("y", FP32, (8, 64), Role.OUTPUT)])
    y = interpret(program, {"x": x}, limits())["y"]
    torch.testing.assert_close(
        torch.from_numpy(y), torch.softmax(torch.from_numpy(x), dim=1), rtol=1e-6, atol=1e-7
    )


ASM = """
.program two_cores
.tensor x  fp32[16,32] input
.tensor ws fp32[16,32] workspace
.tensor y  fp32[16,32] output
.kernel producer
    load     UB[0x0000] fp32[16,32] <- GM:x[0:16, 0:32] fp32
    set_flag MTE2 V 0
    wait_flag MTE2 V 0
    vexp     UB[0x0000] fp32[16,32] <- UB[0x0000] fp32[16,32]
    set_flag V MTE3 0
    wait_flag V MTE3 0
    store    GM:ws[0:16, 0:32] fp32 <- UB[0x0000] fp32[16,32]
.kernel consumer
    load     UB[0x1000] fp32[16,32] <- GM:ws[0:16, 0:32] fp32
    set_flag MTE2 V 0
    wait_flag MTE2 V 0
    vadd     UB[0x1000] fp32[16,32] <- UB[0x1000] fp32[16,32], UB[0x0000] fp32[16,32]
    set_flag V MTE3 0
    wait_flag V MTE3 0
    store    GM:y[0:16, 0:32] fp32 <- UB[0x1000] fp32[16,32]
"""


def test_kernels_share_gm_but_each_starts_on_a_fresh_core() -> None:
    x = np.random.default_rng(5).standard_normal((16, 32)).astype(np.float32)
    out = interpret(parse_program(ASM), {"x": x}, limits())
    np.testing.assert_array_equal(out["ws"], np.exp(x))  # the consumer saw the producer's GM write
    # UB[0x0000] held exp(x) on the producer's core; on the consumer's it is poison, so y is NaN.
    assert np.isnan(out["y"]).all()
    np.testing.assert_array_equal(x, np.random.default_rng(5).standard_normal((16, 32)).astype(np.float32))


def test_interpret_error_names_kernel_index_and_instruction() -> None:
    kernel = Kernel(
        "bad",
        (
            Load(Tile(UB, 0, FP32, (8, 64)), GmRegion("x", 0, 0, 8, 64, FP32)),
            Store(GmRegion("y", 4, 0, 8, 64, FP32), Tile(UB, 0, FP32, (8, 64))),
        ),
    )
    program = Program.single(kernel, [Tensor("x", FP32, (8, 64)), Tensor("y", FP32, (8, 64), Role.OUTPUT)])
    with pytest.raises(IsaError, match=r"kernel bad, instruction 1 `store +GM:y\[4:12, 0:64\].*outside"):
        interpret(program, {"x": np.zeros((8, 64), np.float32)}, limits())
