"""`simulate`: run a program on the timing engine and return its Result."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import numpy as np
import simpy

from isa.check import check_program
from isa.errors import IsaError
from isa.memory import CoreMemory, GlobalMemory, MachineState
from isa.program import Kernel, Program
from isa.regions import GmRegion
from isa.types import Pipe
from npusim.config import HardwareConfig, load_preset
from npusim.engine import CoreRun, PendingWrites
from npusim.flags import SyncError
from npusim.results import KernelTrace, Result


class DeadlockError(SyncError):
    """Nothing can advance but instructions remain: the message says who waits on what."""


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a big program is hundreds of thousands of objects, and the
    run allocates many small ones, so each collection would walk the whole program again. The run
    makes few cycles; they are collected once the collector resumes."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def simulate(
    program: Program | Kernel,
    config: HardwareConfig | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
    numerics: bool = True,
    check: bool = True,
) -> Result:
    """Time `program` on one core of `config` (default preset 910b2), kernel after kernel.

    With `numerics`, instructions also compute (reading sources when they start, writing results
    when they complete) and the Result holds every GM tensor; `inputs` gives the input tensors.
    Raises CheckError before running if the program fails the static checks (`check=False` skips
    them, for studying what a broken kernel does), SyncError if a flag is set twice, DeadlockError
    if the kernel can never finish.
    """
    with _gc_paused():
        return _simulate(program, config or load_preset(), inputs, numerics, check)


def _simulate(program: Program | Kernel, config: HardwareConfig, inputs: Mapping[str, np.ndarray] | None,
              numerics: bool, check: bool) -> Result:
    if isinstance(program, Kernel):
        if any(isinstance(r, GmRegion) for i in program.instructions for r in (*i.reads, *i.writes)):
            raise IsaError(f"kernel {program.name} addresses GM, so it needs its tensors: "
                           f"pass Program.single(kernel, tensors)")
        program = Program.single(program, ())
    limits = config.core_limits()
    if check:
        check_program(program, limits)
    tensors = {t.name: t for t in program.tensors}
    gm = GlobalMemory(program.tensors, inputs or {}) if numerics else None
    writes = PendingWrites() if numerics else None
    env = simpy.Environment()
    traces: list[KernelTrace] = []
    with np.errstate(all="ignore"):  # inf and NaN are ISA results, not errors
        for kernel in program.kernels:
            state = MachineState(CoreMemory(limits), gm) if gm is not None else None
            run = CoreRun(env, "core0", kernel, config, tensors, state, writes)
            first = env.now
            run.start_processes()
            env.run()
            if not run.finished:
                raise DeadlockError(f"deadlock at cycle {env.now}: no pipe can advance\n{run.stall_report()}")
            last = max([first, *run.end, *(ps.done_at for ps in run.pipes.values())])
            if last > env.now:  # results still in flight: the kernel ends when the last completes
                env.run(until=last)
            if writes is not None:
                writes.flush_all()
            traces.append(_trace(run, first, last))
    return Result(program, config, env.now, tuple(traces), gm.tensors(copy=False) if gm is not None else None)


def _trace(run: CoreRun, first: int, last: int) -> KernelTrace:
    def arr(a: object, dtype: type) -> np.ndarray:
        return np.frombuffer(a, dtype=dtype)  # type: ignore[call-overload]

    busy = {p: ps.busy for p, ps in run.pipes.items() if p is not Pipe.S}
    return KernelTrace(run.name, run.kernel, arr(run.issue, np.int64), arr(run.start, np.int64),
                       arr(run.busy_end, np.int64), arr(run.end, np.int64), arr(run.nbytes, np.int64),
                       arr(run.flops, np.int64), arr(run.released_by, np.int32), busy, first, last)
