"""The `npusim` command line: run programs by name or from assembly, compare variants, sweep, list.

Every command prints a human summary on stdout; `--json` moves it to stderr and prints one JSON
object on stdout instead, so `npusim run ... --json > run.json` works alongside a timeline. One
module per command (run, compare, asm, check, sweep, listing); `common` holds what they share and
`runner` the one path that builds, simulates and checks a program.

Exit status, the same for every command:
  0    success
  1    a numerics mismatch, a validation row outside its tolerance, or a sweep point that failed
  2    a user mistake: one line `npusim: error: ...` on stderr, found before the long work starts
  3    sanitizer findings
  130  interrupted (Ctrl-C): one line `npusim: interrupted`, wherever it landed; a sweep keeps
       the points that finished and says so
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from isa.errors import IsaError
from npusim.cli import asm, check, common, compare, listing, run, sweep
from npusim.cli.common import INTERRUPTED, USER_ERROR, UsageError
from npusim.config import ConfigError
from npusim.paths import OutputPathError
from npusim.sweep import SweepError
from npusim.timeline import TimelineError
from npusim.validation import ValidationError
from npusim.validation import command as validate

__all__ = ["USER_ERRORS", "UsageError", "main"]

USER_ERRORS = (IsaError, ConfigError, UsageError, TimelineError, SweepError, ValidationError,
               OutputPathError)  # with the plots', report's and stats' own kinds of it
"""The project's errors that name a user's mistake (SyncError and DeadlockError are IsaErrors). Any
other exception is a bug and keeps its traceback, a KeyError or OSError included."""

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": run.command, "compare": compare.command, "sweep": sweep.command, "asm": asm.command,
    "check": check.command, "validate": validate.run, "presets": listing.presets,
    "programs": listing.programs,
}


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (`npusim: error: ...`) through `main`, not usage + exit."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("npusim").strip()
        raise UsageError(f"{command}: {message}" if command else message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="npusim",
        description="Cycle-approximate simulator of an Ascend-class (Da Vinci) NPU.",
        epilog="example:\n  npusim run tile-matmul\n"
               "  npusim compare paged-attention --batch 8 --context-len 2048\n"
               "  npusim asm programs/tile_matmul.s\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.add_parser(sub)
    compare.add_parser(sub)
    sweep.add_parser(sub)
    asm.add_parser(sub)
    check.add_parser(sub)
    validate.add_parser(sub)
    listing.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `npusim` console script; returns the exit status (module docstring)."""
    status = _run(argv)
    if status == INTERRUPTED and argv is None:  # the npusim program itself, not a caller in Python
        # An interrupt that landed in C code running Python source (PyRun_*) leaves CPython set to end
        # the process by SIGINT once the interpreter finishes, whatever main returned: a parent would
        # see -2 instead of 130 at random. End it here, with the status the contract gives.
        with contextlib.suppress(OSError):  # a closed pipe has nothing left to flush into
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)
    return status


def _run(argv: Sequence[str] | None) -> int:
    try:
        args = _parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except BrokenPipeError:  # output piped into a reader that stopped early, e.g. `| head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open until exit, to swallow the flush
        return common.OK
    except USER_ERRORS as err:
        print(f"npusim: error: {err}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:  # Ctrl-C, wherever it lands: an import, building, simulating, writing
        print("npusim: interrupted", file=sys.stderr)
        return INTERRUPTED
