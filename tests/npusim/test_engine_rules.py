"""Engine rules that once were wrong: barrier ALL and pending waits, tasks that leave writes pending,
and the uncontended fast path of the memory system against the full fair-share bookkeeping."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isa.asm import parse_program
from isa.interpret import interpret
from isa.program import CoreKind
from npusim import load_preset, simulate
from npusim.chip import ChipRun
from programs import matmul, vector_scale

CFG = load_preset("910b2").replace({"chip.dispatch_cycles": 0})


def test_barrier_all_waits_for_a_pending_wait_flag_on_another_pipe():
    program = parse_program("""
        .program barrier_after_wait
        .tensor x fp32[16,64] input
        .kernel k
            load UB[0x0000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
            set_flag MTE2 V 0
            wait_flag MTE2 V 0
            barrier ALL
            vdup UB[0x1000] fp32[16,64] <- 1.0
    """)
    t = simulate(program, CFG, numerics=False).traces[0]
    m2, sy = CFG.mte2, CFG.sync
    load_end = 1 + m2.latency_cycles + math.ceil(16 * 64 * 4 / m2.gm_to_ub_bytes_per_cycle)
    wait_end = load_end + sy.flag_cycles  # the set fires once the load has landed, V sees it then
    assert t.end[0] == load_end and t.end[2] == wait_end
    assert t.end[3] == wait_end  # the barrier ends when the wait does, not when the load did
    assert t.issue[4] == wait_end + CFG.frontend.issue_cycles


def test_a_write_left_pending_by_one_task_never_reaches_the_next_task_on_its_core():
    program = parse_program("""
        .program leftovers
        .tensor out fp32[16,64] output
        .kernel fill
            vdup UB[0x0000] fp32[16,64] <- 1.0
        .kernel drain
            store GM:out[0:16, 0:64] fp32 <- UB[0x0000] fp32[16,64]
    """)
    one_core = CFG.replace({"chip.vector_cores": 1})
    timed = simulate(program, one_core).tensors["out"]
    reference = interpret(program, {}, one_core.core_limits(CoreKind.VECTOR))["out"]
    assert np.isnan(reference).all()  # the second task reads its own, never written, UB
    np.testing.assert_array_equal(timed, reference)


def _contended(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every run keep the full fair-share bookkeeping, as if HBM could saturate."""
    monkeypatch.setattr(ChipRun, "_peak_demand", lambda self: math.inf)


def _programs():
    return {
        "gemm": matmul.build(256, 384, 256, cores=3),
        "scale": vector_scale.build(64, 2048, tasks=4),
        "single": matmul.build_single_core(256, 256, 256),
    }


@settings(max_examples=6, deadline=None)
@given(name=st.sampled_from(["gemm", "scale", "single"]), cores=st.integers(1, 8),
       hbm=st.sampled_from([1600.0, 3200.0, 6400.0]))
def test_the_uncontended_fast_path_times_exactly_as_the_full_bookkeeping(name, cores, hbm):
    """When no flow can slow another, skipping the rate bookkeeping changes no cycle."""
    config = CFG.replace({"chip.cube_cores": cores, "chip.vector_cores": cores,
                          "hbm.bandwidth_gbps": hbm, "l2.bandwidth_gbps": 100000.0})
    program = _programs()[name]
    run = ChipRun(program, config, None, numerics=False)
    assert run.memsys.uncontended  # at most 4 busy cores cannot saturate HBM this fast
    fast = run.run()
    with pytest.MonkeyPatch.context() as mp:
        _contended(mp)
        slow_run = ChipRun(program, config, None, numerics=False)
        assert not slow_run.memsys.uncontended
        slow = slow_run.run()
    assert fast.cycles == slow.cycles
    for a, b in zip(fast.traces, slow.traces, strict=True):
        for field in ("issue", "start", "busy_end", "end"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_a_cube_narrower_than_one_element_per_step_still_has_a_speed_of_light(capsys):
    """k0_bytes below the element size means one element per step, in the cost model and the roofline."""
    from npusim.cli import main
    from npusim.roofline import bounds
    from programs import tile_matmul

    config = load_preset("910b2").replace({"cube.k0_bytes": 1})
    result = simulate(tile_matmul.build(), config, numerics=False)
    # One mmad of [16,128] x [128,128] bf16 at 16 x 16 x 1 MACs per cycle.
    assert bounds(result).compute_cycles == 16 * 128 * 128 / (16 * 16 * 1)
    assert main(["run", "tile-matmul", "--no-numerics", "--set", "cube.k0_bytes=1"]) == 0
    assert "speed of light" in capsys.readouterr().out.lower()
