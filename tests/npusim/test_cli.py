"""The command line: the Quick start command works, and user mistakes get one clear line."""

import numpy as np
import pytest

from npusim.cli import main
from programs import tile_matmul


def test_run_example_prints_a_match(capsys):
    assert main(["run", "tile-matmul"]) == 0
    out = capsys.readouterr().out
    assert "static checks passed (1 task(s), 12 instructions)" in out
    assert "out fp32[16, 128]" in out and ": match" in out


def test_asm_runs_a_file_with_given_inputs(tmp_path, capsys):
    values = tile_matmul.inputs(5)
    for name, value in values.items():
        np.save(tmp_path / f"{name}.npy", value)
    args = ["asm", str(tile_matmul.ASM_PATH), "--input", f"q={tmp_path / 'q.npy'}",
            "--input", f"k={tmp_path / 'k.npy'}"]
    assert main(args) == 0
    expected = tile_matmul.reference(values)["out"].reshape(-1)[0]
    out = capsys.readouterr().out
    assert "inputs all given" in out
    assert f"{expected:.4f}"[:5] in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "nope"], "unknown program 'nope'; available: tile-matmul"),
        (["run", "tile-matmul", "--preset", "nope"], "unknown preset 'nope'"),
        (["run", "tile-matmul", "--set", "buffers.l0b_bytes=16384"], "L0B holds 16384 bytes"),
        (["run", "tile-matmul", "--set", "buffers.nope=1"], "unknown config key 'buffers.nope'"),
        (["asm", "missing.s"], "missing.s"),
        (["asm", str(tile_matmul.ASM_PATH), "--input", "zz=x.npy"], "--input zz: no such tensor"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("npusim: error: ") and message in err
    assert "Traceback" not in err


def test_a_binary_file_is_reported_not_a_traceback(tmp_path, capsys):
    src = tmp_path / "bin.s"
    src.write_bytes(b"\xff\xfe\x00")
    assert main(["asm", str(src)]) == 2
    assert "not a UTF-8 text file" in capsys.readouterr().err


def test_malformed_assembly_points_at_line_and_column(tmp_path, capsys):
    src = tmp_path / "bad.s"
    src.write_text(".kernel k\n    vdup UB[0x0] fp32[16,8] <- \n")
    assert main(["asm", str(src)]) == 2
    assert f"{src}:2:" in capsys.readouterr().err


def test_presets_and_programs_list_one_line_each(capsys):
    assert main(["presets"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert any(line.startswith("910b2 ") for line in listing) and len(listing) == 3
    assert main(["programs"]) == 0
    assert "tile-matmul" in capsys.readouterr().out


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "example:" in capsys.readouterr().out


def test_presets_keys_lists_every_key_with_its_value(capsys):
    assert main(["presets", "--keys", "--preset", "910b3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "chip.cube_cores = 20" in lines and "mte2.gm_to_l1_bytes_per_cycle = 160.0" in lines
    assert len(lines) == len(__import__("npusim.config").config.keys())
