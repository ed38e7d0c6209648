"""The chip: many cores, a scheduler over a task graph, and HBM shared by every core's transfers."""

import math

import numpy as np
import pytest

from isa import (
    BinaryOp,
    CoreKind,
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
    Store,
    Task,
    Tensor,
    Tile,
    UnaryOp,
    VecBinary,
    VecUnary,
    WaitFlag,
)
from isa.check import CheckError
from isa.errors import IsaError
from isa.interpret import interpret
from npusim import DeadlockError, load_preset, simulate

FP32, BF16 = DType.FP32, DType.BF16
BASE = load_preset("910b2").replace({"chip.dispatch_cycles": 0})
ROWS = 128  # a [128, 128] fp32 tile: 64 KiB


def stream_task(name: str, tensor: str, row: int, loads: int) -> Task:
    """A memory-bound vector task: `loads` loads of 64 KiB of contiguous rows into UB."""
    tile = Tile(Space.UB, 0, FP32, (ROWS, 128))
    body = tuple(Load(tile, GmRegion(tensor, row + i * ROWS, 0, ROWS, 128, FP32)) for i in range(loads))
    return Task(name, Kernel(name, body), CoreKind.VECTOR)


def stream_program(cores: int, loads: int) -> Program:
    rows = cores * loads * ROWS
    tasks = tuple(stream_task(f"t{c}", "x", c * loads * ROWS, loads) for c in range(cores))
    return Program("stream", (Tensor("x", FP32, (rows, 128)),), tasks)


def test_memory_bound_tasks_scale_until_hbm_saturates_then_share_it_fairly():
    # HBM carries exactly 8 cores' worth of GM -> UB traffic.
    cap = BASE.mte2.gm_to_ub_bytes_per_cycle
    cfg = BASE.replace({"hbm.bandwidth_gbps": 8 * cap * BASE.clock_ghz})
    loads, nbytes = 8, ROWS * 128 * 4
    times = {}
    for n in (1, 2, 4, 8, 16, 32, 48):
        result = simulate(stream_program(n, loads), cfg, numerics=False)
        times[n] = result.cycles - BASE.frontend.issue_cycles - BASE.mte2.latency_cycles
    alone = math.ceil(loads * nbytes / cap)
    for n in (1, 2, 4, 8):  # below saturation every core streams at its own path rate
        assert times[n] == pytest.approx(alone, abs=loads)
    hbm = 8 * cap
    for n in (16, 32, 48):  # above it, n cores share HBM: n x bytes over HBM bandwidth
        assert times[n] == pytest.approx(n * loads * nbytes / hbm, rel=0.01)
    assert times[48] == pytest.approx(6 * times[8], rel=0.02)


def vector_work(name: str, ops: int) -> Task:
    a, b = Tile(Space.UB, 0, FP32, (ROWS, 128)), Tile(Space.UB, 65536, FP32, (ROWS, 128))
    body = tuple(VecUnary(UnaryOp.EXP, b if i % 2 else a, a if i % 2 else b) for i in range(ops))
    return Task(name, Kernel(name, body), CoreKind.VECTOR)


def test_compute_bound_tasks_scale_with_the_number_of_cores():
    program = Program("compute", (), tuple(vector_work(f"v{i}", 20) for i in range(48)))
    one = simulate(Program("one", (), (vector_work("v", 20),)), BASE, numerics=False).cycles
    assert simulate(program, BASE, numerics=False).cycles == one  # 48 tasks on 48 AIV at once
    for cores in (24, 12, 6):
        cfg = BASE.replace({"chip.vector_cores": cores})
        assert simulate(program, cfg, numerics=False).cycles == (48 // cores) * one


def cube_producer() -> Task:
    """Cube task: out = q @ k into the GM workspace `ws` (fixpipe)."""
    q1, k1 = Tile(Space.L1, 0, BF16, (16, 128)), Tile(Space.L1, 4096, BF16, (128, 128))
    q0, k0 = Tile(Space.L0A, 0, BF16, (16, 128)), Tile(Space.L0B, 0, BF16, (128, 128))
    acc = Tile(Space.L0C, 0, FP32, (16, 128))
    body = (
        Load(q1, GmRegion("q", 0, 0, 16, 128, BF16)), Load(k1, GmRegion("k", 0, 0, 128, 128, BF16)),
        SetFlag(Pipe.MTE2, Pipe.MTE1, 0), WaitFlag(Pipe.MTE2, Pipe.MTE1, 0),
        Move(q0, q1), Move(k0, k1), SetFlag(Pipe.MTE1, Pipe.M, 0), WaitFlag(Pipe.MTE1, Pipe.M, 0),
        Mmad(acc, q0, k0), SetFlag(Pipe.M, Pipe.FIX, 0), WaitFlag(Pipe.M, Pipe.FIX, 0),
        Fixpipe(GmRegion("ws", 0, 0, 16, 128, FP32), acc),
    )
    return Task.of(Kernel("qk", body))


def vector_consumer() -> Task:
    """Vector task: out = 2 * ws (load the workspace, add it to itself, store)."""
    x, y = Tile(Space.UB, 0, FP32, (16, 128)), Tile(Space.UB, 8192, FP32, (16, 128))
    body = (
        Load(x, GmRegion("ws", 0, 0, 16, 128, FP32)), SetFlag(Pipe.MTE2, Pipe.V, 0),
        WaitFlag(Pipe.MTE2, Pipe.V, 0), VecBinary(BinaryOp.ADD, y, x, x), SetFlag(Pipe.V, Pipe.MTE3, 0),
        WaitFlag(Pipe.V, Pipe.MTE3, 0), Store(GmRegion("out", 0, 0, 16, 128, FP32), y),
    )
    return Task.of(Kernel("double", body))


def handoff_program() -> Program:
    tensors = (Tensor("q", BF16, (16, 128)), Tensor("k", BF16, (128, 128)),
               Tensor("ws", FP32, (16, 128), Role.WORKSPACE), Tensor("out", FP32, (16, 128), Role.OUTPUT))
    return Program("handoff", tensors, (cube_producer(), vector_consumer()))


def handoff_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"q": rng.standard_normal((16, 128)).astype(BF16.np),
            "k": rng.standard_normal((128, 128)).astype(BF16.np)}


def test_a_gm_dependency_orders_the_consumer_after_the_producer_on_another_core_kind():
    cfg = load_preset("910b2")
    result = simulate(handoff_program(), cfg, inputs=handoff_inputs())
    producer, consumer = result.traces
    assert (producer.core, consumer.core) == ("aic0", "aiv0")
    assert consumer.dispatched == producer.last_cycle  # ready when the fixpipe's write landed
    assert consumer.first_cycle == consumer.dispatched + cfg.chip.dispatch_cycles
    assert result.cycles == consumer.last_cycle


def test_the_workspace_read_back_comes_from_l2():
    cfg = load_preset("910b2")
    result = simulate(handoff_program(), cfg, inputs=handoff_inputs())
    consumer = result.traces[1]
    load = consumer.record(0)
    # The load hits: L2's hit latency after its bytes, not the HBM latency.
    assert load.end - load.busy_end == cfg.l2.hit_latency_cycles
    mem = result.memory
    assert mem.l2_hit_bytes == 16 * 128 * 4  # exactly the workspace
    assert mem.hbm_read_bytes == (16 * 128 + 128 * 128) * 2  # q and k, first touched
    assert mem.l2_hit_rate == pytest.approx(8192 / (8192 + 36864))


def test_multi_task_numerics_equal_the_interpreter_in_program_order():
    program, values = handoff_program(), handoff_inputs()
    timed = simulate(program, load_preset("910b2"), inputs=values).tensors
    reference = interpret(program, values, load_preset("910b2").core_limits())
    for name in ("ws", "out"):
        np.testing.assert_array_equal(timed[name], reference[name])
    q, k = values["q"].astype(np.float32), values["k"].astype(np.float32)
    np.testing.assert_array_equal(timed["out"], 2 * (q @ k))


def test_independent_tasks_run_at_once_on_cores_of_their_kind():
    program = Program("two", (), (vector_work("a", 4), vector_work("b", 4)))
    a, b = simulate(program, BASE, numerics=False).traces
    assert (a.core, b.core) == ("aiv0", "aiv1") and a.first_cycle == b.first_cycle == 0


def test_a_mixed_kernel_needs_a_coupled_chip():
    mixed = Kernel("mixed", (Load(Tile(Space.L1, 0, FP32, (8, 8)), GmRegion("x", 0, 0, 8, 8, FP32)),
                             Load(Tile(Space.UB, 0, FP32, (8, 8)), GmRegion("x", 0, 0, 8, 8, FP32))))
    program = Program.single(mixed, (Tensor("x", FP32, (8, 8)),))
    assert program.tasks[0].kind is CoreKind.MIXED
    with pytest.raises(CheckError, match="mixed kernel and it uses both cube and vector"):
        simulate(program, load_preset("910b2"), numerics=False)
    assert simulate(program, load_preset("310p"), numerics=False).traces[0].core == "core0"


def test_a_core_kind_the_chip_lacks_is_an_error_before_the_run():
    with pytest.raises(IsaError, match="task a needs a vector core and 910b2 has none"):
        simulate(Program("p", (), (vector_work("a", 1),)), BASE.replace({"chip.vector_cores": 0}),
                 numerics=False)


def test_tasks_behind_a_deadlocked_task_are_reported_never_hangs():
    stuck = Kernel("stuck", (WaitFlag(Pipe.MTE2, Pipe.V, 0), SetFlag(Pipe.V, Pipe.MTE2, 0),
                             WaitFlag(Pipe.V, Pipe.MTE2, 0), SetFlag(Pipe.MTE2, Pipe.V, 0),
                             Store(GmRegion("y", 0, 0, 8, 8, FP32), Tile(Space.UB, 0, FP32, (8, 8)))))
    after = Kernel("after", (Load(Tile(Space.UB, 0, FP32, (8, 8)), GmRegion("y", 0, 0, 8, 8, FP32)),))
    program = Program("p", (Tensor("y", FP32, (8, 8), Role.WORKSPACE),), (Task.of(stuck), Task.of(after)))
    with pytest.raises(DeadlockError) as err:
        simulate(program, BASE, numerics=False)
    message = str(err.value)
    assert "core aiv0, kernel stuck:" in message and "pipe V blocked at instruction 0" in message
    assert "1 task(s) never started, each waiting on an unfinished task: after" in message


def test_thousands_of_tasks_run_and_report_per_core_results():
    tasks = tuple(vector_work(f"v{i}", 3) for i in range(2000))
    result = simulate(Program("many", (), tasks), BASE, numerics=False)
    per_core = result.by_core()
    assert len(per_core) == 48 and sum(n for n, _ in per_core.values()) == 2000
    assert result.cycles == math.ceil(2000 / 48) * simulate(Program("one", (), tasks[:1]), BASE,
                                                            numerics=False).cycles


def test_a_chip_with_millions_of_cores_runs_as_one_with_a_core_per_task():
    # 16 memory-bound tasks: with more cores than tasks, the extra cores never run anything, so ten
    # million of them give the cycles, cores and HBM traffic of exactly 16, and no per-core cost.
    program = stream_program(16, 4)
    huge = simulate(program, BASE.replace({"chip.vector_cores": 10_000_000}), numerics=False)
    exact = simulate(program, BASE.replace({"chip.vector_cores": 16}), numerics=False)
    assert huge.cycles == exact.cycles
    assert [t.core for t in huge.traces] == [f"aiv{i}" for i in range(16)]
    assert huge.memory.hbm_read_bytes == exact.memory.hbm_read_bytes == 16 * 4 * ROWS * 128 * 4
