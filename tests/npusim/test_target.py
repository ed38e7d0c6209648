"""`npusim run` and sweeps build each program for the preset it runs on, not for the 910B.

The builders lay programs out for the chip they target (q-tile = the cube's m0, alignments from
the buffers); the CLI and every sweep point hand them the (overridden) preset.
"""

from npusim import load_preset, sweep
from npusim.cli import main
from npusim.cli.runner import kernel_listing
from programs import registry

PA = registry.get("paged-attention")
SMALL = {"batch": 1, "head_dim": 64, "block_size": 64, "context_len": 300}
ARGV = ["run", "paged-attention", "--batch", "1", "--head-dim", "64", "--block-size", "64",
        "--context-len", "300", "--no-numerics", "--listing"]


def _program(values, config, target):
    return PA.instance(values, config.chip.cube_cores, config if target else None).program


def test_run_builds_the_program_for_its_preset(capsys):
    config = load_preset("310p")
    built_for_310p = kernel_listing(_program(SMALL, config, target=True))  # what --listing prints
    assert built_for_310p != kernel_listing(_program(SMALL, config, target=False))  # layouts differ
    assert main([*ARGV, "--preset", "310p"]) == 0
    assert built_for_310p in capsys.readouterr().out


def test_a_sweep_point_builds_the_program_for_its_overridden_preset():
    # A q-tile is the cube's m0 rows: 20 heads make 3 q-tiles of 8, or 2 of the 910B's 16.
    values = {"variant": "1block", "batch": 1, "num_heads": 20, "head_dim": 64, "block_size": 64,
              "context_len": 100}
    points = sweep.expand({}, {"cube.m0": [8, 16]}, values)
    rows = [sweep.compute(spec) for spec in sweep.specs("paged-attention", "910b2", points, False)]
    m0_8 = load_preset("910b2").replace({"cube.m0": 8})
    assert [r["tasks"] for r in rows] == [len(_program(values, m0_8, target=True).tasks),
                                          len(_program(values, m0_8, target=False).tasks)]
    assert rows[0]["tasks"] > rows[1]["tasks"]  # more, smaller q-tiles
