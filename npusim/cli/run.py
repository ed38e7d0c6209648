"""`npusim run PROGRAM`: run a program by name and check it against PyTorch."""

from __future__ import annotations

import argparse
from typing import Any

from npusim.cli import common, runner, views
from npusim.report import summary
from programs import registry


def add_parser(sub: Any) -> None:
    run = common.command(sub, "run", "run a program by name and check it against PyTorch",
                         "npusim run paged-attention --variant 2block --batch 8 --context-len 2048")
    programs = run.add_subparsers(dest="program", required=True, metavar="PROGRAM",
                                  help=f"one of: {', '.join(registry.WORKLOADS)}")
    for workload in registry.WORKLOADS.values():
        p = common.command(programs, workload.name, workload.summary, workload.example)
        common.add_program_options(p, workload)
        common.add_hardware_options(p)
        common.add_numerics_option(p)
        common.add_listing_option(p)
        common.add_sanitize_option(p)
        common.add_output_options(p, single_run=True)


def command(args: argparse.Namespace) -> int:
    workload = registry.get(args.program)
    config, overrides = common.config(args)
    out = common.Out(args)
    instance = runner.build(workload, args, config)
    views.check_outputs(instance.program, config, args, args.numerics)
    out(f"{workload.name} {runner.params_text(instance.params)}: {workload.summary}")
    runner.announce(instance.program, config, out, args.listing)  # build ran the checks
    findings = runner.sanitize_first(instance.program, args, out)
    roofline = runner.roofline(workload, instance, config)
    job = runner.Job.of(workload, instance, args.numerics, roofline, findings)
    done = runner.execute(job, config, overrides, args.quiet, workload.name)
    out(summary(done.result))
    if roofline is not None:
        out("  " + roofline.line(done.result))
    if done.check is None:
        out("numerics: off (--no-numerics): timing only, no reference check")
    else:
        runner.print_check(done.check, done.result.tensors or {}, out)
    views.write_outputs(done.result, args, out, done.record)
    return common.status(bool(findings), [done.check])
