"""`npusim asm FILE.s`: run a kernel written in assembly text, its inputs from files or drawn at random."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from isa.asm import load_program
from isa.check import check_program
from isa.draw import parse_seed
from isa.program import Program, Role
from npusim.cli import check, common, runner, views
from npusim.inputs import check_host_memory, load_inputs, random_inputs
from npusim.report import summary
from npusim.results import Result


def add_parser(sub: Any) -> None:
    asm = common.command(sub, "asm", "run a kernel written in assembly text",
                         "npusim asm programs/tile_matmul.s --input q=q.npy   # inputs not given are random")
    asm.add_argument("file", type=Path, help="an assembly file (.s); see docs/isa.md")
    asm.add_argument("--input", dest="inputs", action="append", default=[], metavar="NAME=FILE.npy",
                     help="value of an input tensor from a .npy file (repeatable)")
    asm.add_argument("--seed", type=common.arg_type(parse_seed), default=0,
                     help="seed of the inputs not given (default: 0)")
    common.add_hardware_options(asm)
    common.add_numerics_option(asm)
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
    if args.inputs and not args.numerics:
        raise common.UsageError("--input gives values, which a run with --no-numerics never reads; drop "
                                "--input or --no-numerics")
    views.check_views(args)
    views.check_paths(args)
    views.check_outputs(program, config, args, args.numerics)
    check_program(program, config.limits_by_kind())
    check_host_memory(program, config, args.numerics)
    given = load_inputs(program, args.inputs)  # before the run: a wrong file costs nothing
    ran_on = common.ran_on(args, config)
    runner.announce(program, ran_on, out, args.listing)
    findings = runner.sanitize_first(program, args, out)
    values = {**random_inputs(program, args.seed, skip=given), **given} if args.numerics else None
    drawn = sorted(set(values or ()) - set(given))
    params = {"file": str(args.file), "seed": args.seed, "inputs": sorted(given), "random_inputs": drawn}
    job = runner.Job(program, program.name, params, values, findings=findings)
    done = runner.execute(job, config, overrides, args.quiet, str(args.file))
    out(summary(done.result))
    _print_outputs(program, done.result, args, drawn, out)
    preset = common.preset_label(args, config)
    views.write_outputs(done.result, args, out, done.record, preset)
    views.write_shared(args, out, [(args.file.stem, done.result)], program.name,
                       f"{args.file} ({program.name}) on {ran_on}", preset, {})
    views.print_json(args, done.record)
    return common.status(bool(findings), [])


def _print_outputs(program: Program, result: Result, args: argparse.Namespace, drawn: list[str],
                   out: common.Out) -> None:
    """The output tensors' first values and where the inputs came from (a kernel has no reference)."""
    if not args.numerics:
        out("numerics: off (--no-numerics): timing only, no tensors computed")
        return
    source = f"drawn with seed {args.seed}: {', '.join(drawn)}" if drawn else "all given"
    out(f"outputs (inputs {source}):")
    for tensor in program.tensors_of(Role.OUTPUT):
        out(runner.describe(tensor.name, (result.tensors or {})[tensor.name]))


def _refuse_run_options(args: argparse.Namespace) -> None:
    """`asm --check-only` runs nothing: an option that needs a run is a mistake, not to be ignored."""
    options = (("--input", args.inputs), ("--trace", args.trace), ("--plot", args.plot),
               ("--roofline", args.roofline), ("--stats", args.stats), ("--report", args.report),
               ("--dump", args.dump), ("--timeline", args.timeline), ("--core", args.core),
               ("--task", args.task), ("--sanitize", args.sanitize), ("--no-numerics", not args.numerics))
    given = [flag for flag, value in options if value]
    if given:
        them = "it" if len(given) == 1 else "them"
        raise common.UsageError(f"--check-only runs nothing, so {', '.join(given)} cannot apply; drop {them} "
                                f"or --check-only (it already runs the sanitizer)")
