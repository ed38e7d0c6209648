"""The command line runs the static checks exactly once per program (issue 11, defect 4)."""

import importlib

import isa.check
import npusim.cli.asm
import npusim.cli.check
import npusim.cli.runner
from npusim.cli import main
from programs import tile_matmul


def _count_checks(monkeypatch):
    """Every name the check is reachable by, wrapped to log the programs it checks."""
    calls = []
    original = isa.check.check_program

    def counting(program, limits):
        calls.append(program.name)
        return original(program, limits)

    # npusim.simulate the module, not the function that `npusim` exports under that name
    modules = (isa.check, npusim.cli.runner, npusim.cli.asm, npusim.cli.check,
               importlib.import_module("npusim.simulate"))
    for module in modules:
        monkeypatch.setattr(module, "check_program", counting)
    return calls


def test_run_checks_the_program_once(monkeypatch, capsys):
    calls = _count_checks(monkeypatch)
    assert main(["run", "tile-matmul", "--no-numerics"]) == 0
    assert calls == ["tile_matmul"]
    assert "static checks passed (1 task(s), 12 instructions)" in capsys.readouterr().out


def test_asm_checks_the_program_once(monkeypatch, capsys):
    calls = _count_checks(monkeypatch)
    assert main(["asm", str(tile_matmul.ASM_PATH)]) == 0
    assert calls == ["tile_matmul"]
    assert "static checks passed (1 task(s), 12 instructions)" in capsys.readouterr().out


def test_compare_checks_each_variant_once(monkeypatch, capsys):
    calls = _count_checks(monkeypatch)
    argv = ["compare", "paged-attention", "--batch", "1", "--head-dim", "64", "--block-size", "64",
            "--context-len", "100", "--no-numerics"]
    assert main(argv) == 0
    assert len(calls) == 2  # one program per variant
