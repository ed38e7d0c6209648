"""The timing engine: closed-form cycle counts, pipe semantics, numerics and sync errors."""

import math

import numpy as np
import pytest

from isa import (
    Barrier,
    BinaryOp,
    DType,
    Fixpipe,
    GmRegion,
    Kernel,
    Load,
    Mmad,
    Move,
    Pipe,
    Program,
    Role,
    SetFlag,
    Space,
    Tensor,
    Tile,
    UnaryOp,
    VecBinary,
    VecUnary,
    WaitFlag,
)
from isa.check import CheckError
from isa.interpret import interpret
from npusim import DeadlockError, load_preset, simulate
from npusim.config import VectorOp
from npusim.flags import SyncError
from programs import matmul, tile_matmul

# 910b2's numbers on one coupled core kind, so a test kernel may mix cube and vector instructions,
# and no dispatch overhead, so a kernel's first instruction issues at cycle issue_cycles.
CFG = load_preset("910b2").replace({"chip.coupled": True, "chip.dispatch_cycles": 0})
FE, M2, SY, V = CFG.frontend, CFG.mte2, CFG.sync, CFG.vector
BF16, FP32 = DType.BF16, DType.FP32
X = Tensor("x", BF16, (64, 128))
UB = [Tile(Space.UB, i * 32768, FP32, (64, 128)) for i in range(4)]  # 32 KiB fp32 tiles


def load(i: int, rows: int = 16) -> Load:
    """Load rows 16i.. of x (each load its own rows, so none hits in L2) into L1."""
    return Load(Tile(Space.L1, i * 8192, BF16, (rows, 128)), GmRegion("x", 16 * i, 0, rows, 128, BF16))


def run(*instrs, tensors=(X,), **kw):
    return simulate(Program.single(Kernel("k", tuple(instrs)), tensors), CFG, numerics=False, **kw)


def occ_load(nbytes: int) -> int:
    return math.ceil(nbytes / M2.gm_to_l1_bytes_per_cycle)


def vec_occ(op: VectorOp, rows: int, nbytes: int) -> int:
    """A whole-tile vector op: startup + rows x row_cycles + ceil(bytes / 256) repeats x repeat_cycles."""
    repeats = math.ceil(nbytes / V.bytes_per_repeat)
    return math.ceil(op.startup_cycles + rows * op.row_cycles + repeats * op.repeat_cycles - 1e-9)


def test_one_load_ends_at_issue_plus_latency_plus_bytes_over_bandwidth():
    t = run(load(0)).traces[0]
    issue = FE.issue_cycles
    assert (t.issue[0], t.start[0]) == (issue, issue)
    assert t.end[0] == issue + M2.latency_cycles + occ_load(16 * 128 * 2)
    assert t.busy[Pipe.MTE2] == occ_load(4096)


def test_back_to_back_loads_pipeline():
    result = run(load(0), load(1))
    t, occ = result.traces[0], occ_load(4096)
    assert t.start[1] == t.busy_end[0] == t.start[0] + occ  # the second starts when the first frees MTE2
    assert t.end[1] == t.start[1] + occ + M2.latency_cycles
    assert result.cycles == t.end[1] < 2 * (occ + M2.latency_cycles)


def test_strided_rows_pay_bursts_and_a_per_row_cost():
    cache = Tensor("kc", BF16, (4, 64, 2, 64))  # [blocks, block_size, kv_heads, head_dim]
    head = GmRegion("kc", 1 * 64 * 2 + 1, 0, 64, 64, BF16, row_step=2)  # block 1, KV head 1
    t = run(Load(Tile(Space.L1, 0, BF16, (64, 64)), head), tensors=(cache,)).traces[0]
    row_bytes = 64 * 2
    moved = 64 * math.ceil(row_bytes / M2.burst_bytes) * M2.burst_bytes
    occ = math.ceil(moved / M2.gm_to_l1_bytes_per_cycle) + math.ceil(64 * M2.row_cycles)
    assert t.busy_end[0] - t.start[0] == occ


def test_flag_orders_a_move_after_the_load():
    move = Move(Tile(Space.L0A, 0, BF16, (16, 128)), Tile(Space.L1, 0, BF16, (16, 128)))
    t = run(load(0), SetFlag(Pipe.MTE2, Pipe.MTE1, 0), WaitFlag(Pipe.MTE2, Pipe.MTE1, 0), move).traces[0]
    assert t.end[1] == t.end[0] + SY.flag_cycles  # set_flag fires once the load completed
    assert t.start[3] == t.end[2] == t.end[1]
    assert t.start[2] == t.issue[2] < t.end[2]  # the wait blocked MTE1 from its issue to the flag
    assert t.released_by[2] == 1
    without = run(load(0), move).traces[0]
    assert without.start[1] == without.issue[1]  # unsynchronised, the move starts at once


def test_a_full_queue_stalls_issue_of_later_instructions_on_other_pipes():
    cfg = CFG.replace({"frontend.queue_depth": 2})
    vec = VecUnary(UnaryOp.COPY, UB[1], UB[0])
    body = (load(0), load(1), load(2), load(3), vec)
    t = simulate(Program.single(Kernel("k", body), (X,)), cfg, numerics=False).traces[0]
    # load0 runs; load1 and load2 fill the queue; load3 waits for load1 to leave it (when load0 frees MTE2).
    assert t.issue[3] == t.start[1] == t.busy_end[0]
    assert t.issue[4] == t.issue[3] + FE.issue_cycles and t.start[4] == t.issue[4]
    free = simulate(Program.single(Kernel("k", body), (X,)), CFG, numerics=False).traces[0]
    assert free.issue[4] == 5 * FE.issue_cycles


def test_barrier_makes_a_pipe_wait_for_its_own_earlier_results():
    add = VecBinary(BinaryOp.ADD, UB[1], UB[0], UB[0])
    exp = VecUnary(UnaryOp.EXP, UB[2], UB[1])
    plain = run(add, exp).traces[0]
    assert plain.start[1] == plain.busy_end[0]  # same-pipe instructions do not interlock
    fenced = run(add, Barrier(Pipe.V), exp).traces[0]
    assert fenced.start[2] == fenced.end[0] == fenced.busy_end[0] + V.latency_cycles
    # fp32 [64, 128]: 29 + 64 x 0.5 + 128 repeats x 1.75 = 285 cycles on 910b2
    assert fenced.busy_end[0] - fenced.start[0] == vec_occ(V.binary, 64, 32768) == 285


def test_barrier_all_drains_every_pipe_before_issuing_more():
    add = VecBinary(BinaryOp.ADD, UB[1], UB[0], UB[0])
    t = run(load(0), add, Barrier(None), load(1)).traces[0]
    assert t.issue[3] == max(t.end[0], t.end[1]) + FE.issue_cycles


def test_double_buffered_matmul_overlaps_its_pipes():
    result = simulate(matmul.build_single_core(256, 256, 512), CFG, numerics=False)
    busy = result.busy
    assert result.cycles < 0.75 * sum(busy.values())
    assert result.cycles >= max(busy.values())
    for pipe in (Pipe.MTE2, Pipe.MTE1, Pipe.M, Pipe.FIX):
        assert busy[pipe] > 0


@pytest.mark.parametrize("program, values", [
    (tile_matmul.build(), tile_matmul.inputs(1)),
    (matmul.build_single_core(200, 300, 384), matmul.inputs(200, 300, 384)),
])
def test_synchronised_kernels_are_bit_identical_to_the_interpreter(program, values):
    timed = simulate(program, CFG, inputs=values)
    reference = interpret(program, values, CFG.core_limits())
    for name, value in reference.items():
        np.testing.assert_array_equal(timed.tensors[name], value)


def test_a_removed_flag_lets_the_consumer_read_stale_data():
    full = tile_matmul.build()
    body = tuple(i for i in full.kernels[0].instructions
                 if not (isinstance(i, SetFlag | WaitFlag) and i.src is Pipe.M))
    broken = Program.single(Kernel("broken", body), full.tensors)
    values = tile_matmul.inputs(0)
    good = interpret(broken, values, CFG.core_limits())["out"]  # program order hides the race
    raced = simulate(broken, CFG, inputs=values).tensors["out"]
    assert not np.array_equal(raced, good)
    assert np.isnan(raced).all()  # fixpipe read L0C before the mmad wrote it: the NaN poison


def test_wait_never_set_is_a_deadlock_naming_the_pipe_and_instruction():
    body = (load(0), WaitFlag(Pipe.MTE2, Pipe.MTE1, 3))
    with pytest.raises(CheckError, match="which no set_flag in this kernel sets"):
        run(*body)
    with pytest.raises(DeadlockError) as err:
        run(*body, check=False)
    message = str(err.value)
    assert "pipe MTE1 blocked at instruction 1 `wait_flag MTE2 MTE1 3`" in message
    assert "(MTE2 -> MTE1, event 3): set 0x, waited 0x, waited on, never set" in message


def test_cyclic_waits_deadlock_even_though_every_flag_is_set_somewhere():
    body = (WaitFlag(Pipe.MTE1, Pipe.MTE2, 0), SetFlag(Pipe.MTE2, Pipe.MTE1, 0),
            WaitFlag(Pipe.MTE2, Pipe.MTE1, 0), SetFlag(Pipe.MTE1, Pipe.MTE2, 0))
    with pytest.raises(DeadlockError, match="pipe MTE2 blocked at instruction 0"):
        run(*body)


def test_a_flag_set_twice_before_its_wait_is_an_error():
    big = Tile(Space.UB, 0, FP32, (128, 256))
    body = (VecUnary(UnaryOp.EXP, big, big), SetFlag(Pipe.MTE2, Pipe.V, 0), SetFlag(Pipe.MTE2, Pipe.V, 0),
            WaitFlag(Pipe.MTE2, Pipe.V, 0), WaitFlag(Pipe.MTE2, Pipe.V, 0))
    with pytest.raises(SyncError, match=r"instruction 2 `set_flag MTE2 V 0` sets flag .* by instruction 1"):
        run(*body)


def test_same_inputs_give_identical_records():
    program, values = matmul.build_single_core(128, 256, 256), matmul.inputs(128, 256, 256)
    a, b = simulate(program, CFG, inputs=values), simulate(program, CFG, inputs=values)
    assert a.cycles == b.cycles
    for name in ("issue", "start", "busy_end", "end", "released_by"):
        np.testing.assert_array_equal(getattr(a.traces[0], name), getattr(b.traces[0], name))
    assert list(a.traces[0].records()) == list(b.traces[0].records())


def test_results_report_seconds_busy_and_records():
    result = simulate(tile_matmul.build(), CFG, inputs=tile_matmul.inputs(0))
    assert result.seconds == pytest.approx(result.cycles / 1.8e9)
    rec = result.traces[0].record(8)
    assert rec.text.startswith("mmad") and rec.pipe is Pipe.M and rec.flops == 2 * 16 * 128 * 128
    assert result.traces[0].record(0).bytes == 16 * 128 * 2
    assert result.traces[0].record_nbytes <= 200 * len(result.traces[0])


def test_a_kernel_without_gm_runs_alone_and_one_with_gm_needs_its_tensors():
    add = VecBinary(BinaryOp.ADD, UB[1], UB[0], UB[0])
    assert simulate(Kernel("v", (add,)), CFG, numerics=False).cycles == FE.issue_cycles + vec_occ(
        V.binary, 64, 32768) + V.latency_cycles
    with pytest.raises(Exception, match="needs its tensors"):
        simulate(Kernel("g", (load(0),)), CFG)


def test_inputs_are_required_for_numerics_and_output_roles_start_at_zero():
    out = Tensor("y", FP32, (64, 128), Role.OUTPUT)
    result = simulate(Program.single(Kernel("k", (load(0),)), (X, out)), CFG,
                      inputs={"x": np.zeros((64, 128), BF16.np)})
    assert not result.tensors["y"].any()
    with pytest.raises(Exception, match="x"):
        simulate(Program.single(Kernel("k", (load(0),)), (X,)), CFG)


def test_back_to_back_accumulating_mmads_add_up_in_order_without_a_barrier():
    # Each mmad after the first starts when the one before frees the cube, before its result lands
    # in L0C; the cube's accumulator still adds them in order, as on hardware (no `barrier M`).
    a1, b1 = Tile(Space.L1, 0, BF16, (16, 16)), Tile(Space.L1, 512, BF16, (16, 16))
    a, b = Tile(Space.L0A, 0, BF16, (16, 16)), Tile(Space.L0B, 0, BF16, (16, 16))
    c = Tile(Space.L0C, 0, FP32, (16, 16))
    body = (
        Load(a1, GmRegion("a", 0, 0, 16, 16, BF16)), Load(b1, GmRegion("b", 0, 0, 16, 16, BF16)),
        SetFlag(Pipe.MTE2, Pipe.MTE1, 0), WaitFlag(Pipe.MTE2, Pipe.MTE1, 0), Move(a, a1), Move(b, b1),
        SetFlag(Pipe.MTE1, Pipe.M, 0), WaitFlag(Pipe.MTE1, Pipe.M, 0),
        Mmad(c, a, b), Mmad(c, a, b, accumulate=True), Mmad(c, a, b, accumulate=True),
        SetFlag(Pipe.M, Pipe.FIX, 0), WaitFlag(Pipe.M, Pipe.FIX, 0),
        Fixpipe(GmRegion("c", 0, 0, 16, 16, FP32), c),
    )
    tensors = (Tensor("a", BF16, (16, 16)), Tensor("b", BF16, (16, 16)),
               Tensor("c", FP32, (16, 16), Role.OUTPUT))
    program = Program.single(Kernel("acc", body), tensors)
    rng = np.random.default_rng(0)
    values = {name: rng.standard_normal((16, 16)).astype(BF16.np) for name in ("a", "b")}
    result = simulate(program, CFG, inputs=values)
    t = result.traces[0]
    assert t.start[9] == t.busy_end[8] < t.end[8] and t.start[10] < t.end[9]  # latencies overlap
    product = values["a"].astype(np.float32) @ values["b"].astype(np.float32)
    np.testing.assert_array_equal(result.tensors["c"], product + product + product)
    np.testing.assert_array_equal(result.tensors["c"], interpret(program, values, CFG.core_limits())["c"])


def test_a_set_flag_on_s_records_when_it_fires_as_a_set_on_a_pipe_does():
    # S issues the set at cycle issue_cycles and is free at once; the flag is visible flag_cycles later,
    # which is when the V wait is released, and what the set's record says (the timeline and trace read it).
    t = run(SetFlag(Pipe.S, Pipe.V, 0), WaitFlag(Pipe.S, Pipe.V, 0)).traces[0]
    assert t.issue[0] == t.start[0] == t.busy_end[0] == FE.issue_cycles
    assert t.end[0] == FE.issue_cycles + SY.flag_cycles == t.end[1]


def test_front_end_flags_are_judged_in_cycle_order_not_in_run_ahead_order():
    # The front-end issues the second set at cycle 14, after V consumed the first (at cycle ~6): fine,
    # although the front-end reaches it in Python before V has run at all.
    body = (SetFlag(Pipe.S, Pipe.V, 0), WaitFlag(Pipe.S, Pipe.V, 0), *[Barrier(Pipe.S)] * 10,
            SetFlag(Pipe.S, Pipe.V, 0), WaitFlag(Pipe.S, Pipe.V, 0))
    t = run(*body).traces[0]
    assert t.released_by[1] == 0 and t.released_by[13] == 12
    assert t.end[13] == t.issue[12] + SY.flag_cycles
    # With V busy for a long time first, the second set really does come before the first wait.
    big = Tile(Space.UB, 0, FP32, (128, 256))
    busy = (VecUnary(UnaryOp.EXP, big, big), *body)
    with pytest.raises(SyncError, match=r"instruction 13 `set_flag S V 0` sets flag \(S -> V, event 0\)"):
        run(*busy)
