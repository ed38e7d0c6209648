"""The GEMM over cube cores and the streaming vector program compute what torch does.

The shipped GEMM is tiled as pto-isa's gemm_performance kernel (kernels/manual/a2a3/gemm_performance,
README "Tiling Parameters"): [baseM, baseN, baseK] = [128, 256, 64], stepKa = stepKb = 4, a 4 x 6 core
grid with singleCoreM = 1536, singleCoreN = 1024 at 6144^3. The expected figures below are worked from
those and by hand, never read back from the builder.
"""

from collections import Counter

import numpy as np
import pytest
import torch

from isa import DType, Fixpipe, Load, Mmad, Move, SetFlag, WaitFlag
from isa.check import check_program
from isa.interpret import interpret
from npusim import load_preset, simulate
from programs import gemm_panels, matmul, registry, vector_scale
from programs.convert import to_torch

CFG = load_preset("910b2")


def _assert_torch(result, values):
    want = to_torch(values["a"]).float() @ to_torch(values["b"]).float()
    torch.testing.assert_close(torch.from_numpy(result.tensors["c"]), want, rtol=1e-4, atol=1e-4)


# Cores used, worked by hand from 128 x 256 tiles: (200, 300) is 2 x 2 tiles, one per core on a 2 x 2
# grid; (128, 128) one tile; (130, 257) 2 x 2 tiles, 2 per core either way, a 1 x 2 grid reads fewer
# A rows + B columns (2*128 + 256) than 2 x 1 (128 + 2*256); (300, 520) 3 x 3 tiles on 7 cores: 2 per
# core at best, 2 x 3 (2*128 + 256) beats 3 x 2 (128 + 2*256). k = 600: panels 256, 256, 88 (64 + 24).
@pytest.mark.parametrize(("m", "n", "k", "cores", "used"),
                         [(200, 300, 384, 5, 4), (128, 128, 128, 24, 1), (130, 257, 200, 3, 2),
                          (300, 520, 600, 7, 6)])
def test_gemm_over_cube_cores_matches_torch_and_the_interpreter(m, n, k, cores, used):
    program = matmul.build(m, n, k, cores)
    values = matmul.inputs(m, n, k, seed=m)
    result = simulate(program, CFG, inputs=values)
    _assert_torch(result, values)
    np.testing.assert_array_equal(result.tensors["c"], interpret(program, values, CFG.core_limits())["c"])
    assert {t.core for t in result.traces} == {f"aic{i}" for i in range(used)}


def test_gemm_in_fp16_matches_torch():
    program = matmul.build(144, 200, 260, cores=4, dtype=DType.FP16)
    values = matmul.inputs(144, 200, 260, DType.FP16, seed=7)
    assert values["a"].dtype == np.float16
    result = simulate(program, CFG, inputs=values)
    want = torch.from_numpy(values["a"]).float() @ torch.from_numpy(values["b"]).float()
    torch.testing.assert_close(torch.from_numpy(result.tensors["c"]), want, rtol=1e-4, atol=1e-4)


def test_the_per_tile_teaching_kernel_still_matches_torch():
    program = matmul.build_per_tile(200, 300, 384, cores=5)
    values = matmul.inputs(200, 300, 384, seed=3)
    result = simulate(program, CFG, inputs=values)
    _assert_torch(result, values)
    # 128 x 128 tiles: 2 x 3 of them dealt round-robin to 5 cores.
    assert len(program.tasks) == 5


# --- the published tiling -------------------------------------------------------------------------

def test_the_910b_blocking_is_the_published_kernels():
    published = gemm_panels.Blocking(tm=128, tn=256, tk=64, steps=4)
    assert gemm_panels.blocking(DType.FP16, CFG) == gemm_panels.blocking(DType.BF16, CFG) == published
    assert gemm_panels.blocking(DType.FP16) == published  # no target: the 910B's
    assert published.panel == 256


def test_the_blocking_follows_the_target_buffers():
    # L0C of 32 KiB: a 64 x 64 fp32 square (16 KiB) fits, 128 x 128 (64 KiB) does not; widened to
    # 64 x 128 (32 KiB). L0B 64 KiB holds two [tk, 128] bf16 slices up to tk = 128. L1 512 KiB holds
    # two A [64, d] + B [d, 128] panel pairs, 768 * d bytes: d = 512 fits (393216 B), 1024 does not;
    # 512 / 128 = 4 k-steps.
    config = CFG.replace({"buffers.l0c_bytes": 32768})
    assert gemm_panels.blocking(DType.BF16, config) == gemm_panels.Blocking(64, 128, 128, 4)


def test_6144_cubed_on_24_cores_is_the_published_4_by_6_grid():
    # 6144 / 128 = 48 tile rows, 6144 / 256 = 24 tile columns; every grid of 24 gives 48 tiles a core;
    # 4 x 6 and 6 x 4 both read 2560 A rows + B columns; 4 x 6 has fewer grid rows.
    assert gemm_panels.core_grid(48, 24, 24, 128, 256) == (4, 6)
    blocks = gemm_panels.core_blocks(6144, 6144, 24, 128, 256)
    assert len(blocks) == 24 and all(len(b) == 48 for b in blocks)
    # Core 5 is block (5 % 4, 5 // 4) = (1, 1): rows 1536..3071, columns 1024..2047 (singleCoreM, N).
    assert {r for r, _ in blocks[5]} == set(range(1536, 3072, 128))
    assert {c for _, c in blocks[5]} == set(range(1024, 2048, 256))


def test_each_core_writes_one_contiguous_block_at_1536():
    # 12 x 6 tiles on a 4 x 6 grid: each core a 384 x 256 block, 3 tiles of 128 x 256 down a column.
    program = matmul.build(1536, 1536, 1536, cores=24, dtype=DType.FP16)
    assert len(program.tasks) == 24
    for c, task in enumerate(program.tasks):
        outs = [(i.dst.row, i.dst.col, i.dst.rows, i.dst.cols) for i in task.kernel.instructions
                if isinstance(i, Fixpipe)]
        r0, c0 = (c % 4) * 384, (c // 4) * 256
        assert outs == [(r0, c0, 128, 256), (r0 + 128, c0, 128, 256), (r0 + 256, c0, 128, 256)]


def test_one_panel_feeds_four_k_steps_of_one_accumulator():
    # One 128 x 256 tile, K = 256: one panel, 2 loads (A^T [256, 128] and B [256, 256]), 4 k-steps
    # of 2 moves each, 4 mmads (the first initialises), 1 fixpipe. A's slices [64, 128] sit
    # 64 * 128 * 2 = 16384 bytes apart; B's [64, 256] start after A's 65536 bytes, 32768 apart.
    (task,) = matmul.build(128, 256, 256, cores=1, dtype=DType.FP16).tasks
    instrs = task.kernel.instructions
    loads = [i for i in instrs if isinstance(i, Load)]
    assert [(i.src.tensor, i.src.shape, i.dst.shape, i.transpose) for i in loads] == [
        ("a", (128, 256), (256, 128), True), ("b", (256, 256), (256, 256), False)]
    moves = [i for i in instrs if isinstance(i, Move)]
    assert [i.src.offset for i in moves[0::2]] == [0, 16384, 32768, 49152]
    assert [i.src.offset for i in moves[1::2]] == [65536, 98304, 131072, 163840]
    assert [(i.dst.shape, i.transpose) for i in moves[:2]] == [((128, 64), True), ((64, 256), False)]
    assert [i.accumulate for i in instrs if isinstance(i, Mmad)] == [False, True, True, True]
    assert sum(isinstance(i, Fixpipe) for i in instrs) == 1


def _gm_loads(program):
    loads = [i for t in program.tasks for i in t.kernel.instructions if isinstance(i, Load)]
    return len(loads), sum(i.src.nbytes for i in loads)


def test_panels_read_fewer_gm_bytes_per_output_than_the_per_tile_kernel():
    # 512^3 bf16. Per-tile: 16 tiles of 128 x 128, 4 k-steps of 128, each loading A [128, 128] and
    # B [128, 128] (32 KiB each): 128 loads, 4 MiB, 16 bytes per output element.
    # Panels: 8 tiles of 128 x 256, 2 panels of 256, each loading A [128, 256] (64 KiB) and
    # B [256, 256] (128 KiB): 32 loads, 3 MiB, 12 bytes per output element.
    assert _gm_loads(matmul.build_per_tile(512, 512, 512, cores=24)) == (128, 4 << 20)
    assert _gm_loads(matmul.build(512, 512, 512, cores=24)) == (32, 3 << 20)


def test_every_free_flag_is_set_as_often_as_it_is_waited():
    program = matmul.build(300, 520, 600, cores=7)
    for task in program.tasks:
        sets = Counter((i.src, i.dst, i.event) for i in task.kernel.instructions if isinstance(i, SetFlag))
        waits = Counter((i.src, i.dst, i.event) for i in task.kernel.instructions if isinstance(i, WaitFlag))
        assert sets == waits


def test_unaligned_slices_load_one_by_one_on_a_512_byte_aligned_l1():
    # 310p: 256 x 256 tiles, k-step 64, L1 512 B aligned. m = 258: the second tile has 2 rows, so its
    # A slices are 64 * 2 * 2 = 256 bytes: not aligned, 5 loads for K = 300 (4 x 64 + 44). B slices
    # of 64 x 100 bf16 are 12800 = 25 * 512 bytes: one load per panel. 1 + 1 + 5 + 1 = 8 loads.
    config = load_preset("310p")
    program = matmul.build(258, 100, 300, cores=1, config=config)
    check_program(program, config.limits_by_kind())
    assert _gm_loads(program)[0] == 8
    values = matmul.inputs(258, 100, 300, seed=5)
    result = simulate(program, config, inputs=values)
    _assert_torch(result, values)


def test_panels_beat_the_per_tile_kernel_on_24_cores():
    """The point of the panels: fewer, larger DMAs keep the cube busier and the GEMM shorter."""
    panels = simulate(matmul.build(768, 768, 768, 24, DType.FP16), CFG, numerics=False)
    per_tile = simulate(matmul.build_per_tile(768, 768, 768, 24, DType.FP16), CFG, numerics=False)
    assert panels.cycles < per_tile.cycles


def test_a_gemm_needs_a_core():
    with pytest.raises(ValueError, match="at least one core, got 0"):
        matmul.build(128, 128, 128, cores=0)


def test_the_cli_variants_are_the_two_kernels():
    workload = registry.get("matmul")
    values = {"m": 200, "n": 300, "k": 260, "dtype": "fp16", "cores": 3}
    assert workload.instance(values, 24).program == matmul.build(200, 300, 260, 3, DType.FP16)
    assert (workload.instance(values | {"variant": "per-tile"}, 24).program
            == matmul.build_per_tile(200, 300, 260, 3, DType.FP16))


def test_vector_scale_streams_bands_on_vector_cores():
    program = vector_scale.build(1000, 96, tasks=7, alpha=-1.5)
    x = np.random.default_rng(1).standard_normal((1000, 96)).astype(np.float32)
    result = simulate(program, CFG, inputs={"x": x})
    np.testing.assert_array_equal(result.tensors["y"], x * np.float32(-1.5))
    assert len(result.traces) == 7 and all(t.core.startswith("aiv") for t in result.traces)
