"""The `npusim` command line: run programs by name or from assembly, list presets and programs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from isa.asm import format_program, load_program
from isa.check import check_program
from isa.errors import IsaError
from isa.program import Program, Role
from isa.types import dtype_of
from npusim.config import (
    ConfigError,
    HardwareConfig,
    available_presets,
    keys,
    load_preset,
    parse_override,
)
from npusim.inputs import load_inputs, random_inputs
from npusim.results import Result
from npusim.simulate import simulate


def _add_hardware_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="910b2", help="preset name or TOML file (default: 910b2)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset field by dotted name, e.g. buffers.ub_bytes=262144")
    p.add_argument("--listing", action="store_true", help="print the program's assembly before running it")


def _command(sub: Any, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=summary, description=summary, epilog=f"example:\n  {example}\n",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="npusim",
        description="Cycle-approximate simulator of an Ascend-class (Da Vinci) NPU.",
        epilog="example:\n  npusim run tile-matmul\n  npusim asm programs/tile_matmul.s\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = _command(sub, "run", "run a program by name and check it against PyTorch",
                   "npusim run tile-matmul --seed 3 --listing")
    run.add_argument("program", help="a name from `npusim programs`")
    run.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default: 0)")
    _add_hardware_options(run)
    asm = _command(sub, "asm", "run a kernel written in assembly text",
                   "npusim asm programs/tile_matmul.s --input q=q.npy   # inputs not given are random")
    asm.add_argument("file", type=Path, help="an assembly file (.s); see docs/isa.md")
    asm.add_argument("--input", dest="inputs", action="append", default=[], metavar="NAME=FILE.npy",
                     help="value of an input tensor from a .npy file (repeatable)")
    asm.add_argument("--seed", type=int, default=0, help="seed of the inputs not given (default: 0)")
    _add_hardware_options(asm)
    presets = _command(sub, "presets", "list the hardware presets, or one preset's keys and values",
                       "npusim presets --keys --preset 910b3")
    presets.add_argument("--keys", action="store_true", help="print every key of --preset with its value")
    presets.add_argument("--preset", default="910b2", help="preset for --keys (default: 910b2)")
    _command(sub, "programs", "list the programs `npusim run` knows", "npusim programs")
    return parser


def _config(args: argparse.Namespace) -> HardwareConfig:
    config = load_preset(args.preset)
    if args.overrides:
        config = config.replace(dict(parse_override(o, config) for o in args.overrides))
    return config


def _prepare(program: Program, config: HardwareConfig, args: argparse.Namespace) -> None:
    check_program(program, config.limits_by_kind())
    count = sum(len(k) for k in program.kernels)
    print(f"preset {config.name}; static checks passed "
          f"({len(program.tasks)} task(s), {count} instructions)")
    if args.listing:
        print("\n" + format_program(program))


def _describe(name: str, value: np.ndarray) -> str:
    head = np.array2string(value.reshape(-1)[:6].astype(np.float64), precision=4, separator=", ")
    return f"  {name} {dtype_of(value.dtype).value}{list(value.shape)}: first values {head}"


def _report_timing(result: Result) -> None:
    clock = result.config.clock_ghz
    cores = result.by_core()
    print(f"timing: {result.cycles} cycles = {result.seconds * 1e6:.3f} us at {clock:g} GHz "
          f"({result.instructions} instructions, {len(result.traces)} task(s) on {len(cores)} core(s))")
    print("  pipe   busy cycles  busy % (of all cores' time)")
    span = max(1, result.cycles) * max(1, len(cores))
    for pipe, busy in result.busy.items():
        if busy:
            print(f"  {pipe.value:<6} {busy:>11}  {100 * busy / span:5.1f}%")
    mem = result.memory
    print(f"  GM: {mem.hbm_read_bytes / 1e6:.3f} MB read from HBM, {mem.l2_hit_bytes / 1e6:.3f} MB from L2 "
          f"(hit rate {100 * mem.l2_hit_rate:.0f}%), {mem.hbm_write_bytes / 1e6:.3f} MB written; HBM "
          f"{mem.average_gbps(result.cycles):.0f} GB/s on average, {mem.peak_gbps:.0f} GB/s at peak")


def _cmd_run(args: argparse.Namespace) -> int:
    from programs import registry  # the CLI is the one place npusim loads programs

    workload = registry.get(args.program)
    config = _config(args)
    print(f"{workload.name}: {workload.summary}")
    program = workload.build()
    _prepare(program, config, args)
    values = workload.inputs(args.seed)
    result = simulate(program, config, inputs=values, check=False)  # checked just above
    _report_timing(result)
    outputs = result.tensors or {}
    expected = workload.reference(values)
    ok = True
    tol = f"rtol={workload.rtol:g}, atol={workload.atol:g}"
    print(f"numerics (inputs from seed {args.seed}) against PyTorch ({tol}):")
    for name, want in expected.items():
        got = outputs[name].astype(np.float64)
        err = np.abs(got - want.astype(np.float64))
        close = bool(np.allclose(got, want, rtol=workload.rtol, atol=workload.atol))
        ok &= close
        rel = float((err / np.maximum(np.abs(want), np.finfo(np.float32).tiny)).max())
        print(_describe(name, outputs[name]))
        print(f"    max |sim - torch| = {err.max():.3e}, max relative = {rel:.3e}: "
              f"{'match' if close else 'MISMATCH'}")
    return 0 if ok else 1


def _cmd_asm(args: argparse.Namespace) -> int:
    program = load_program(args.file)
    config = _config(args)
    _prepare(program, config, args)
    given = load_inputs(program, args.inputs)
    values = {**random_inputs(program, args.seed, skip=given), **given}
    result = simulate(program, config, inputs=values, check=False)  # checked just above
    _report_timing(result)
    drawn = sorted(set(values) - set(given))
    source = f"drawn with seed {args.seed}: {', '.join(drawn)}" if drawn else "all given"
    print(f"outputs (inputs {source}):")
    for tensor in program.tensors_of(Role.OUTPUT):
        print(_describe(tensor.name, (result.tensors or {})[tensor.name]))
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    if args.keys:
        config = load_preset(args.preset)
        for key in keys():
            print(f"{key} = {config.get(key)!r}")
        return 0
    for name in available_presets():
        print(f"{name:<10} {load_preset(name).description}")
    return 0


def _cmd_programs(args: argparse.Namespace) -> int:
    from programs import registry

    for workload in registry.WORKLOADS.values():
        print(f"{workload.name:<14} {workload.summary}")
    return 0


_COMMANDS = {"run": _cmd_run, "asm": _cmd_asm, "presets": _cmd_presets, "programs": _cmd_programs}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `npusim` console script; user mistakes print one line and exit 2."""
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except BrokenPipeError:  # output piped into a reader that stopped early, e.g. `| head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open until exit, to swallow the flush
        return 0
    except (IsaError, ConfigError, KeyError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"npusim: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
