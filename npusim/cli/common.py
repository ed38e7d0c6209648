"""What the commands share: option groups, the preset and its --set overrides, checks on the files a
user names, the text printer, and the exit statuses a command returns."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from npusim import trace
from npusim.config import HardwareConfig, load_preset, parse_override
from programs import registry  # the CLI is the one place npusim loads programs

OK, MISMATCH, USER_ERROR, FINDINGS = 0, 1, 2, 3  # and INTERRUPTED (130), from npusim.cli
"""Exit statuses (docs in npusim.cli): success; a numerics mismatch (or, for a sweep, a point that
failed); a user mistake; sanitizer findings; interrupted."""


class UsageError(Exception):
    """A command-line mistake found after parsing (an impossible shape, a program that does not fit)."""


def status(findings: bool, checks: Iterable[Mapping[str, Any] | None]) -> int:
    """A run's exit status: sanitizer findings first, then any numerics check that did not match."""
    if findings:
        return FINDINGS
    return MISMATCH if any(c is not None and not c["match"] for c in checks) else OK


def command(sub: Any, name: str, summary: str, example: str, notes: str = "") -> argparse.ArgumentParser:
    """A subcommand whose help shows its example (and any notes, e.g. its exit statuses) at the end."""
    return sub.add_parser(name, help=summary, description=summary,
                          epilog=f"example:\n  {example}\n" + (f"\n{notes}" if notes else ""),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_hardware_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="910b2", help="preset name or TOML file (default: 910b2)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset field by dotted name, e.g. buffers.ub_bytes=262144 (repeatable)")


def add_program_options(p: argparse.ArgumentParser, workload: registry.Workload,
                        skip: Sequence[str] = (), keep_defaults: bool = True) -> None:
    """One flag per option of the workload; without `keep_defaults` an option not given is absent."""
    group = p.add_argument_group(f"{workload.name} options")
    for option in workload.options:
        if option.name in skip:
            continue
        default = "none" if option.default is None else option.default
        group.add_argument(option.flag, dest=option.name, type=arg_type(option.parse),
                           default=option.default if keep_defaults else argparse.SUPPRESS,
                           choices=option.choices, help=f"{option.help} (default: {default})")


def arg_type(parse: Any) -> Any:
    if parse in (int, str):
        return parse  # argparse's own message names the option and the value

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = parse.__name__
    return convert


def add_numerics_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-numerics", dest="numerics", action="store_false",
                   help="time only: compute nothing and skip the reference check")


def add_listing_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listing", action="store_true",
                   help="print the program's assembly before running it: each kernel once, in full for "
                        "the first task that runs it, then the other tasks running a kernel of that name")


def add_sanitize_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sanitize", action="store_true",
                   help="also report every missing synchronisation the kernels permit, whatever this run's "
                        "timing (racecheck, synccheck, initcheck; docs/sanitizer.md); exit 3 if any")


def add_output_options(p: argparse.ArgumentParser, single_run: bool) -> None:
    """The views a run writes; `single_run` adds those that show one run (timeline, core, dump).

    Every path named here is checked before the run (`npusim.cli.views.check_paths`)."""
    g = p.add_argument_group("output")
    if single_run:
        g.add_argument("--timeline", action="store_true",
                       help="print a text timeline: chip summary, or lanes per pipe of --core/--task")
        g.add_argument("--core", metavar="NAME", help="--timeline and --plot: this core, e.g. aic0")
        g.add_argument("--task", metavar="NAME", help="--timeline: this task and its instructions")
        g.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                       help="timeline colours (default: auto: a terminal and no NO_COLOR)")
    g.add_argument("--trace", metavar="FILE.json", type=Path,
                   help="write a Chrome trace (open it in ui.perfetto.dev or chrome://tracing)")
    g.add_argument("--trace-sync", choices=trace.SYNC_MODES, default="show",
                   help="'hide' leaves set_flag/wait_flag/barrier slices out of the trace (default: show)")
    g.add_argument("--plot", metavar="FILE.png", type=Path,
                   help="write a figure: utilization per core, busy share over time, a core's pipes, HBM "
                        "bandwidth" if single_run else
                        "write a figure: the variants side by side, then over time (HBM, each pipe), one "
                        "colour per variant")
    g.add_argument("--roofline", metavar="FILE.png", type=Path,
                   help="write a roofline plot: the run" + ("" if single_run else ", each variant")
                        + " against the preset's cube and HBM ceilings")
    g.add_argument("--stats", metavar="DIR", type=Path,
                   help="write instructions.csv, kinds.csv and pipes.csv (where the time went) into DIR"
                        + ("" if single_run else "/VARIANT") + " (made if missing)")
    g.add_argument("--report", metavar="FILE.html", type=Path,
                   help="write one self-contained HTML page: summary, plots, tables, speed of light")
    g.add_argument("--json", action="store_true",
                   help="print one JSON object on stdout (the text goes to stderr)")
    if single_run:
        g.add_argument("--dump", metavar="DIR", type=Path, help="write every GM tensor as DIR/NAME.npy and "
                       "DIR/summary.json (needs numerics)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


@contextmanager
def user_file(option: str, path: Path | str, doing: str) -> Iterator[None]:
    """Around reading or writing the file a user named: its OSError is their path, not a bug."""
    try:
        yield
    except OSError as err:
        raise UsageError(f"{option} {path}: cannot {doing} it: {err.strerror or err}") from None


def preset(name: str) -> HardwareConfig:
    """The preset `--preset` names (a shipped name or a TOML file)."""
    with user_file("--preset", name, "read"):
        return load_preset(name)


def config(args: argparse.Namespace) -> tuple[HardwareConfig, dict[str, Any]]:
    """The preset with the --set overrides applied, and the overrides (typed, for the JSON record)."""
    base = preset(args.preset)
    overrides = dict(parse_override(o, base) for o in args.overrides)
    return (base.replace(overrides) if overrides else base), overrides


def preset_label(args: argparse.Namespace, config: HardwareConfig) -> str:
    """The preset as the user named it: `910b2`, or `my.toml (910b2-fast)` for a file, with its name."""
    return config.name if args.preset == config.name else f"{args.preset} ({config.name})"


def ran_on(args: argparse.Namespace, config: HardwareConfig) -> str:
    """`preset P with key=value, ...`: the chip a run used and the --set overrides as given."""
    changed = f" with {', '.join(args.overrides)}" if args.overrides else ""
    return f"preset {preset_label(args, config)}{changed}"


class Out:
    """Where the human text goes: stdout, or stderr when stdout carries the JSON."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.stream = sys.stderr if getattr(args, "json", False) else sys.stdout

    def __call__(self, text: str = "", end: str = "\n") -> None:
        print(text, file=self.stream, end=end)
