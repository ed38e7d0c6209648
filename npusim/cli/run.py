"""`npusim run PROGRAM`: run a program by name and check it against PyTorch."""

from __future__ import annotations

import argparse
from typing import Any

from npusim.cli import common, runner, views
from npusim.inputs import check_host_memory
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
    views.check_views(args)
    views.check_paths(args)
    instance = runner.build(workload, args, config)
    views.check_outputs(instance.program, config, args, args.numerics)
    check_host_memory(instance.program, config, args.numerics)
    what = f"{workload.name} {runner.params_text(instance.params)}"
    out(f"{what}: {workload.summary}")
    ran_on = common.ran_on(args, config)
    runner.announce(instance.program, ran_on, out, args.listing)  # build ran the checks
    findings = runner.sanitize_first(instance.program, args, out)
    roofline = runner.roofline(workload, instance, config)
    job = runner.Job.of(workload, instance, args.numerics, roofline, findings)
    done = runner.execute(job, config, overrides, args.quiet, workload.name)
    out(summary(done.result))
    if roofline is not None:
        out("  " + roofline.line(done.result))
    numerics = runner.numerics(done)
    out(numerics.text)
    preset = common.preset_label(args, config)
    views.write_outputs(done.result, args, out, done.record, preset)
    label = instance.params.get("variant") or workload.name
    views.write_shared(args, out, [(label, done.result)], workload.name, f"{what} on {ran_on}", preset,
                       {label: numerics})
    views.print_json(args, done.record)
    return common.status(bool(findings), [done.check])
