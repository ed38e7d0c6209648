"""`--seed` takes the same values in every command: a whole number from 0 to 2**63 - 1."""

import pytest

from isa.draw import parse_seed
from npusim.cli import main

SAYS = "a seed is a whole number from 0 to 2**63 - 1, got "


@pytest.mark.parametrize("argv", [["run", "tile-matmul"], ["asm", "programs/tile_matmul.s"],
                                  ["run", "paged-attention", "--batch", "1", "--context-len", "64"]])
@pytest.mark.parametrize("seed", ["-1", "9223372036854775808", "1.5", "x"])
def test_a_seed_out_of_range_is_one_line_naming_the_range(argv, seed, capsys):
    assert main([*argv, "--seed", seed, "--no-numerics"]) == 2
    err = capsys.readouterr().err
    assert err.endswith(SAYS + (seed if seed.lstrip("-").isdigit() else repr(seed)) + "\n")
    assert err.count("\n") == 1


def test_the_range_ends_are_seeds():
    assert parse_seed("0") == 0 and parse_seed("9223372036854775807") == 2**63 - 1


def test_a_sweep_refuses_a_negative_seed_before_any_point_runs(tmp_path, capsys):
    assert main(["sweep", "tile-matmul", "--vary", "seed=1,-1", "--out", str(tmp_path / "s.csv")]) == 2
    assert SAYS + "-1" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()
