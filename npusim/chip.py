"""The chip: cores of each kind, a scheduler that dispatches ready tasks to them, one shared GM.

A split chip (910B-like) has `chip.cube_cores` AIC (cube) and `chip.vector_cores` AIV (vector)
cores; a coupled chip (310P-like) has `chip.cube_cores` cores that run any kernel. A task is ready
when every earlier task whose GM regions conflict with its own has finished (`isa.deps`). The
scheduler hands ready tasks, in program order, to idle cores of their kind (the lowest-numbered
first, so runs are deterministic); a task's first instruction issues `chip.dispatch_cycles` later.
It needs no process of its own: it acts when the run starts and whenever a task finishes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from functools import partial

import numpy as np
import simpy

from isa.deps import dependencies
from isa.errors import IsaError
from isa.limits import CoreLimits
from isa.program import CoreKind, Kernel, Program
from isa.types import Pipe
from npusim.config import HardwareConfig
from npusim.decode import DecodeCache, DecodedKernel
from npusim.engine import CoreRun, Urgent, fail_later
from npusim.flags import SyncError
from npusim.functional import FunctionalState
from npusim.memsys import MemorySystem
from npusim.results import KernelTrace, MemoryStats, Result

_EVENTS_PER_REPORT = 20_000  # SimPy events between progress reports: a few ms of wall time


class DeadlockError(SyncError):
    """Nothing can advance but work remains: the message says who waits on what."""


class _Core:
    __slots__ = ("index", "name", "limits")

    def __init__(self, index: int, name: str, limits: CoreLimits):
        self.index, self.name, self.limits = index, name, limits


def core_names(config: HardwareConfig) -> list[str]:
    """The names of the chip's cores, as runs and traces call them (each kind's prefix, `isa.cores`)."""
    chip = config.chip
    if chip.coupled:
        return [f"{CoreKind.MIXED.prefix}{i}" for i in range(chip.cube_cores)]
    return ([f"{CoreKind.CUBE.prefix}{i}" for i in range(chip.cube_cores)]
            + [f"{CoreKind.VECTOR.prefix}{i}" for i in range(chip.vector_cores)])


class ChipRun:
    """One program on the whole chip: build with the program, call `run()` once for the Result."""

    def __init__(self, program: Program, config: HardwareConfig, inputs: Mapping[str, np.ndarray] | None,
                 numerics: bool):
        self.program, self.config = program, config
        self.env = simpy.Environment()
        self.tensors = {t.name: t for t in program.tensors}
        self.functional = FunctionalState(program.tensors, inputs or {}) if numerics else None
        self.pools = self._build_pools()
        self.memsys = MemorySystem(self.env, config, program.tensors, self._peak_demand())
        tasks = program.tasks
        for task in tasks:
            if not self.pools[task.kind][1]:
                raise IsaError(f"task {task.name} needs a {task.kind.value} core and {config.name} has none "
                               f"(chip.cube_cores = {config.chip.cube_cores}, "
                               f"chip.vector_cores = {config.chip.vector_cores})")
        preds = dependencies(program.kernels) if len(tasks) > 1 else ((),) * len(tasks)
        self.waiting = [len(p) for p in preds]
        self.successors: list[list[int]] = [[] for _ in tasks]
        for j, before in enumerate(preds):
            for i in before:
                self.successors[i].append(j)
        self.traces: list[KernelTrace | None] = [None] * len(tasks)
        self.running: dict[int, CoreRun] = {}
        self.issued = 0  # instructions of the finished tasks
        self._decode_cache: dict[int, DecodedKernel] = {}  # by kernel identity: the program keeps them
        self._decoded_instructions = DecodeCache()  # shared by the run's kernels

    def _build_pools(self) -> dict[CoreKind, tuple[list[int], list[_Core]]]:
        """For each kind of kernel, (a heap of idle core indices, the cores); shared where cores are.

        A pool holds no more cores than there are tasks to run on it: the scheduler always takes the
        lowest-numbered idle core, so with T tasks no core numbered T or above is ever used, and a
        chip configured with millions of cores costs no more than one with as many as the tasks.
        """
        chip, tasks = self.config.chip, self.program.tasks

        def cores(kind: CoreKind, count: int, *runs: CoreKind) -> tuple[list[int], list[_Core]]:
            count = min(count, sum(t.kind in runs for t in tasks))
            limits = self.config.core_limits(kind)
            made = [_Core(i, f"{kind.prefix}{i}", limits) for i in range(count)]
            return list(range(count)), made

        if chip.coupled:
            pool = cores(CoreKind.MIXED, chip.cube_cores, *CoreKind)
            return {kind: pool for kind in CoreKind}
        return {CoreKind.CUBE: cores(CoreKind.CUBE, chip.cube_cores, CoreKind.CUBE),
                CoreKind.VECTOR: cores(CoreKind.VECTOR, chip.vector_cores, CoreKind.VECTOR),
                CoreKind.MIXED: ([], [])}

    def _peak_demand(self) -> float:
        """The most GM bytes per cycle the cores that can be busy at once could move together.

        Each pool has at most as many cores as tasks to run on them (`_build_pools`)."""
        c = self.config
        per_core = {
            CoreKind.CUBE: c.mte2.gm_to_l1_bytes_per_cycle + c.fixpipe.l0c_to_gm_bytes_per_cycle,
            CoreKind.VECTOR: c.mte2.gm_to_ub_bytes_per_cycle + c.mte3.ub_to_gm_bytes_per_cycle,
        }
        if c.chip.coupled:
            core = (max(c.mte2.gm_to_l1_bytes_per_cycle, c.mte2.gm_to_ub_bytes_per_cycle)
                    + c.mte3.ub_to_gm_bytes_per_cycle + c.fixpipe.l0c_to_gm_bytes_per_cycle)
            return core * len(self.pools[CoreKind.MIXED][1])
        return sum(rate * len(self.pools[kind][1]) for kind, rate in per_core.items())

    def run(self, progress: Callable[[int, int], None] | None = None) -> Result:
        """Simulate every task to completion; raises DeadlockError if some never can.

        `progress(instructions issued, instructions in the program)` is called every few thousand
        events and once at the end; it only observes, so results are the same with or without it.
        """
        self.ready: dict[int, list[int]] = {}  # by pool identity: a heap of ready task indices
        for j, count in enumerate(self.waiting):
            if count == 0:
                self._make_ready(j)
        self._dispatch()
        if progress is None:
            self.env.run()
        else:
            self._run_reporting(progress)
        if any(t is None for t in self.traces):
            raise DeadlockError(self._stall_report())
        stats = self.memsys.stats()
        memory = MemoryStats(stats["hbm_read_bytes"], stats["hbm_write_bytes"], stats["l2_hit_bytes"],
                             stats["read_bytes"], tuple(self.memsys.hbm_timeline()), self.config.clock_ghz,
                             stats["l2_write_bytes"], stats["writeback_bytes"], stats["l2_dirty_bytes"])
        tensors = self.functional.tensors() if self.functional is not None else None
        traces = tuple(t for t in self.traces if t is not None)
        # Not env.now: a superseded memory-system timeout may pop after the last real event.
        cycles = max((t.last_cycle for t in traces), default=0)
        return Result(self.program, self.config, cycles, traces, tensors, memory)

    def _run_reporting(self, progress: Callable[[int, int], None]) -> None:
        """`env.run()` in slices of events, reporting how many instructions have issued."""
        step, total = self.env.step, sum(len(k) for k in self.program.kernels)
        try:
            while True:
                for _ in range(_EVENTS_PER_REPORT):
                    step()
                progress(self.issued + sum(run.issued for run in self.running.values()), total)
        except simpy.core.EmptySchedule:
            pass
        progress(self.issued + sum(run.issued for run in self.running.values()), total)

    def _make_ready(self, j: int) -> None:
        heapq.heappush(self.ready.setdefault(id(self.pools[self.program.tasks[j].kind]), []), j)

    def _dispatch(self) -> None:
        for pool in {id(p): p for p in self.pools.values()}.values():
            idle, cores = pool
            queue = self.ready.get(id(pool))
            while queue and idle:
                j = heapq.heappop(queue)
                core = cores[heapq.heappop(idle)]
                self._run_task(j, core, pool)

    # A task is not a SimPy process but two callbacks: one starts it after the dispatch overhead,
    # one ends it when its core is done. Their events are made where a process would make them
    # (a process starts on an urgent event at the current cycle, and an error surfaces one event
    # later), so the order of the events of one cycle is the same.

    def _run_task(self, j: int, core: _Core, pool: tuple[list[int], list[_Core]]) -> None:
        """Give task `j` to `core`: its first instruction issues `chip.dispatch_cycles` from now."""
        begin = partial(self._begin_task, j, core, pool, self.env.now)
        delay = self.config.chip.dispatch_cycles
        if delay:
            self.env.timeout(delay).callbacks.append(begin)
        else:
            Urgent(self.env, [begin])

    def _begin_task(self, j: int, core: _Core, pool: tuple[list[int], list[_Core]], dispatched: int,
                    event: simpy.Event) -> None:
        try:
            env, functional = self.env, self.functional
            state = functional.begin_task(core.name, core.limits) if functional is not None else None
            run = CoreRun(env, core.name, self._decoded(self.program.tasks[j].kernel), self.config,
                          self.memsys, state, functional)
            self.running[j] = run
            run.start_processes()
            run.done.callbacks.append(partial(self._end_task, j, core, pool, run, dispatched, env.now))
        except Exception as exc:
            fail_later(env, exc)

    def _end_task(self, j: int, core: _Core, pool: tuple[list[int], list[_Core]], run: CoreRun,
                  dispatched: int, first: int, event: simpy.Event) -> None:
        try:
            self._retire(j, core, pool, run, dispatched, first, event.value)
        except Exception as exc:
            fail_later(self.env, exc)

    def _retire(self, j: int, core: _Core, pool: tuple[list[int], list[_Core]], run: CoreRun,
                dispatched: int, first: int, last: int) -> None:
        """Task `j` is done at cycle `last`: record its trace, free its core, release its successors."""
        if self.functional is not None:
            self.functional.end_task(last)
        del self.running[j]
        self.issued += len(run.kernel)
        self.traces[j] = _trace(self.program.tasks[j].name, run, dispatched, first, last)
        heapq.heappush(pool[0], core.index)
        for succ in self.successors[j]:
            self.waiting[succ] -= 1
            if self.waiting[succ] == 0:
                self._make_ready(succ)
        self._dispatch()

    def _decoded(self, kernel: Kernel) -> DecodedKernel:
        """The kernel's decoded form, made once and shared by every task that runs it."""
        decoded = self._decode_cache.get(id(kernel))
        if decoded is None:
            decoded = self._decode_cache[id(kernel)] = DecodedKernel(kernel, self.config, self.tensors,
                                                                     self._decoded_instructions)
        return decoded

    def _stall_report(self) -> str:
        tasks = self.program.tasks
        lines = [f"deadlock at cycle {self.env.now}: no core can advance"]
        lines += [run.stall_report() for run in self.running.values()]
        blocked = [j for j, t in enumerate(self.traces) if t is None and j not in self.running]
        if blocked:
            names = ", ".join(tasks[j].name for j in blocked[:8]) + (" ..." if len(blocked) > 8 else "")
            lines.append(f"{len(blocked)} task(s) never started, each waiting on an unfinished task: {names}")
        return "\n".join(lines)


def _trace(task: str, run: CoreRun, dispatched: int, first: int, last: int) -> KernelTrace:
    def arr(a: object, dtype: type) -> np.ndarray:
        return np.frombuffer(a, dtype=dtype)  # type: ignore[call-overload]

    busy = {p: ps.busy for p, ps in run.pipes.items() if p is not Pipe.S}
    i64 = np.int64
    return KernelTrace(task, run.name, run.kernel, arr(run.issue, i64), arr(run.start, i64),
                       arr(run.busy_end, i64), arr(run.end, i64), arr(run.nbytes, i64), arr(run.flops, i64),
                       arr(run.released_by, np.int32), busy, dispatched, first, last)
