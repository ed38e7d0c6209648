"""`--listing` prints the program the run is about to time: built for the preset it runs on."""

from isa.asm import format_listing
from npusim import load_preset
from npusim.cli import main
from programs import registry

SMALL = {"batch": 1, "head_dim": 64, "block_size": 64, "context_len": 300}
ARGV = ["run", "paged-attention", "--batch", "1", "--head-dim", "64", "--block-size", "64",
        "--context-len", "300", "--no-numerics", "--listing"]


def _listing(preset, target):
    config = load_preset(preset)
    return format_listing(registry.get("paged-attention").instance(SMALL, config.chip.cube_cores,
                                                                   config if target else None).program)


def test_listing_a_program_of_many_tasks_with_one_kernel_name(capsys):
    """It raised ValueError (a traceback): paged attention runs each qk_matmul_2b step as its own task."""
    assert main(ARGV) == 0
    out = capsys.readouterr().out
    assert _listing("910b2", target=True) in out
    assert ".kernel qk_r0h0s0 cube  # kernel qk_matmul_2b" in out

