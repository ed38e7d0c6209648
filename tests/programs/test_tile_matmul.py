"""The example kernel: the Python and text forms agree, and it computes what torch computes."""

import numpy as np
import torch

from isa.asm import format_program, load_program, parse_program
from isa.check import check_program
from isa.interpret import interpret
from npusim.config import load_preset
from programs import tile_matmul
from programs.convert import to_numpy, to_torch

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
        # The ISA's mmad contract: bf16 products are exact in fp32 and only the K-sum rounds, in
        # fp32, so |out - exact| <= gamma_127 * (|q| @ |k|) for 127 additions of unit roundoff
        # u = 2**-24 (Higham, Accuracy and Stability, eq. 3.5), whatever the summation order.
        exact = (q.double() @ k.double()).numpy()  # products and sums exact in float64 at this size
        u = 2.0**-24
        gamma = 127 * u / (1 - 127 * u)
        assert np.all(np.abs(out - exact) <= gamma * (q.double().abs() @ k.double().abs()).numpy())
        # torch's own fp32 GEMM differs from the exact result only by fp32 rounding of its sums.
        torch_fp32 = (q.float() @ k.float()).float().numpy()
        bound = 128 * np.finfo(np.float32).eps * (q.float().abs() @ k.float().abs()).numpy()
        assert np.all(np.abs(out - torch_fp32) <= bound)
        assert out.dtype == np.float32 and out.shape == (16, 128)


def test_output_is_bit_exact_where_every_fp32_sum_is_exact():
    # Multiples of 1/8 up to 4 in magnitude are exact in bf16; their products are multiples of 1/64
    # up to 16, and any partial sum of 128 of them is at most 2**17 sixty-fourths in magnitude: exact
    # in fp32's 24 bits in every order. So the fp32 result must equal torch's float64 product, bit
    # for bit (a K-sum rounded to bf16 or fp16 on the way would not).
    gen = torch.Generator().manual_seed(0)
    q, k = ((torch.randint(-32, 33, shape, generator=gen) / 8).to(torch.bfloat16)
            for shape in ((16, 128), (128, 128)))
    out = interpret(tile_matmul.build(), {"q": to_numpy(q), "k": to_numpy(k)}, LIMITS)["out"]
    np.testing.assert_array_equal(out, (q.double() @ k.double()).float().numpy())
    assert np.abs(out).max() > 16  # sums over K, not a single product


def test_inputs_are_bf16_and_seeded():
    a, b = tile_matmul.inputs(1), tile_matmul.inputs(1)
    assert a["q"].dtype == tile_matmul.DType.BF16.np
    np.testing.assert_array_equal(a["k"].view(np.int16), b["k"].view(np.int16))
    assert not np.array_equal(tile_matmul.inputs(2)["q"].view(np.int16), a["q"].view(np.int16))
    assert torch.equal(to_torch(a["q"]).float(), torch.from_numpy(a["q"].astype(np.float32)))
