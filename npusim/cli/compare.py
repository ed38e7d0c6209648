"""`npusim compare PROGRAM`: a program's variants side by side (cycles, pipe busy time, speedup)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from npusim import plots, trace
from npusim.cli import common, runner, views
from npusim.inputs import check_host_memory
from npusim.report import compare_table
from programs import registry


def _with_variants() -> list[registry.Workload]:
    return [w for w in registry.WORKLOADS.values() if w.variants]


def _variant_list(workload: registry.Workload) -> Any:
    def variants(text: str) -> list[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in names if v not in workload.variants]
        if bad or not names:
            raise argparse.ArgumentTypeError(f"unknown variant {', '.join(bad) or repr(text)}; "
                                             f"valid: {', '.join(workload.variants)}")
        repeated = sorted({v for v in names if names.count(v) > 1})
        if repeated:
            raise argparse.ArgumentTypeError(f"{', '.join(repeated)} given twice; name each variant once, "
                                             f"from {', '.join(workload.variants)}")
        return names

    return variants


def add_parser(sub: Any) -> None:
    compare = common.command(sub, "compare",
                             "run a program's variants side by side: cycles, pipe busy time, speedup",
                             "npusim compare paged-attention --variants 1block,2block --batch 8 "
                             "--context-len 2048")
    programs = compare.add_subparsers(dest="program", required=True, metavar="PROGRAM",
                                      help=f"one of: {', '.join(w.name for w in _with_variants())}")
    for workload in _with_variants():
        p = common.command(programs, workload.name, f"compare variants of {workload.name}",
                           f"npusim compare {workload.name} --variants {','.join(workload.variants)}")
        common.add_sanitize_option(p)
        p.add_argument("--variants", type=_variant_list(workload), default=list(workload.variants),
                       help="comma-separated, the first is the baseline "
                            f"(default: {','.join(workload.variants)})")
        common.add_program_options(p, workload, skip=("variant",))
        common.add_hardware_options(p)
        common.add_numerics_option(p)
        common.add_output_options(p, single_run=False)


def command(args: argparse.Namespace) -> int:
    workload = registry.get(args.program)
    config, overrides = common.config(args)
    out = common.Out(args)
    views.check_paths(args, args.variants)
    shared: dict[Any, Any] = {}  # one problem: the variants draw its inputs and plain reference once
    instances = [runner.build(workload, args, config, shared, variant=v)  # all checked first
                 for v in args.variants]
    for instance in instances:
        check_host_memory(instance.program, config, args.numerics)
    roofline = runner.roofline(workload, instances[0], config)  # the variants read the same bytes
    found = []
    for variant, instance in zip(args.variants, instances, strict=True):
        if args.sanitize:
            out(f"{variant}: ", end="")
        found.append(runner.sanitize_first(instance.program, args, out))
    runs = []
    for variant, instance, findings in zip(args.variants, instances, found, strict=True):
        job = runner.Job.of(workload, instance, args.numerics, roofline, findings)
        runs.append(runner.execute(job, config, overrides, args.quiet, f"{workload.name} {variant}"))
    rows = [(v, d.result, None if d.check is None else d.check["match"])
            for v, d in zip(args.variants, runs, strict=True)]
    common_params = {k: v for k, v in instances[0].params.items() if k != "variant"}
    title = f"{workload.name} {runner.params_text(common_params)} on {common.ran_on(args, config)}"
    out(title)
    out(compare_table(rows, roofline))
    _write_outputs(args, out, rows, title)
    views.write_shared(args, out, [(v, r) for v, r, _ in rows], workload.name, title,
                       common.preset_label(args, config),
                       {v: runner.numerics(d) for v, d in zip(args.variants, runs, strict=True)})
    if args.json:
        base = rows[0][1].cycles
        records = [{**d.record, "speedup": base / d.record["cycles"] if d.record["cycles"] else None}
                   for d in runs]
        print(json.dumps({"program": workload.name, "baseline": args.variants[0], "runs": records}, indent=1))
    return common.status(any(found), [d.check for d in runs])


def _write_outputs(args: argparse.Namespace, out: common.Out, rows: list[tuple[str, Any, bool | None]],
                   title: str) -> None:
    """The trace (a block of processes per variant) and the figure, if asked for."""
    if args.trace is not None:
        with common.user_file("--trace", args.trace, "write"):
            count = trace.write(args.trace, [(variant, result) for variant, result, _ in rows],
                                args.trace_sync)
        out(f"trace: {count} events in {args.trace}, one block of processes per variant (ui.perfetto.dev)")
    if args.plot is not None:
        figure = plots.compare_figure([(v, r) for v, r, _ in rows], title)
        with common.user_file("--plot", args.plot, "write"):
            plots.save(figure, args.plot)
        out(f"plot: {args.plot}")
