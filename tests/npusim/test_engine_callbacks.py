"""The engine's executors and tasks are callbacks on SimPy events; here they are checked against the
plain form they replace, one SimPy process per pipe and per task, on runs where the order of the
events of one cycle decides results: HBM shared by many cores, flags, full queues, no dispatch
overhead, numerics, and errors. The two must agree to the byte."""

import numpy as np
import pytest

from isa.asm import parse_program
from isa.semantics import numeric_context
from npusim import DeadlockError, load_preset
from npusim.chip import ChipRun
from npusim.engine import CoreRun
from npusim.flags import SyncError
from programs import matmul, registry, vector_scale

BASE = load_preset("910b2")


class _ProcessCoreRun(CoreRun):
    """One SimPy process per pipe executor: the plain form of `CoreRun._execute`."""

    def _start_executors(self) -> None:
        for ps in self._executors:
            self.env.process(self._executor(ps))

    def _executor(self, ps):
        env, queue = self.env, ps.queue
        while True:
            if not queue:
                if self.issue_done:
                    ps.finished = True
                    self._on_pipe_idle()
                    if self.finished:
                        self._finish()
                    return
                wake = ps.wake = env.event()
                if self._barrier_pending:
                    self._on_pipe_idle()
                yield wake
                continue
            idx, issued = queue[0]
            now = env.now
            if issued > now:
                yield env.timeout(issued - now)
                now = issued
            queue.popleft()
            if self._blocked_on is ps:
                self._blocked_on = None
                self._clock = max(self._clock, now - self.config.frontend.issue_cycles)
                self._advance()
            self.start[idx] = now
            kind = self.kinds[idx]
            free = self._handlers[kind](ps, idx, now)
            if type(free) is not int:
                free = self._resumers[kind](ps, idx, (yield free))
            if free > env.now:
                yield env.timeout(free - env.now)


class _ProcessChipRun(ChipRun):
    """One SimPy process per task, running `_ProcessCoreRun`s: the plain form of the task callbacks."""

    def _run_task(self, j, core, pool):
        self.env.process(self._task(j, core, pool))

    def _task(self, j, core, pool):
        env, functional = self.env, self.functional
        dispatched = env.now
        if self.config.chip.dispatch_cycles:
            yield env.timeout(self.config.chip.dispatch_cycles)
        state = functional.begin_task(core.name, core.limits) if functional is not None else None
        run = _ProcessCoreRun(env, core.name, self._decoded(self.program.tasks[j].kernel), self.config,
                              self.memsys, state, functional)
        self.running[j] = run
        first = env.now
        run.start_processes()
        last = yield run.done
        self._retire(j, core, pool, run, dispatched, first, last)


def _both(program, config, inputs=None, numerics=False):
    """The Result of each form, or the (type, message) of what each raised."""
    out = []
    for cls in (ChipRun, _ProcessChipRun):
        try:
            if numerics:
                with numeric_context():
                    out.append(cls(program, config, inputs, True).run())
            else:
                out.append(cls(program, config, None, False).run())
        except SyncError as exc:
            out.append((type(exc), str(exc)))
    return out


def _assert_same(a, b) -> None:
    assert a.cycles == b.cycles
    assert len(a.traces) == len(b.traces)
    for x, y in zip(a.traces, b.traces, strict=True):
        assert (x.task, x.core, x.dispatched, x.first_cycle, x.last_cycle) == \
               (y.task, y.core, y.dispatched, y.first_cycle, y.last_cycle)
        assert dict(x.busy) == dict(y.busy)
        for field in ("issue", "start", "busy_end", "end", "bytes", "flops", "released_by"):
            np.testing.assert_array_equal(getattr(x, field), getattr(y, field), err_msg=field)
    assert a.memory == b.memory
    if a.tensors is not None:
        assert a.tensors.keys() == b.tensors.keys()
        for name in a.tensors:
            np.testing.assert_array_equal(a.tensors[name], b.tensors[name], err_msg=name)


def _programs():
    paged = registry.get("paged-attention")
    return {
        "paged 2block": lambda c: paged.instance({"variant": "2block", "batch": 4, "context_len": 1536},
                                                 c.chip.cube_cores, c).program,
        "paged 1block": lambda c: paged.instance({"variant": "1block", "batch": 3, "context_len": 700},
                                                 c.chip.cube_cores, c).program,
        "gemm per tile": lambda c: matmul.build_per_tile(512, 512, 256, 8),
        "gemm panels": lambda c: matmul.build(256, 384, 256, cores=3),
        "vector scale": lambda c: vector_scale.build(64, 1024, 12),
    }


CONFIGS = {
    "910b2": {},
    "no dispatch overhead": {"chip.dispatch_cycles": 0},
    "short queues": {"frontend.queue_depth": 2, "chip.dispatch_cycles": 0},
    "slow HBM, few cores": {"hbm.bandwidth_gbps": 200.0, "chip.cube_cores": 3, "chip.vector_cores": 5},
    "coupled": {"chip.coupled": True, "chip.cube_cores": 4, "frontend.queue_depth": 3},
    # L2 far smaller than the data: which transfer of a cycle touches its lines first decides hits.
    "small L2": {"l2.capacity_bytes": 262144, "chip.dispatch_cycles": 0},
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("program", sorted(_programs()))
def test_callbacks_time_every_instruction_as_processes_do(program, config):
    cfg = BASE.replace(CONFIGS[config])
    fast, plain = _both(_programs()[program](cfg), cfg)
    _assert_same(fast, plain)


@pytest.mark.parametrize("config", ["910b2", "no dispatch overhead", "short queues"])
def test_callbacks_compute_the_same_numbers_as_processes(config):
    cfg = BASE.replace(CONFIGS[config])
    fast, plain = _both(matmul.build(256, 256, 256, cores=2), cfg, matmul.inputs(256, 256, 256), True)
    _assert_same(fast, plain)


DOUBLE_SET = parse_program("""
    .program double_set
    .kernel k
        set_flag MTE2 V 0
        set_flag MTE2 V 0
        wait_flag MTE2 V 0
        wait_flag MTE2 V 0
""")

DEADLOCK = parse_program("""
    .program deadlock
    .tensor x fp32[16,64] input
    .kernel k
        wait_flag V MTE2 0
        load UB[0x0000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
        load UB[0x1000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
        load UB[0x2000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
        set_flag V MTE2 0
""")


@pytest.mark.parametrize("program, error", [(DOUBLE_SET, SyncError), (DEADLOCK, DeadlockError)])
def test_callbacks_raise_what_processes_raise(program, error):
    cfg = BASE.replace({"frontend.queue_depth": 2})
    fast, plain = _both(program, cfg)
    assert fast == plain
    assert fast[0] is error
