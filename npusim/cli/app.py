"""The command table, the parser and the user errors of `npusim`: what `npusim.cli.main` runs.

Kept apart from `npusim.cli` so that importing the commands (about half a second: numpy, SimPy,
the ISA) happens inside `main`, where an interrupt is answered like any other.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from isa.errors import IsaError
from npusim.cli import asm, check, common, compare, listing, run, sweep
from npusim.cli.common import USER_ERROR, UsageError
from npusim.config import ConfigError
from npusim.paths import OutputPathError
from npusim.sweep import SweepError
from npusim.timeline import TimelineError
from npusim.validation import ValidationError
from npusim.validation import command as validate

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


def execute(argv: Sequence[str] | None) -> int:
    """Parse `argv` and run its command; the exit status. A user mistake is one line and status 2;
    an interrupt propagates to `npusim.cli.main`, the one place that answers it."""
    try:
        args = _parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except BrokenPipeError:  # output piped into a reader that stopped early, e.g. `| head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open until exit, to swallow the flush
        return common.OK
    except USER_ERRORS as err:
        print(f"npusim: error: {err}", file=sys.stderr)
        return USER_ERROR
