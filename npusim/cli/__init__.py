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

import contextlib
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]

INTERRUPTED = 130  # the exit status of an interrupted command (its other statuses: npusim.cli.common)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `npusim` console script; returns the exit status (module docstring)."""
    try:
        from npusim.cli import app  # the commands, imported here: a Ctrl-C while they load is answered too

        status = app.execute(argv)
    except KeyboardInterrupt:  # Ctrl-C, wherever it lands: an import, building, simulating, writing
        print("npusim: interrupted", file=sys.stderr)
        status = INTERRUPTED
    if status == INTERRUPTED and argv is None:  # the npusim program itself, not a caller in Python
        # An interrupt that landed in C code running Python source (PyRun_*) leaves CPython set to end
        # the process by SIGINT once the interpreter finishes, whatever main returned: a parent would
        # see -2 instead of 130 at random. End it here, with the status the contract gives.
        with contextlib.suppress(OSError):  # a closed pipe has nothing left to flush into
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)
    return status
