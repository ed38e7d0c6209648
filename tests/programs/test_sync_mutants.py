"""Every shipped kernel is clean under the sanitizer, and every one of its syncs matters.

For each shipped program on each preset: the sanitizer finds nothing (no false positives). Then each
kernel is mutated by removing one set_flag, wait_flag or barrier, or one matched set/wait pair (the
k-th wait of a flag takes its k-th set), and every mutant must be reported before it runs: by the
static checks (a wait whose set is gone) or by the sanitizer (a race, a set never waited on, waits
that can never start). Numerics are off: nothing here depends on a run's timing.
"""

import pytest

from isa import Barrier, Kernel, SetFlag, WaitFlag
from isa.asm import load_program
from isa.check import problems
from isa.order import order
from isa.sanitize import sanitize, sanitize_kernel
from npusim import load_preset
from npusim.config import available_presets
from programs import matmul, registry, vector_scale
from tests.programs.test_presets import CASES

PRESETS = available_presets()
TILE_MATMUL = "programs/tile_matmul.s"


def shipped(config):
    """Every shipped program at small options, built for `config` (the ones that fit it)."""
    programs = []
    for name, values in [*CASES, *[("paged-attention", {**v, "steps_per_task": 1}) for n, v in CASES
                                   if n == "paged-attention"],
                         *[("matmul", {**v, "variant": "per-tile"}) for n, v in CASES if n == "matmul"]]:
        programs.append(registry.get(name).instance(values, config.chip.cube_cores, config).program)
    programs += [vector_scale.build(300, 200, tasks=5, alpha=-1.5, config=config),
                 matmul.build_single_core(300, 200, 500, config=config), load_program(TILE_MATMUL)]
    return programs


def kernels(config):
    """(kernel, tensors, limits) of every distinct kernel of the shipped programs."""
    seen = {}
    for program in shipped(config):
        tensors = {t.name: t for t in program.tensors}
        for task in program.tasks:
            seen.setdefault(task.kernel.instructions, (task.kernel, tensors, config.core_limits(task.kind)))
    return list(seen.values())


def mutants(kernel):
    """(what was removed, the kernel without it): each sync alone, and each matched set/wait pair."""
    instrs = kernel.instructions
    singles = [(i,) for i, ins in enumerate(instrs) if isinstance(ins, SetFlag | WaitFlag | Barrier)]
    pairs = [(s, w) for w, s in order(instrs).match.items()]
    for removed in singles + pairs:
        yield removed, Kernel(kernel.name, tuple(ins for i, ins in enumerate(instrs) if i not in removed))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_shipped_program_is_clean(preset):
    config = load_preset(preset)
    for program in shipped(config):
        assert sanitize(program) == [], program.name


@pytest.mark.parametrize("preset", PRESETS)
def test_removing_any_sync_from_any_shipped_kernel_is_reported(preset):
    config = load_preset(preset)
    silent, count = [], 0
    for kernel, tensors, limits in kernels(config):
        for removed, mutant in mutants(kernel):
            count += 1
            if not problems(mutant, tensors, limits) and not sanitize_kernel(mutant):
                silent.append((kernel.name, [str(kernel.instructions[i]) for i in removed]))
    assert count > 1000  # the sweep really ran over the kernels' syncs
    assert silent == []


def test_the_seed_paged_attention_runs_are_clean():
    config = load_preset("910b2")
    for variant in ("1block", "2block"):
        program = registry.get("paged-attention").instance({"variant": variant}, 24, config).program
        assert sanitize(program) == []
