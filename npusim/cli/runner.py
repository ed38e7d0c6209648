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
from isa.program import Program
from isa.sanitize import Finding, sanitize
from isa.types import dtype_of
from npusim import outputs, sanitizer
from npusim.cli.common import Out, UsageError
from npusim.config import HardwareConfig
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


def announce(program: Program, config: HardwareConfig, out: Out, listing: bool) -> None:
    """Say that the (already run) static checks passed, and print the listing if asked."""
    count = sum(len(k) for k in program.kernels)
    out(f"preset {config.name}; static checks passed ({len(program.tasks)} task(s), {count} instructions)")
    if listing:
        out("\n" + format_listing(program))


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


def print_check(check: Mapping[str, Any], outs: Mapping[str, np.ndarray], out: Out) -> None:
    """The numerics check: per reference, each output's first values and its errors against it."""
    tol = f"rtol={check['rtol']:g}, atol={check['atol']:g}"
    reference = None
    for row in check["comparisons"]:
        if row["reference"] != reference:
            reference = row["reference"]
            out(f"numerics against {reference} ({tol}):")
        out(describe(row["tensor"], outs[row["tensor"]]))
        out(outputs.comparison_text(row))
