"""`npusim asm FILE.s`: run a kernel written in assembly text, its inputs from files or drawn at random."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from isa.asm import load_program
from isa.check import check_program
from isa.program import Role
from npusim.cli import check, common, runner, views
from npusim.inputs import load_inputs, random_inputs
from npusim.report import summary


def add_parser(sub: Any) -> None:
    asm = common.command(sub, "asm", "run a kernel written in assembly text",
                         "npusim asm programs/tile_matmul.s --input q=q.npy   # inputs not given are random")
    asm.add_argument("file", type=Path, help="an assembly file (.s); see docs/isa.md")
    asm.add_argument("--input", dest="inputs", action="append", default=[], metavar="NAME=FILE.npy",
                     help="value of an input tensor from a .npy file (repeatable)")
    asm.add_argument("--seed", type=int, default=0, help="seed of the inputs not given (default: 0)")
    common.add_hardware_options(asm)
    common.add_listing_option(asm)
    asm.add_argument("--check-only", action="store_true",
                     help="run the static checks and the sanitizer, not the kernel (as `npusim check`)")
    common.add_sanitize_option(asm)
    common.add_output_options(asm, single_run=True)


def command(args: argparse.Namespace) -> int:
    with common.user_file("asm", args.file, "read"):
        program = load_program(args.file)
    config, overrides = common.config(args)
    out = common.Out(args)
    if args.check_only:
        _refuse_run_options(args)
        return check.check_only(program, config, args, out)
    views.check_outputs(program, config, args, True)
    check_program(program, config.limits_by_kind())
    runner.announce(program, config, out, args.listing)
    findings = runner.sanitize_first(program, args, out)
    given = load_inputs(program, args.inputs)
    values = {**random_inputs(program, args.seed, skip=given), **given}
    drawn = sorted(set(values) - set(given))
    params = {"file": str(args.file), "seed": args.seed, "inputs": sorted(given), "random_inputs": drawn}
    job = runner.Job(program, program.name, params, values, findings=findings)
    done = runner.execute(job, config, overrides, args.quiet, str(args.file))
    out(summary(done.result))
    source = f"drawn with seed {args.seed}: {', '.join(drawn)}" if drawn else "all given"
    out(f"outputs (inputs {source}):")
    for tensor in program.tensors_of(Role.OUTPUT):
        out(runner.describe(tensor.name, (done.result.tensors or {})[tensor.name]))
    views.write_outputs(done.result, args, out, done.record)
    return common.status(bool(findings), [])


def _refuse_run_options(args: argparse.Namespace) -> None:
    """`asm --check-only` runs nothing: an option that needs a run is a mistake, not to be ignored."""
    options = (("--input", args.inputs), ("--trace", args.trace), ("--plot", args.plot),
               ("--dump", args.dump), ("--timeline", args.timeline), ("--core", args.core),
               ("--task", args.task), ("--sanitize", args.sanitize))
    given = [flag for flag, value in options if value]
    if given:
        them = "it" if len(given) == 1 else "them"
        raise common.UsageError(f"--check-only runs nothing, so {', '.join(given)} cannot apply; drop {them} "
                                f"or --check-only (it already runs the sanitizer)")
