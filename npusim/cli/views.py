"""The views one run writes (`run`, `asm`): their options checked before the run, written after it."""

from __future__ import annotations

import argparse
import json
import shutil
from typing import Any

from isa.program import Program
from npusim import outputs, plots, timeline, trace
from npusim.chip import core_names
from npusim.cli.common import Out, UsageError, check_folders, user_file
from npusim.config import HardwareConfig
from npusim.results import Result, core_order


def check_outputs(program: Program, config: HardwareConfig, args: argparse.Namespace, numerics: bool) -> None:
    """Mistakes in the output options, found before a long run rather than after it."""
    if getattr(args, "task", None) is not None and args.task not in {t.name for t in program.tasks}:
        names = [t.name for t in program.tasks]
        shown = ", ".join(names[:6]) + (f", ... ({len(names)} tasks)" if len(names) > 6 else "")
        raise UsageError(f"--task {args.task!r}: the program has no such task; tasks: {shown}")
    if getattr(args, "dump", None) is not None and not numerics:
        raise UsageError("--dump needs the GM tensors, which only a run with numerics computes; "
                         "drop --no-numerics")
    core = getattr(args, "core", None)
    if core is not None and getattr(args, "task", None) is not None:
        raise UsageError("give --core (a core over the whole run) or --task (one task), not both")
    if core is not None and core not in core_names(config):
        names = core_names(config)
        raise UsageError(f"--core {core!r}: {config.name} has no such core; cores: {names[0]} .. {names[-1]}")
    check_folders(args, "trace", "plot")


def write_outputs(result: Result, args: argparse.Namespace, out: Out, record: dict[str, Any]) -> None:
    """The timeline, trace, plot, dump and JSON a single run was asked for."""
    if args.core is not None and args.core not in {t.core for t in result.traces}:
        ran = sorted({t.core for t in result.traces}, key=core_order)
        raise UsageError(f"--core {args.core!r}: no task ran on that core in this run; cores that ran tasks: "
                         f"{', '.join(ran[:12])}{' ...' if len(ran) > 12 else ''}")
    if args.timeline:
        width = shutil.get_terminal_size((120, 24)).columns
        out()
        out(timeline.render(result, width=width, color=timeline.use_color(args.color, out.stream),
                            core=args.core, task=args.task))
    if args.trace is not None:
        with user_file("--trace", args.trace, "write"):
            count = trace.write(args.trace, [(None, result)], args.trace_sync)
        out(f"trace: {count} events in {args.trace} (open it in ui.perfetto.dev)")
    if args.plot is not None:
        figure = plots.run_figure(result, core=args.core)
        with user_file("--plot", args.plot, "write"):
            plots.save(figure, args.plot)
        out(f"plot: {args.plot}")
    if args.dump is not None:
        with user_file("--dump", args.dump, "write"):
            files = outputs.dump(args.dump, result, record)
        out(f"dump: {len(files) - 1} tensors and summary.json in {args.dump}")
    if args.json:
        print(json.dumps(record, indent=1))
