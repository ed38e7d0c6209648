"""Build a program, simulate it, check its numbers: the one path `run`, `compare` and `asm` share.

`build` turns a workload's options into a checked program; a `Job` is that program with its inputs
and what its outputs are checked against; `execute` simulates it (with a progress bar on a
terminal), checks the numerics, and makes the JSON record, with the sanitizer's findings placed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from isa.asm import format_listing
from isa.check import check_program
from isa.errors import CheckError
from isa.program import Program, Task
from isa.sanitize import Finding, sanitize
from isa.types import dtype_of
from npusim import outputs, sanitizer
from npusim.cli.common import Out, UsageError
from npusim.config import HardwareConfig
from npusim.outputs import Numerics
from npusim.report import HbmRoofline
from npusim.results import Result
from npusim.simulate import simulate
from programs import registry


def params_text(params: Mapping[str, Any]) -> str:
    """`(k=v, ...)` of the options that have a value, lists as comma-separated values."""
    shown = {k: v for k, v in params.items() if v is not None}
    return "(" + ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                           for k, v in shown.items()) + ")"


def build(workload: registry.Workload, args: argparse.Namespace, config: HardwareConfig,
          shared: dict[Any, Any] | None = None, **fixed: Any) -> registry.Instance:
    """Build the workload from the parsed options and check it against the chip's cores."""
    values = {o.name: getattr(args, o.name) for o in workload.options if hasattr(args, o.name)} | fixed
    try:
        instance = workload.instance(values, config.chip.cube_cores, config, shared)
    except ValueError as err:
        raise UsageError(f"{workload.name}: {err}") from None
    try:
        check_program(instance.program, config.limits_by_kind())
    except CheckError as err:
        raise UsageError(f"{workload.name} {params_text(instance.params)} does not fit preset {config.name}: "
                         f"{err.first}") from None
    return instance


def roofline(workload: registry.Workload, instance: registry.Instance,
             config: HardwareConfig) -> HbmRoofline | None:
    """The run's HBM roofline, if the workload says what bytes it must read."""
    nbytes = workload.roofline_bytes(instance.params)
    return None if nbytes is None else HbmRoofline(nbytes, workload.must_read_what, config.hbm.bandwidth_gbps)


def announce(program: Program, ran_on: str, out: Out, listing: bool) -> None:
    """Say on what (`common.ran_on`) the static checks passed, and print the listing if asked."""
    count = sum(len(k) for k in program.kernels)
    out(f"{ran_on}; static checks passed ({len(program.tasks)} task(s), {count} instructions)")
    if listing:
        out("\n" + kernel_listing(program))


LISTED_NAMES = 8
"""How many of the other tasks running a kernel the listing names."""


def kernel_listing(program: Program) -> str:
    """The program's assembly with each kernel once: in full for the first task that runs a kernel
    of its name, then a comment naming the other tasks that run one (their operands may differ).

    A program whose tasks all run kernels of their own names (tile-matmul, matmul) is listed whole,
    as `isa.asm.format_listing`; paged attention's thousands of tasks run four kernels.
    """
    groups: dict[str, list[Task]] = {}
    for task in program.tasks:
        groups.setdefault(task.kernel.name, []).append(task)
    if all(len(tasks) == 1 for tasks in groups.values()):
        return format_listing(program)
    firsts = Program(program.name, program.tensors, tuple(tasks[0] for tasks in groups.values()))
    lines = [f"# {len(program.tasks)} tasks run {len(groups)} kernels: each kernel listed once, for the "
             f"first task that runs it", format_listing(firsts).rstrip("\n")]
    for name, tasks in groups.items():
        others = [t.name for t in tasks[1:]]
        if others:
            more = f", ... ({len(others) - LISTED_NAMES} more)" if len(others) > LISTED_NAMES else ""
            lines.append(f"# kernel {name} runs in {len(tasks)} tasks (operands may differ): {tasks[0].name} "
                         f"(listed), {', '.join(others[:LISTED_NAMES])}{more}")
    return "\n".join(lines) + "\n"


def sanitize_first(program: Program, args: argparse.Namespace, out: Out) -> list[Finding] | None:
    """With --sanitize: the program's findings, reported before the run (None without the option)."""
    if not getattr(args, "sanitize", False):
        return None
    findings = sanitize(program)
    out(sanitizer.report(findings))
    return findings


@dataclass(frozen=True)
class Job:
    """A checked program ready to simulate: its inputs, what checks its outputs, how the record names it."""

    program: Program
    name: str  # the program's name in the record
    params: Mapping[str, Any]
    inputs: dict[str, np.ndarray] | None  # None: timing only
    references: Callable[[dict[str, np.ndarray]], Mapping[str, Mapping[str, np.ndarray]]] | None = None
    rtol: float = 0.0
    atol: float = 0.0
    roofline: HbmRoofline | None = None
    findings: list[Finding] | None = None  # from sanitize_first, placed on the cores that ran them

    @classmethod
    def of(cls, workload: registry.Workload, instance: registry.Instance, numerics: bool,
           roofline: HbmRoofline | None, findings: list[Finding] | None) -> Job:
        """A workload's instance, its inputs drawn now if the run computes numbers."""
        return cls(instance.program, workload.name, instance.params, instance.inputs() if numerics else None,
                   instance.references, instance.rtol, instance.atol, roofline, findings)


@dataclass(frozen=True)
class Done:
    """A finished job: the run (findings placed), its numerics check (None if none ran), its record."""

    result: Result
    check: dict[str, Any] | None
    record: dict[str, Any]


def execute(job: Job, config: HardwareConfig, overrides: Mapping[str, Any], quiet: bool, label: str) -> Done:
    """Simulate the job (already checked), compare its outputs with its references, make its record."""
    progress = outputs.Progress.for_terminal(quiet, label)
    try:
        result = simulate(job.program, config, inputs=job.inputs, numerics=job.inputs is not None,
                          check=False, progress=progress)
    finally:
        progress.close()
    check = None
    if job.inputs is not None and job.references is not None:
        check = outputs.numerics_check(job.references(job.inputs), result.tensors or {}, job.rtol, job.atol)
    record = outputs.record(result, job.name, job.params, overrides, check)
    if job.roofline is not None:
        record["hbm_roofline"] = job.roofline.record(result)
    if job.findings is not None:
        result = sanitizer.place(result, job.findings)
        record["sanitizer"] = [sanitizer.record(f) for f in result.sanitizer or ()]
    return Done(result, check, record)


def describe(name: str, value: np.ndarray) -> str:
    """One output tensor: dtype, shape, its first values and how many are NaN."""
    head = np.array2string(value.reshape(-1)[:6].astype(np.float64), precision=4, separator=", ")
    nans = int(np.isnan(value).sum()) if value.dtype.kind == "f" else 0
    poisoned = f"; {nans} of {value.size} are NaN" if nans else ""
    return f"  {name} {dtype_of(value.dtype).value}{list(value.shape)}: first values {head}{poisoned}"


def numerics(done: Done) -> Numerics:
    """A finished job's numerics check as the report shows it: the printed lines and the verdict."""
    check = done.check
    verdict = None if check is None else check["match"]
    return Numerics(numerics_text(check, done.result.tensors or {}), verdict)


def numerics_text(check: Mapping[str, Any] | None, outs: Mapping[str, np.ndarray]) -> str:
    """The numerics check as printed: per reference, each output's first values and its errors
    against it; one line saying it is off when the run computed no numbers."""
    if check is None:
        return "numerics: off (--no-numerics): timing only, no reference check"
    tol = f"rtol={check['rtol']:g}, atol={check['atol']:g}"
    lines, reference = [], None
    for row in check["comparisons"]:
        if row["reference"] != reference:
            reference = row["reference"]
            lines.append(f"numerics against {reference} ({tol}):")
        lines += [describe(row["tensor"], outs[row["tensor"]]), outputs.comparison_text(row)]
    return "\n".join(lines)
