"""The example kernel: the Python and text forms agree, and it computes what torch computes."""

import numpy as np
import torch

from isa.asm import format_program, load_program, parse_program
from isa.check import check_program
from isa.interpret import interpret
from npusim.config import load_preset
from programs import tile_matmul
from programs.convert import to_torch

LIMITS = load_preset("910b2").core_limits()


def test_text_file_is_the_python_kernel():
    assert load_program(tile_matmul.ASM_PATH) == tile_matmul.build()
    assert parse_program(format_program(tile_matmul.build())) == tile_matmul.build()


def test_kernel_passes_static_checks():
    check_program(tile_matmul.build(), LIMITS)


def test_output_equals_torch_within_fp32_rounding():
    for seed in range(3):
        values = tile_matmul.inputs(seed)
        out = interpret(tile_matmul.build(), values, LIMITS)["out"]
        q, k = to_torch(values["q"]), to_torch(values["k"])
        # The ISA's mmad contract, bit for bit: an fp32 GEMM of the widened bf16 inputs.
        np.testing.assert_array_equal(out, values["q"].astype(np.float32) @ values["k"].astype(np.float32))
        # torch's own fp32 GEMM differs from the exact result only by fp32 rounding of its sums.
        torch_fp32 = (q.float() @ k.float()).float().numpy()
        bound = 128 * np.finfo(np.float32).eps * (q.float().abs() @ k.float().abs()).numpy()
        assert np.all(np.abs(out - torch_fp32) <= bound)
        assert out.dtype == np.float32 and out.shape == (16, 128)


def test_inputs_are_bf16_and_seeded():
    a, b = tile_matmul.inputs(1), tile_matmul.inputs(1)
    assert a["q"].dtype == tile_matmul.DType.BF16.np
    np.testing.assert_array_equal(a["k"].view(np.int16), b["k"].view(np.int16))
    assert not np.array_equal(tile_matmul.inputs(2)["q"].view(np.int16), a["q"].view(np.int16))
    assert torch.equal(to_torch(a["q"]).float(), torch.from_numpy(a["q"].astype(np.float32)))
