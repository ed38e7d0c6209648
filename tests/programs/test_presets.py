"""Every shipped program, built for every shipped preset, runs and matches torch or is refused clearly.

Builders read the target's limits (tile sizes, q-tile height, alignments); built with no target they
lay out for the 910B, instruction for instruction as they do for the 910b2 preset.
"""

import numpy as np
import pytest
import torch

from isa import DType, Fixpipe, Kernel, Space, Tile
from isa.check import CheckError, check_program
from npusim import load_preset, simulate
from npusim.cli import main
from npusim.config import available_presets
from programs import matmul, paged_attention, registry, vector_scale
from programs.convert import to_torch

PRESETS = available_presets()

# Small options for every program the CLI runs: a tail q-tile (20 heads), a pair and a tail step with
# partial blocks, GEMM edges in every dimension.
SMALL = {
    "paged-attention": [
        {"variant": v, "batch": 2, "num_heads": 20, "num_kv_heads": 1, "head_dim": 64, "block_size": 64,
         "context_lens": [150, 70]} for v in paged_attention.VARIANTS],
    "matmul": [{"m": 200, "n": 300, "k": 260, "dtype": d, "cores": 3} for d in ("bf16", "fp16")],
    "tile-matmul": [{"seed": 2}],
}
CASES = [(name, values) for name, cases in SMALL.items() for values in cases]


def test_every_registry_program_has_small_options_here():
    assert set(SMALL) == set(registry.WORKLOADS)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize(("name", "values"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_every_program_runs_on_every_preset_and_matches_torch(name, values, preset):
    config = load_preset(preset)
    instance = registry.get(name).instance(values, config.chip.cube_cores, config)
    check_program(instance.program, config.limits_by_kind())
    inputs = instance.inputs()
    result = simulate(instance.program, config, inputs=inputs)
    references = instance.references(inputs)
    assert references
    for outputs in references.values():
        for tensor, want in outputs.items():
            np.testing.assert_allclose(result.tensors[tensor], want, rtol=instance.rtol, atol=instance.atol)


def test_the_matmul_reference_is_torch():
    # The registry's references above are torch; check one against torch written out here.
    values = matmul.inputs(33, 17, 45, DType.FP16, seed=4)
    want = torch.from_numpy(values["a"]).float() @ torch.from_numpy(values["b"]).float()
    np.testing.assert_array_equal(matmul.reference(values)["c"], want.numpy())


@pytest.mark.parametrize("preset", PRESETS)
def test_vector_scale_runs_on_every_preset(preset):
    config = load_preset(preset)
    program = vector_scale.build(300, 200, tasks=5, alpha=-1.5, config=config)
    x = np.random.default_rng(5).standard_normal((300, 200)).astype(np.float32)
    result = simulate(program, config, inputs={"x": x})
    np.testing.assert_array_equal(result.tensors["y"], (torch.from_numpy(x) * -1.5).numpy())


# --- refused, with the reason -------------------------------------------------------------------

HEAD_DIM_256 = ["paged-attention", "--batch", "1", "--context-len", "300", "--head-dim", "256"]


@pytest.mark.parametrize("preset", PRESETS)
def test_a_shape_too_big_for_every_preset_is_refused_with_the_reason(preset, capsys):
    # Two 128-token K blocks of head_dim 256, transposed: 256 x 256 bf16 = 128 KiB into a 64 KiB L0B.
    config = load_preset(preset)
    values = {"batch": 1, "context_len": 300, "head_dim": 256}
    instance = registry.get("paged-attention").instance(values, config.chip.cube_cores, config)
    with pytest.raises(CheckError, match="L0B holds 65536 bytes; dst needs bytes 0..131072"):
        check_program(instance.program, config.limits_by_kind())
    assert main(["run", *HEAD_DIM_256, "--preset", preset]) == 2
    err = capsys.readouterr().err
    assert err.startswith("npusim: error: paged-attention (variant=2block, batch=1, ")
    assert "Traceback" not in err
    assert f"does not fit preset {preset}: kernel qk_matmul_2b" in err and "L0B holds 65536 bytes" in err


@pytest.mark.parametrize(("preset", "fits"), [("910b2", True), ("910b3", True), ("310p", False)])
def test_k_blocks_of_a_pair_must_meet_the_presets_l1_alignment(preset, fits):
    # A pair's K blocks sit back to back in L1 (one transposed move takes both): 8 x 16 bf16 = 256 B
    # apart, which the 910B's 32 B L1 alignment allows and the 310P's 512 B does not.
    config = load_preset(preset)
    values = {"variant": "2block", "batch": 1, "num_heads": 4, "head_dim": 16, "block_size": 8,
              "context_len": 40}
    instance = registry.get("paged-attention").instance(values, config.chip.cube_cores, config)
    if fits:
        check_program(instance.program, config.limits_by_kind())
        return
    with pytest.raises(CheckError, match=r"dst L1 offset 0x0500 is not 512-byte aligned"):
        check_program(instance.program, config.limits_by_kind())


# --- the layout follows the hardware ------------------------------------------------------------

def test_with_no_target_programs_are_laid_out_as_for_the_910b2():
    config = load_preset("910b2")
    for name, values in CASES:
        workload = registry.get(name)
        assert workload.instance(values, 24).program == workload.instance(values, 24, config).program, name
    assert vector_scale.build(1000, 96, 7, config=config) == vector_scale.build(1000, 96, 7)
    assert matmul.build_single_core(300, 200, 500, config=config) == matmul.build_single_core(300, 200, 500)
    assert matmul.tile_sizes(DType.BF16, config) == (matmul.TILE,) * 3 == (128, 128, 128)
    assert paged_attention.Layout.of(config) == paged_attention.Layout() == paged_attention.Layout(16, 512)


def _pa_case(seed=3):
    shape = paged_attention.Shape(batch=2, num_heads=20, num_kv_heads=1, head_dim=64, block_size=64)
    return paged_attention.make_case(shape, [150, 70], seed=seed)


def test_the_q_tile_is_the_cubes_m0():
    config = load_preset("910b2").replace({"cube.m0": 8})
    case = _pa_case()
    program = paged_attention.build(case, "1block", config)
    # 20 heads in tiles of 8: 8, 8, 4 per request; 3 + 2 one-block steps, each q-tile's in one task.
    qk = [t for t in program.tasks if t.name.startswith("qk_")]
    assert sorted({(t.name.split("s")[0]) for t in qk}) == ["qk_r0h0", "qk_r0h16", "qk_r0h8",
                                                           "qk_r1h0", "qk_r1h16", "qk_r1h8"]
    assert len(qk) == 3 + 3
    assert program.tensor("ws_scores").shape[1] == 8
    result = simulate(program, config, inputs=case.inputs())
    want = paged_attention.reference_fp32(case)
    np.testing.assert_allclose(result.tensors["out"], want, rtol=2e-2, atol=2e-2)


def _tiles(kernel: Kernel) -> list[Tile]:
    return [r for i in kernel.instructions for r in (*i.reads, *i.writes) if isinstance(r, Tile)]


def _offsets(program) -> set[int]:
    return {t.offset for task in program.tasks for t in _tiles(task.kernel) if t.space is not Space.L1}


def test_every_on_chip_tile_starts_on_the_strictest_alignment_of_the_target():
    case = _pa_case()
    # The 910B's strictest buffer alignment is 512 B (L0A, L0B); the 310P's L0C wants 1024 B.
    assert any(o % 1024 for o in _offsets(paged_attention.build(case, "2block", load_preset("910b2"))))
    assert all(o % 1024 == 0 for o in _offsets(paged_attention.build(case, "2block", load_preset("310p"))))


def test_gemm_tiles_shrink_to_the_target_l0c():
    # The per-tile kernel: two fp32 accumulators of 64 x 64 fill a 32 KiB L0C; 128 x 128 would need
    # 128 KiB. The shipped panel kernel keeps one accumulator, widened to 64 x 128 (32 KiB).
    config = load_preset("910b2").replace({"buffers.l0c_bytes": 32768})
    assert matmul.tile_sizes(DType.BF16, config)[:2] == (64, 64)
    m, n, k = 130, 100, 70
    program = matmul.build(m, n, k, cores=2, config=config)
    check_program(program, config.limits_by_kind())
    outs = [(i.dst.rows, i.dst.cols) for t in program.tasks for i in t.kernel.instructions
            if isinstance(i, Fixpipe)]
    assert sorted(outs) == sorted([(64, 100)] * 2 + [(2, 100)])  # 130 rows: 64, 64, 2; 100 columns
    values = matmul.inputs(m, n, k, seed=1)
    result = simulate(program, config, inputs=values)
    want = to_torch(values["a"]).float() @ to_torch(values["b"]).float()
    torch.testing.assert_close(torch.from_numpy(result.tensors["c"]), want, rtol=1e-4, atol=1e-4)


def test_vector_tiles_grow_with_the_target_ub():
    small, big = (load_preset("910b2").replace({"buffers.ub_bytes": ub}) for ub in (49152, 393216))
    # Four fp32 tiles in 5/6 of UB: 10240 and 81920 bytes each, 2560 and 20480 floats; rows of 1000.
    assert vector_scale.default_tile_rows(1000, small) == 2
    assert vector_scale.default_tile_rows(1000, big) == 20
