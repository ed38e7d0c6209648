"""`npusim sweep PROGRAM`: a what-if study over preset keys and program options, as a table and a plot.

What the study means (its points, baseline, metric) is `npusim.study`; running the points is
`npusim.sweep`. This module reads the command line, shows progress, and writes the results.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from npusim import paths, plots, study, sweep
from npusim.cli import INTERRUPTED, common
from programs import registry

EXIT_STATUS = """exit status:
  0    every point ran (and, with --numerics, matched its reference)
  1    the table is written, but some point failed (its error column says why) or did not match
  2    a mistake in the command or the sweep file, reported before any point runs
  130  interrupted: finished points stay in the cache and the same command finishes the rest; the
       table goes to FILE.partial.csv, never over the complete table of an earlier sweep
"""


def add_parser(sub: Any) -> None:
    example = ("npusim sweep paged-attention --batch 8 --vary variant=1block,2block "
               "--set hbm.bandwidth_gbps=800,1600,3200 --baseline variant=1block --plot s.png")
    sweep_cmd = common.command(sub, "sweep", "simulate a program over swept preset keys and program options",
                               example, EXIT_STATUS)
    programs = sweep_cmd.add_subparsers(dest="program", required=True, metavar="PROGRAM",
                                        help=f"one of: {', '.join(registry.WORKLOADS)}")
    for workload in registry.WORKLOADS.values():
        p = common.command(programs, workload.name, f"sweep {workload.name} over preset keys and its options",
                           f"npusim sweep {workload.name} --set hbm.bandwidth_gbps=800,1600,3200 --jobs 2",
                           EXIT_STATUS)
        common.add_program_options(p, workload, keep_defaults=False)
        _add_sweep_options(p)


def _add_sweep_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sweep")
    g.add_argument("--set", dest="sweep_sets", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a preset key and the values to sweep (repeatable), e.g. hbm.bandwidth_gbps=800,1600")
    g.add_argument("--vary", action="append", default=[], metavar="OPTION=V1,V2,...",
                   help="a program option and the values to sweep (repeatable), e.g. variant=1block,2block")
    g.add_argument("--zip", action="store_true", help="pair the i-th values of every swept list instead of "
                   "taking every combination")
    g.add_argument("--file", type=Path, metavar="STUDY.toml",
                   help="a sweep file: [options], [vary], [set] tables, preset, zip, baseline, numerics")
    g.add_argument("--preset", help="preset name or TOML file (default: the file's, else 910b2)")
    g.add_argument("--baseline", action="append", default=[], metavar="KEY=VALUE",
                   help="speedup against the point with this value of a swept key, e.g. variant=1block")
    g.add_argument("--numerics", action="store_true", help="also compute and check every point against "
                   "its references (default: timing only)")
    g.add_argument("--jobs", type=int, default=sweep.default_jobs(),
                   help=f"local worker processes (default: the machine's cores, {sweep.default_jobs()})")
    g.add_argument("--scheduler", metavar="ADDRESS", help="run the points on this Dask scheduler "
                   "(e.g. tcp://10.0.0.5:8786) instead of local processes")
    g.add_argument("--out", type=Path, metavar="FILE.csv", help="the table as CSV, plus FILE.parquet when "
                   "pandas and pyarrow are installed (default: PROGRAM_sweep.csv); an interrupted sweep "
                   "writes FILE.partial.csv instead")
    g.add_argument("--plot", type=Path, metavar="FILE.png", help="the metric against the first swept key, "
                   "one line per value of the others")
    g.add_argument("--x", dest="x_key", metavar="KEY", help="the swept key on --plot's x axis (default: the "
                   "first swept key that is not the baseline's)")
    g.add_argument("--metric", choices=sweep.METRICS, help="what --plot draws (default: speedup with "
                   "--baseline, else microseconds)")
    cache_home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    g.add_argument("--cache", type=Path, default=cache_home / "npusim" / "points",
                   help="where finished points are kept (default: %(default)s)")
    g.add_argument("--no-cache", action="store_true", help="compute every point, store nothing")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def command(args: argparse.Namespace) -> int:
    s = _study(args)
    if args.jobs < 1:
        raise common.UsageError(f"--jobs must be at least 1, got {args.jobs}")
    paths.output_file(_table_path(s, args, False), "--out", "sweep.csv")  # the default name too
    if args.plot is not None:
        plots.check_plot_path(args.plot, "--plot")
    jobs = 1 if args.scheduler else args.jobs
    return _report(s, args, jobs, _run(s, args, jobs))


def _study(args: argparse.Namespace) -> study.Study:
    """The study: the sweep file (if any) with the command line on top, every mistake found here."""
    workload = registry.get(args.program)
    file: dict[str, Any] = {}
    if args.file is not None:
        with common.user_file("--file", args.file, "read"):
            file = sweep.read_file(args.file)
    request = study.Request(
        vary=args.vary, sets=args.sweep_sets, baseline=args.baseline,
        options={o.name: getattr(args, o.name) for o in workload.options if hasattr(args, o.name)},
        zip=args.zip, numerics=args.numerics, preset=args.preset, metric=args.metric, x_key=args.x_key)
    return study.build(workload, request, file, str(args.file), load=common.preset)


def _run(s: study.Study, args: argparse.Namespace, jobs: int) -> sweep.Outcome:
    """Every point, from the cache or computed, with a progress bar on a terminal."""
    specs = s.specs()
    cache = None
    if not args.no_cache:
        with common.user_file("--cache", args.cache, "write"):
            cache = sweep.Cache(args.cache)
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(s.points), desc=f"sweep {s.workload.name}", unit=" point", file=sys.stderr,
                   leave=False, ncols=min(shutil.get_terminal_size((100, 24)).columns, 120))
    failures = 0

    def on_done(i: int, row: dict[str, Any]) -> None:
        nonlocal failures
        failures += row.get("status") == "error"
        if bar is not None:
            bar.set_postfix(failed=failures, refresh=False)
            bar.update(1)

    try:
        return sweep.run(s.points, specs, cache, jobs=jobs, scheduler=args.scheduler, on_done=on_done)
    finally:
        if bar is not None:
            bar.close()


def _table_path(s: study.Study, args: argparse.Namespace, interrupted: bool) -> Path:
    """--out (default PROGRAM_sweep.csv); an interrupted sweep's table goes beside it, as NAME.partial.csv."""
    out: Path = args.out or Path(f"{s.workload.name.replace('-', '_')}_sweep.csv")
    return out.with_name(f"{out.stem}.partial{out.suffix}") if interrupted else out


def _report(s: study.Study, args: argparse.Namespace, jobs: int, outcome: sweep.Outcome) -> int:
    """The table on stdout and in a file, the summary line, the plot, and the exit status."""
    rows = s.rows(outcome)
    columns, values = sweep.table_rows(s.points, rows)
    print(sweep.format_table(columns, values))
    out = _table_path(s, args, outcome.interrupted)
    with common.user_file("--out", out, "write"):
        sweep.write_csv(out, columns, values)
    written = [str(out)]
    with common.user_file("--out", out.with_suffix(".parquet"), "write"):
        if sweep.write_parquet(out.with_suffix(".parquet"), columns, values):
            written.append(str(out.with_suffix(".parquet")))
    where = "Dask scheduler " + args.scheduler if args.scheduler else f"{jobs} local job(s)"
    cache = "" if args.no_cache else f" ({args.cache})"
    print(f"{len(s.points)} points: {outcome.computed} computed, {outcome.cached} from the cache{cache}, "
          f"{outcome.failed} failed; {outcome.seconds:.1f} s on {where}; table: {', '.join(written)}")
    if args.plot is not None and not outcome.interrupted:
        _plot(s, args.plot, columns, values, rows, outcome.failed)
    if outcome.interrupted:
        done = outcome.computed + outcome.cached
        again = ("run the same command again to finish the rest" if not args.no_cache
                 else "with --no-cache nothing was cached: running it again computes every point")
        print(f"interrupted: {done} of {len(s.points)} points finished and are in {out}; {again}",
              file=sys.stderr)
        return INTERRUPTED
    return _verdict(outcome)


def _plot(s: study.Study, path: Path, columns: list[str], values: list[list[Any]], rows: list[dict[str, Any]],
          failed: int) -> None:
    if any(row.get("status") == "ok" for row in rows):
        title = f"{s.workload.name} on {s.config.name}: {s.metric}"
        figure = plots.sweep_figure(columns, values, s.plot_order(), s.metric, title, skip=s.baseline or None)
        with common.user_file("--plot", path, "write"):
            plots.save(figure, path)
        print(f"plot: {path}")
    else:
        print(f"plot: not drawn, no point ran ({failed} failed)", file=sys.stderr)


def _verdict(outcome: sweep.Outcome) -> int:
    """OK if every point ran (and matched its reference); else MISMATCH, saying how many did not."""
    total = len(outcome.rows)
    problems = []
    if outcome.failed:
        problems.append(f"{outcome.failed} of {total} point(s) failed (the table's error column says why)")
    if outcome.mismatched:
        problems.append(f"{outcome.mismatched} of {total} point(s) did not match their reference "
                        f"(the numerics column)")
    if not problems:
        return common.OK
    print(f"sweep: {'; '.join(problems)}", file=sys.stderr)
    return common.MISMATCH
