"""The views a run writes: their options checked before the run, written after it.

`check_outputs` and `write_outputs` are the single run's (`run`, `asm`): timeline, trace, plot,
dump, JSON. `check_paths` checks every output path any command names, and `write_shared` writes
the views `run`, `compare` and `asm` share: the stats tables, the roofline plot and the report.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from isa.program import Program
from npusim import outputs, paths, plots, stats, timeline, trace
from npusim.chip import core_names
from npusim.cli.common import Out, UsageError, user_file
from npusim.config import HardwareConfig
from npusim.outputs import Numerics
from npusim.results import Result, core_order

# The views that show one core or one task; --core and --task mean nothing without one of them.
_CORE_VIEWS = ("timeline", "plot")
_TASK_VIEWS = ("timeline",)


def check_paths(args: argparse.Namespace, variants: Sequence[str] = ()) -> None:
    """Every output path the options name, refused before the run (build, sanitize, simulate) if it
    cannot be written: the figures', the tables' directory (one per variant), the report's, the
    trace's and the dump's."""
    for option in ("plot", "roofline"):
        if getattr(args, option, None) is not None:
            plots.check_plot_path(getattr(args, option), f"--{option}")
    if args.stats is not None:
        for folder in [args.stats, *(args.stats / v for v in variants)]:
            stats.check_directory(folder)
    if args.report is not None:
        from npusim import html_report  # lazily: a run without --report does not load it

        html_report.check_report_path(args.report, "--report")
    if args.trace is not None:
        paths.output_file(args.trace, "--trace", "trace.json")
    if getattr(args, "dump", None) is not None:
        paths.output_directory(args.dump, "--dump")


def check_views(args: argparse.Namespace) -> None:
    """--core and --task given without a view that shows them are mistakes, not to be ignored."""
    for option, views in (("core", _CORE_VIEWS), ("task", _TASK_VIEWS)):
        if getattr(args, option) is not None and not any(getattr(args, v) for v in views):
            wanted = " or ".join(f"--{v}" for v in views)
            raise UsageError(f"--{option} {getattr(args, option)}: only {wanted} shows one {option}; "
                             f"add {wanted}, or drop --{option}")


def check_outputs(program: Program, config: HardwareConfig, args: argparse.Namespace, numerics: bool) -> None:
    """Mistakes in a single run's view options (the program's tasks, the chip's cores), found before
    a long run rather than after it; `check_paths` has checked where they go."""
    if args.task is not None and args.task not in {t.name for t in program.tasks}:
        names = [t.name for t in program.tasks]
        shown = ", ".join(names[:6]) + (f", ... ({len(names)} tasks)" if len(names) > 6 else "")
        raise UsageError(f"--task {args.task!r}: the program has no such task; tasks: {shown}")
    if args.dump is not None and not numerics:
        raise UsageError("--dump needs the GM tensors, which only a run with numerics computes; "
                         "drop --no-numerics")
    if args.core is not None and args.task is not None:
        raise UsageError("give --core (a core over the whole run) or --task (one task), not both")
    if args.core is not None and args.core not in core_names(config):
        names = core_names(config)
        raise UsageError(f"--core {args.core!r}: {config.name} has no such core; "
                         f"cores: {names[0]} .. {names[-1]}")


def write_outputs(result: Result, args: argparse.Namespace, out: Out, record: dict[str, Any],
                  preset: str) -> None:
    """The timeline, trace, plot and dump a single run was asked for (`preset`: as the user named it)."""
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
        figure = plots.run_figure(result, core=args.core, overrides=args.overrides, preset=preset)
        with user_file("--plot", args.plot, "write"):
            plots.save(figure, args.plot)
        out(f"plot: {args.plot}")
    if args.dump is not None:
        with user_file("--dump", args.dump, "write"):
            files = outputs.dump(args.dump, result, record)
        out(f"dump: {len(files) - 1} tensors and summary.json in {args.dump}")


def write_shared(args: argparse.Namespace, out: Out, runs: Sequence[tuple[str, Result]], program: str,
                 title: str, preset: str, checks: Mapping[str, Numerics]) -> None:
    """The stats tables (a directory per variant when there are several), the roofline and the report.

    `runs` are (label, result) pairs of `program`, `title` says what ran, `preset` is the preset as
    the user named it, `checks` the numerics line of each label that was checked.
    """
    if args.stats is not None:
        for label, result in runs:
            folder = args.stats / label if len(runs) > 1 else args.stats
            with user_file("--stats", folder, "write"):
                written = stats.write(result, folder)
            out(f"stats: {', '.join(p.name for p in written)} in {folder}")
    if args.roofline is not None:
        from npusim.roofline_plot import roofline_figure  # lazily: matplotlib only when a figure is asked

        figure = roofline_figure(runs, program=program, preset=preset, overrides=args.overrides)
        with user_file("--roofline", args.roofline, "write"):
            plots.save(figure, args.roofline)
        out(f"roofline: {args.roofline}")
    if args.report is not None:
        from npusim import html_report

        page = html_report.render_report(title, runs, preset=preset, overrides=args.overrides, checks=checks)
        # only the writing is a --report file error: a bug while drawing the page stays a bug
        with user_file("--report", args.report, "write"), paths.written_whole(args.report) as f:
            f.write(page)
        out(f"report: {args.report}")


def print_json(args: argparse.Namespace, record: Mapping[str, Any]) -> None:
    """The run's JSON object on stdout, if asked for (the text then went to stderr)."""
    if args.json:
        print(json.dumps(record, indent=1))
