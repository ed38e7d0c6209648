"""The tiled GEMM over cube cores and the streaming vector program compute what torch does."""

import numpy as np
import pytest
import torch

from isa import DType
from isa.interpret import interpret
from npusim import load_preset, simulate
from programs import matmul, vector_scale
from programs.convert import to_torch

CFG = load_preset("910b2")


@pytest.mark.parametrize(("m", "n", "k", "cores"),
                         [(200, 300, 384, 5), (128, 128, 128, 24), (130, 257, 200, 3)])
def test_gemm_over_cube_cores_matches_torch_and_the_interpreter(m, n, k, cores):
    program = matmul.build(m, n, k, cores)
    values = matmul.inputs(m, n, k, seed=m)
    result = simulate(program, CFG, inputs=values)
    want = to_torch(values["a"]).float() @ to_torch(values["b"]).float()
    torch.testing.assert_close(torch.from_numpy(result.tensors["c"]), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(result.tensors["c"], interpret(program, values, CFG.core_limits())["c"])
    tiles = len(matmul.output_tiles(m, n))
    assert {t.core for t in result.traces} == {f"aic{i}" for i in range(min(cores, tiles))}


def test_gemm_in_fp16_matches_torch():
    program = matmul.build(144, 200, 260, cores=4, dtype=DType.FP16)
    values = matmul.inputs(144, 200, 260, DType.FP16, seed=7)
    assert values["a"].dtype == np.float16
    result = simulate(program, CFG, inputs=values)
    want = torch.from_numpy(values["a"]).float() @ torch.from_numpy(values["b"]).float()
    torch.testing.assert_close(torch.from_numpy(result.tensors["c"]), want, rtol=1e-4, atol=1e-4)


def test_vector_scale_streams_bands_on_vector_cores():
    program = vector_scale.build(1000, 96, tasks=7, alpha=-1.5)
    x = np.random.default_rng(1).standard_normal((1000, 96)).astype(np.float32)
    result = simulate(program, CFG, inputs={"x": x})
    np.testing.assert_array_equal(result.tensors["y"], x * np.float32(-1.5))
    assert len(result.traces) == 7 and all(t.core.startswith("aiv") for t in result.traces)
