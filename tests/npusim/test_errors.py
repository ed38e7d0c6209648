"""Only user mistakes become one `npusim: error:` line; a bug keeps its traceback.

The CLI turns the project's own error classes into exit status 2. A KeyError, OSError or plain
ValueError raised by a bug inside a run is not a user mistake: it must propagate, from the CLI and
from a sweep's point alike, instead of being reported as if the user had typed something wrong.
"""

import importlib

import numpy as np
import pytest

import npusim.cli.asm
import npusim.cli.run
from npusim import sweep
from npusim.cli import main
from programs import tile_matmul


def _boom(error):
    def raise_it(*args, **kwargs):
        raise error

    return raise_it


@pytest.mark.parametrize("error", [KeyError("a bug"), OSError(5, "a bug"), ValueError("a bug")])
def test_a_bug_inside_run_is_not_reported_as_a_user_mistake(error, monkeypatch, capsys):
    monkeypatch.setattr(npusim.cli.run, "summary", _boom(error))
    with pytest.raises(type(error), match="a bug"):
        main(["run", "tile-matmul", "--no-numerics"])
    assert "npusim: error:" not in capsys.readouterr().err


def test_a_bug_inside_asm_is_not_reported_as_a_user_mistake(monkeypatch):
    monkeypatch.setattr(npusim.cli.asm, "random_inputs", _boom(KeyError("a bug")))
    with pytest.raises(KeyError, match="a bug"):
        main(["asm", str(tile_matmul.ASM_PATH)])


def _spec(**options):
    points = sweep.expand({"variant": ["2block"]}, {}, {"batch": 1, "head_dim": 64, "block_size": 64,
                                                         "context_len": 300, **options})
    return sweep.specs("paged-attention", "910b2", points, False)[0]


@pytest.mark.parametrize("error", [KeyError("a bug"), ValueError("a bug"), OSError(5, "a bug")])
def test_a_bug_inside_a_sweep_point_propagates(error, monkeypatch):
    # the module, not the function of that name that `npusim` exports
    monkeypatch.setattr(importlib.import_module("npusim.simulate"), "simulate", _boom(error))
    with pytest.raises(type(error), match="a bug"):
        sweep.compute(_spec())


def test_a_point_the_program_refuses_keeps_its_reason():
    row = sweep.compute(_spec(num_heads=12, num_kv_heads=8))
    assert row == {"status": "error", "error": "num_heads 12 is not a multiple of num_kv_heads 8; every KV "
                                               "head serves the same number of query heads"}


def test_a_point_that_does_not_fit_keeps_its_reason():
    row = sweep.compute(_spec(head_dim=256, block_size=128))
    assert row["status"] == "error"
    assert row["error"].startswith("kernel qk_matmul_2b, instruction 8 `move     L0B[0x0000] bf16[256,256]")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["asm", "missing.s"], "asm missing.s: cannot read it: No such file or directory"),
        (["asm", str(tile_matmul.ASM_PATH), "--input", "q=missing.npy"],
         "--input q=missing.npy: cannot read it: No such file or directory"),
        (["run", "tile-matmul", "--preset", "missing.toml"], "preset file missing.toml does not exist"),
    ],
)
def test_missing_files_name_the_option_and_the_path(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"npusim: error: {message}\n"


def test_an_input_that_is_not_npy_is_a_user_mistake(tmp_path, capsys):
    bad = tmp_path / "q.npy"
    bad.write_text("not numpy")
    assert main(["asm", str(tile_matmul.ASM_PATH), "--input", f"q={bad}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"npusim: error: --input q={bad}: not a .npy file") and err.count("\n") == 1


@pytest.mark.parametrize("option", ["--trace", "--plot"])
def test_an_unwritable_output_names_the_option_and_the_path(option, tmp_path, capsys):
    folder = tmp_path / "out.png"
    folder.mkdir()  # a folder where a file should go: refused before the run
    assert main(["run", "tile-matmul", "--no-numerics", option, str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"npusim: error: {option} {folder}: is a folder; name a file")
    assert err.count("\n") == 1


def test_an_unwritable_dump_names_the_option_and_the_path(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["run", "tile-matmul", "--dump", str(blocker / "d")]) == 2
    err = capsys.readouterr().err
    made = f"{blocker} is a file, so the directory cannot be made"
    assert err == f"npusim: error: --dump {blocker / 'd'}: {made}\n"


def test_an_unwritable_sweep_table_and_cache_name_their_option(tmp_path, capsys):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    common = ["sweep", "tile-matmul", "--vary", "seed=1", "--jobs", "1", "--quiet"]
    assert main([*common, "--no-cache", "--out", str(folder)]) == 2  # refused before any point runs
    assert capsys.readouterr().err == (f"npusim: error: --out {folder}: is a folder; name a file, "
                                       f"e.g. {folder / 'sweep.csv'}\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main([*common, "--cache", str(blocker / "c"), "--out", str(tmp_path / "t.csv")]) == 2
    assert capsys.readouterr().err.startswith(f"npusim: error: --cache {blocker / 'c'}: cannot write it: ")


def test_a_missing_sweep_file_names_the_option(tmp_path, capsys):
    argv = ["sweep", "tile-matmul", "--file", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "t.csv")]
    assert main(argv) == 2
    assert capsys.readouterr().err == (f"npusim: error: --file {tmp_path / 'nope.toml'}: cannot read it: "
                                       "No such file or directory\n")


def test_inputs_read_back_from_a_dump_are_unchanged(tmp_path):
    """The boundary wrapper in load_inputs changes nothing for a good file."""
    from isa.asm import load_program
    from npusim.inputs import load_inputs

    value = (np.arange(16 * 128) % 200 - 100).astype(np.float32).reshape(16, 128)  # exact in bf16
    np.save(tmp_path / "q.npy", value)
    got = load_inputs(load_program(tile_matmul.ASM_PATH), [f"q={tmp_path / 'q.npy'}"])
    np.testing.assert_array_equal(got["q"].astype(np.float32), value)
