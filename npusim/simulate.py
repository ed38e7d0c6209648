"""`simulate`: run a program on the timing engine and return its Result."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from isa.check import check_program
from isa.collector import gc_paused
from isa.errors import IsaError
from isa.program import Kernel, Program
from isa.regions import GmRegion
from isa.sanitize import sanitize as sanitize_program
from isa.semantics import numeric_context
from npusim.chip import ChipRun, DeadlockError
from npusim.config import HardwareConfig, load_preset
from npusim.results import Result
from npusim.sanitizer import place

__all__ = ["DeadlockError", "simulate"]


def simulate(
    program: Program | Kernel,
    config: HardwareConfig | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
    numerics: bool = True,
    check: bool = True,
    progress: Callable[[int, int], None] | None = None,
    sanitize: bool = False,
) -> Result:
    """Time `program` on the chip of `config` (default preset 910b2): its tasks on as many cores.

    With `numerics`, instructions also compute (reading sources when they start, writing results
    when they complete) and the Result holds every GM tensor; `inputs` gives the input tensors.
    Raises CheckError before running if the program fails the static checks (`check=False` skips
    them, for studying what a broken kernel does), SyncError if a flag is set twice, DeadlockError
    if the kernel can never finish. `progress(instructions issued, total)` is called now and then
    (a progress bar); it does not change the result. With `sanitize`, the Result's `sanitizer` lists
    every missing synchronisation the kernels permit, whatever this run's timing (`isa.sanitize`),
    naming the core each task ran on.
    """
    with gc_paused():
        result = _simulate(program, config or load_preset(), inputs, numerics, check, progress)
        return place(result, sanitize_program(result.program)) if sanitize else result


def _simulate(program: Program | Kernel, config: HardwareConfig, inputs: Mapping[str, np.ndarray] | None,
              numerics: bool, check: bool, progress: Callable[[int, int], None] | None) -> Result:
    if isinstance(program, Kernel):
        if any(isinstance(r, GmRegion) for i in program.instructions for r in (*i.reads, *i.writes)):
            raise IsaError(f"kernel {program.name} addresses GM, so it needs its tensors: "
                           f"pass Program.single(kernel, tensors)")
        program = Program.single(program, ())
    if check:
        check_program(program, config.limits_by_kind())
    if not numerics:  # nothing computes: spare the BLAS thread-pool switch (a third of a millisecond)
        return ChipRun(program, config, inputs, numerics).run(progress)
    with numeric_context():
        return ChipRun(program, config, inputs, numerics).run(progress)
