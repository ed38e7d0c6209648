"""`--input` files and the host-memory check: every refusal an IsaError naming what was wrong, before
anything is loaded or allocated, and the same random inputs for a kernel and its text twin."""

import json
import pickle

import ml_dtypes
import numpy as np
import pytest

from isa.asm import load_program, parse_program
from isa.errors import IsaError
from npusim.cli import main
from npusim.config import load_preset
from npusim.inputs import check_host_memory, load_inputs, physical_memory
from programs import tile_matmul

PROGRAM = load_program(tile_matmul.ASM_PATH)  # q bf16[16,128], k bf16[128,128] inputs; out fp32 output
CONFIG = load_preset("910b2")  # 512-byte L2 lines


def _load(tmp_path, name, value, tensor="q"):
    path = tmp_path / name
    if isinstance(value, bytes):
        path.write_bytes(value)
    else:
        np.save(path, value, allow_pickle=True)
    return load_inputs(PROGRAM, [f"{tensor}={path}"])


def _refused(tmp_path, name, value, tensor="q"):
    with pytest.raises(IsaError) as info:
        _load(tmp_path, name, value, tensor)
    return str(info.value)


def test_a_file_that_is_not_npy_names_the_option_and_what_it_is_not(tmp_path):
    message = _refused(tmp_path, "notnpy.npy", b"hello world\n")
    assert message.startswith(f"--input q={tmp_path / 'notnpy.npy'}: not a .npy file")
    assert "pickle" not in message
    assert "not a .npy file" in _refused(tmp_path, "short.npy", b"\x93NUM")
    header = b"\x93NUMPY\x01\x00\x10\x00{'descr': 7}    \n"
    assert "not a .npy file" in _refused(tmp_path, "badhead.npy", header)
    np.savez(tmp_path / "a.npz", q=np.zeros((16, 128), np.float32))
    with pytest.raises(IsaError, match="an .npz archive"):
        load_inputs(PROGRAM, [f"q={tmp_path / 'a.npz'}"])


def test_a_wrong_dtype_or_shape_says_expected_then_got(tmp_path):
    assert _refused(tmp_path, "i.npy", np.zeros((16, 128), np.int32)).endswith(
        "expected dtype bf16 (or any float dtype, rounded to bf16) and shape [16, 128], "
        "got dtype int32 and shape [16, 128]")
    assert _refused(tmp_path, "s.npy", np.zeros((4, 4), np.float32)).endswith(
        "expected dtype bf16 (or any float dtype, rounded to bf16) and shape [16, 128], "
        "got dtype float32 and shape [4, 4]")


def test_a_pickled_file_is_refused_and_never_unpickled(tmp_path):
    witness = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self):
            return (open, (str(witness), "w"))  # unpickling would create the witness file

    trapped = np.empty((16, 128), dtype=object)
    trapped[0, 0] = Trap()
    assert "holds Python objects" in _refused(tmp_path, "o.npy", trapped)
    assert not witness.exists()
    assert pickle.dumps(Trap())  # the trap is real: pickle would have run it


def test_a_truncated_file_says_how_much_data_it_lacks(tmp_path):
    path = tmp_path / "t.npy"
    np.save(path, np.zeros((16, 128), np.float32))
    path.write_bytes(path.read_bytes()[:-4])
    message = str(pytest.raises(IsaError, load_inputs, PROGRAM, [f"q={path}"]).value)
    assert message.endswith("truncated: its header describes 8192 bytes of data, it holds 8188")  # 16*128*4


def test_an_output_tensor_is_not_an_input(tmp_path):
    assert _refused(tmp_path, "o.npy", np.zeros((16, 128), np.float32), tensor="out") == (
        "--input out: tensor out is output (the program writes it), not input; inputs: q, k")
    path = tmp_path / "q.npy"
    np.save(path, np.zeros((16, 128), np.float32))
    with pytest.raises(IsaError, match="--input q: given twice"):
        load_inputs(PROGRAM, [f"q={path}", f"q={path}"])
    with pytest.raises(IsaError, match="not a regular file"):
        load_inputs(PROGRAM, [f"q={tmp_path}"])


def test_float_files_round_to_bf16_to_nearest_even_and_bf16_files_load_as_is(tmp_path):
    value = np.zeros((16, 128), np.float32)
    # bf16 keeps 8 significant bits: 1 + 2**-8 lies halfway between 1 and 1 + 2**-7 and goes to the
    # even one (1); 1 + 3 * 2**-9 is nearer 1 + 2**-7
    value[0, :2] = [1 + 2**-8, 1 + 3 * 2**-9]
    got = _load(tmp_path, "f.npy", value)["q"]
    assert got.dtype == ml_dtypes.bfloat16
    assert got[0, :2].astype(np.float32).tolist() == [1.0, 1 + 2**-7]
    bf16 = (np.arange(16 * 128) % 7 - 3).astype(ml_dtypes.bfloat16).reshape(16, 128)
    np.testing.assert_array_equal(_load(tmp_path, "b.npy", bf16)["q"], bf16)


def test_float64_files_round_once_not_through_fp32(tmp_path):
    # 1 + 2**-8 + 2**-30 is just above the halfway point between bf16's 1 and 1 + 2**-7: it rounds up.
    # Through fp32 first, the 2**-30 is lost and the halfway value then rounds to the even 1.
    value = np.zeros((16, 128), np.float64)
    value[0, 0] = 1 + 2**-8 + 2**-30
    assert _load(tmp_path, "d.npy", value)["q"][0, 0].astype(np.float32) == 1 + 2**-7


# --- host memory -------------------------------------------------------------------------------

GIB_INPUT = parse_program(".tensor x fp32[256,1048576] input\n.tensor y fp32[16,16] output\n"
                          ".kernel a\n    barrier ALL\n")  # x: 2**28 floats, 2**30 bytes


def test_a_program_that_fits_passes_both_ways():
    check_host_memory(GIB_INPUT, CONFIG, numerics=True, limit=4 << 30)


def test_numerics_past_the_limit_names_the_tensor_the_sizes_and_the_way_out():
    # x twice (as drawn and in GM) and y once: 2**31 + 1024 bytes; the L2 model's state: 17 bytes per
    # 512-byte line, 2**21 lines of x and two of y: 35651618 bytes; 2183136290 in all (2.0 GiB)
    with pytest.raises(IsaError) as info:
        check_host_memory(GIB_INPUT, CONFIG, numerics=True, limit=3 << 29)
    message = str(info.value)
    assert message.startswith("program a needs 2.0 GiB (2183136290 bytes) of host memory for a run with "
                              "numerics")
    assert "largest tensor is x fp32[256, 1048576] of 1073741824 bytes (1.0 GiB)" in message
    assert "this machine has 1.5 GiB (1610612736 bytes) of physical memory" in message
    assert message.endswith("--no-numerics times the program without allocating any tensor")
    check_host_memory(GIB_INPUT, CONFIG, numerics=False, limit=3 << 29)  # timing needs 34 MiB


def test_a_gm_too_large_even_to_time_says_so_without_offering_no_numerics():
    with pytest.raises(IsaError) as info:
        check_host_memory(GIB_INPUT, CONFIG, numerics=False, limit=32 << 20)
    message = str(info.value)
    # 17 bytes for each of the 2**21 + 2 lines: 35651618 bytes
    assert message.startswith("program a needs 0.0 GiB (35651618 bytes) of host memory even to time it (the "
                              "L2 model keeps 17 bytes per 512-byte line of GM)")
    assert "--no-numerics" not in message


def test_the_issue_s_tensor_is_refused_on_this_machine():
    # 16 * 10**12 bf16: 32 TB of GM, 1.06 TB of L2 model state: more than any machine running this
    big = parse_program(".tensor q bf16[16,1000000000000] input\n.kernel a\n    barrier ALL\n")
    assert physical_memory() < 17 * 32 * 10**12 // 512
    with pytest.raises(IsaError, match=r"tensor is q bf16\[16, 1000000000000\] of 32000000000000 bytes"):
        check_host_memory(big, CONFIG, numerics=False)


# --- one draw for a kernel and its text twin ----------------------------------------------------

@pytest.mark.parametrize("seed", [0, 7])
def test_run_tile_matmul_and_asm_of_its_text_draw_the_same_inputs(seed, tmp_path, capsys):
    dumps = {}
    for how, argv in (("run", ["run", "tile-matmul"]), ("asm", ["asm", str(tile_matmul.ASM_PATH)])):
        dumps[how] = tmp_path / how
        assert main([*argv, "--seed", str(seed), "--dump", str(dumps[how]), "--quiet"]) == 0
    capsys.readouterr()
    for name in ("q", "k", "out"):
        ran, assembled = (np.load(dumps[how] / f"{name}.npy") for how in ("run", "asm"))
        np.testing.assert_array_equal(ran, assembled)
    summaries = [json.loads((dumps[how] / "summary.json").read_text()) for how in ("run", "asm")]
    assert summaries[0]["cycles"] == summaries[1]["cycles"] == 1179  # docs/model.md §3.1
    # the draw is standard normal per tensor in declaration order, from numpy's generator
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((16, 128), dtype=np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(np.load(dumps["run"] / "q.npy"), q)
