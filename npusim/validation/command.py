"""`npusim validate`: replay the published measurements on a preset and print the error of each row.

Prints a row per measurement as it is replayed (what was measured, the published figure and its
unit, the simulated figure, their ratio, the row's tolerance and PASS or FAIL, then its source),
and the mean absolute error |simulated / published - 1| over the rows. `--json` moves that text to
stderr and prints the rows as a JSON list on stdout. Exit status: 0 when every row is within its
tolerance, 1 when one is not; a user mistake raises (ConfigError, ValidationError) and the CLI
prints it as one `npusim: error:` line, status 2.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, TextIO

from npusim.config import HardwareConfig, load_preset, parse_override
from npusim.validation.measurements import Measurement, suite_rows
from npusim.validation.replay import ValidationError
from npusim.validation.suite import Outcome, check, mean_abs_error, select
from npusim.validation.suite import run as run_suite

SUMMARY = "replay published Ascend 910B measurements and report the simulator's error per row"
EXAMPLE = "npusim validate --quick --only mmad --set cube.startup_cycles=6"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """The `validate` subcommand and its options, on the CLI's subparsers."""
    p = subparsers.add_parser("validate", help=SUMMARY, description=SUMMARY,
                              epilog=f"example:\n  {EXAMPLE}\n",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="910b2", help="preset name or TOML file (default: 910b2)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset field by dotted name, e.g. mte1.latency_cycles=28 (repeatable)")
    p.add_argument("--quick", action="store_true",
                   help="leave out the slow rows (the 6144^3 GEMM, a minute or more)")
    p.add_argument("--only", action="append", default=[], metavar="TEXT",
                   help="only the rows whose name contains TEXT, any case (repeatable), e.g. 'GM -> L1'")
    p.add_argument("--json", action="store_true",
                   help="print the rows as a JSON list on stdout (the text goes to stderr)")
    return p


def _config(args: argparse.Namespace) -> HardwareConfig:
    """The preset with the --set overrides applied."""
    try:
        config = load_preset(args.preset)
    except OSError as err:
        raise ValidationError(f"--preset {args.preset}: cannot read it: {err.strerror or err}") from None
    overrides = dict(parse_override(o, config) for o in args.overrides)
    return config.replace(overrides) if overrides else config


class Table:
    """The text report: a header, then one row as each outcome arrives, then the summary."""

    def __init__(self, rows: Sequence[Measurement], stream: TextIO) -> None:
        self.stream = stream
        self.name_width = max(len(m.name) for m in rows)
        self.published_width = max(len(_published(m)) for m in rows)
        self.wrap = max(60, min(shutil.get_terminal_size((110, 24)).columns, 140)) - 4

    def print(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def header(self) -> None:
        head = (f"{'row':<{self.name_width}}  {'published':>{self.published_width}}  {'simulated':>10}  "
                f"{'ratio':>6}  {'tol':>4}  result")
        self.print(head)
        self.print("-" * len(head))

    def row(self, o: Outcome) -> None:
        m = o.measurement
        self.print(f"{m.name:<{self.name_width}}  {_published(m):>{self.published_width}}  "
                   f"{_number(o.simulated):>10}  {o.ratio:>6.3f}  {100 * m.tolerance:>3.0f}%  "
                   f"{'PASS' if o.ok else 'FAIL'}")
        self.print(textwrap.fill(f"source: {m.source}", self.wrap, initial_indent="    ",
                                 subsequent_indent="      "))

    def summary(self, outcomes: Sequence[Outcome], left_out: Sequence[Measurement]) -> None:
        outside = [o for o in outcomes if not o.ok]
        worst = max(outcomes, key=lambda o: o.error)
        self.print()
        mae = mean_abs_error(outcomes)
        self.print(f"mean absolute error |simulated / published - 1|: {100 * mae:.1f}% over "
                   f"{_rows(len(outcomes))}; largest: {100 * worst.error:.1f}% ({worst.measurement.name})")
        self.print(f"{len(outside)} of {_rows(len(outcomes))} outside their tolerance"
                   + (f"; {_rows(len(left_out))} left out (--quick: slow)" if left_out else ""))


def _rows(n: int) -> str:
    return f"{n} row" + ("" if n == 1 else "s")


def _number(x: float) -> str:
    return f"{x:.5g}"


def _published(m: Measurement) -> str:
    return f"{_number(m.published)} {m.unit}"


def run(args: argparse.Namespace) -> int:
    """Run the suite as `args` asks; 0 if every row is within its tolerance, else 1."""
    config = _config(args)
    rows, left_out = select(suite_rows(), args.quick, args.only)
    check(rows, config)
    table = Table(rows, sys.stderr if args.json else sys.stdout)
    where = f"preset {config.name}" + (f" with {', '.join(args.overrides)}" if args.overrides else "")
    table.print(f"{len(rows)} published figures replayed on {where}; ratio = simulated / published")
    table.header()
    outcomes = run_suite(rows, config, table.row)
    table.summary(outcomes, left_out)
    if args.json:
        print(json.dumps([o.as_json() for o in outcomes], indent=1))
    return 0 if all(o.ok for o in outcomes) else 1

