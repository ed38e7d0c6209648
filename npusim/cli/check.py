"""`npusim check FILE.s` (and `asm --check-only`): the static checks and the sanitizer, nothing run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from isa.asm import load_program
from isa.check import check_program
from isa.program import Program
from isa.sanitize import sanitize
from npusim import sanitizer
from npusim.cli import common, runner
from npusim.config import HardwareConfig


def add_parser(sub: Any) -> None:
    check = common.command(sub, "check", "check an assembly kernel without running it: static checks and the "
                           "sanitizer", "npusim check kernel.s --preset 910b3")
    check.add_argument("file", type=Path, help="an assembly file (.s); see docs/isa.md")
    common.add_hardware_options(check)
    check.add_argument("--listing", action="store_true", help="print the program's assembly")
    check.add_argument("--json", action="store_true", help="print the findings as JSON on stdout")


def check_only(program: Program, config: HardwareConfig, args: argparse.Namespace, out: common.Out) -> int:
    """The static checks and the sanitizer's findings; exit status 3 if there are any."""
    check_program(program, config.limits_by_kind())
    runner.announce(program, common.ran_on(args, config), out, args.listing)
    findings = sanitize(program)
    out(sanitizer.report(findings))
    if getattr(args, "json", False):
        print(json.dumps({"program": program.name, "preset": config.name,
                          "findings": [sanitizer.record(f) for f in findings]}, indent=1))
    return common.FINDINGS if findings else common.OK


def command(args: argparse.Namespace) -> int:
    with common.user_file("check", args.file, "read"):
        program = load_program(args.file)
    config, _ = common.config(args)
    return check_only(program, config, args, common.Out(args))
