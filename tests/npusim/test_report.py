"""The text summary's "where the time goes": the busiest instruction kinds of a run."""

from isa.asm import parse_program
from isa.types import Pipe
from npusim import load_preset, report, simulate, stats
from tests.npusim.test_stats import CFG, TINY


def test_the_summary_lists_the_busiest_kinds_with_their_share_of_the_pipe():
    # Worked in test_stats: vmuls and vadds hold V 61 cycles each, the two moves MTE1 16 each;
    # nothing else keeps a pipe busy, so three kinds are listed.
    text = report.summary(simulate(parse_program(TINY), CFG, numerics=False)).splitlines()
    at = text.index("  where the time goes: the 3 instruction kinds with the most busy cycles")
    assert [line.split() for line in text[at + 2:at + 5]] == [
        ["vadds", "V", "1", "61", "50.0%"], ["vmuls", "V", "1", "61", "50.0%"],
        ["move", "MTE1", "2", "32", "100.0%"]]
    assert text[at + 5].startswith("  GM:")


def test_the_summary_lists_five_kinds_at_most_busiest_first():
    from programs import registry

    config = load_preset("910b2")
    program = registry.get("paged-attention").instance(
        {"batch": 2, "context_len": 300, "head_dim": 64, "block_size": 64, "variant": "2block"},
        config.chip.cube_cores, config).program
    result = simulate(program, config, numerics=False)
    rows = [line.split() for line in report.where_the_time_goes(result)[2:]]
    assert len(rows) == report.TOP_KINDS == 5
    busy = [int(r[3]) for r in rows]
    assert busy == sorted(busy, reverse=True)
    kinds = {(k.mnemonic, k.pipe.value): k.busy for k in stats.kinds(result)}
    assert busy[-1] >= max(b for key, b in kinds.items() if key not in {(r[0], r[1]) for r in rows})
    for mnemonic, pipe, _, cycles, share in rows:
        assert kinds[(mnemonic, pipe)] == int(cycles)
        assert share == f"{100 * int(cycles) / result.busy[Pipe(pipe)]:.1f}%"
