"""The `npusim` command line: run programs by name or from assembly, compare variants, list what exists.

Every command prints a human summary on stdout; `--json` moves it to stderr and prints one JSON
object on stdout instead, so `npusim run ... --json > run.json` works alongside a timeline.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from isa.asm import format_listing, load_program
from isa.check import check_program
from isa.errors import CheckError, IsaError
from isa.program import Program, Role
from isa.sanitize import Finding, sanitize
from isa.types import dtype_of
from npusim import outputs, plots, sanitizer, sweep, timeline, trace
from npusim.chip import core_names
from npusim.config import (
    ConfigError,
    HardwareConfig,
    available_presets,
    keys,
    load_preset,
    parse_override,
)
from npusim.inputs import load_inputs, random_inputs
from npusim.report import HbmRoofline, compare_table, summary
from npusim.results import Result, core_order
from npusim.simulate import simulate
from npusim.validation import ValidationError
from npusim.validation import command as validate
from programs import registry  # the CLI is the one place npusim loads programs


def _add_hardware_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="910b2", help="preset name or TOML file (default: 910b2)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset field by dotted name, e.g. buffers.ub_bytes=262144 (repeatable)")


def _add_program_options(p: argparse.ArgumentParser, workload: registry.Workload,
                         skip: Sequence[str] = (), keep_defaults: bool = True) -> None:
    group = p.add_argument_group(f"{workload.name} options")
    for option in workload.options:
        if option.name in skip:
            continue
        default = "none" if option.default is None else option.default
        group.add_argument(option.flag, dest=option.name, type=_arg_type(option.parse),
                           default=option.default if keep_defaults else argparse.SUPPRESS,
                           choices=option.choices, help=f"{option.help} (default: {default})")


def _arg_type(parse: Any) -> Any:
    if parse in (int, str):
        return parse  # argparse's own message names the option and the value

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = parse.__name__
    return convert


def _with_variants() -> list[registry.Workload]:
    return [w for w in registry.WORKLOADS.values() if w.variants]


def _variant_list(workload: registry.Workload) -> Any:
    def variants(text: str) -> list[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in names if v not in workload.variants]
        if bad or not names:
            raise argparse.ArgumentTypeError(f"unknown variant {', '.join(bad) or repr(text)}; "
                                             f"valid: {', '.join(workload.variants)}")
        return list(dict.fromkeys(names))

    return variants


def _add_numerics_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-numerics", dest="numerics", action="store_false",
                   help="time only: compute nothing and skip the reference check")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    _add_numerics_option(p)
    p.add_argument("--listing", action="store_true", help="print the program's assembly before running it")
    _add_sanitize_option(p)
    _add_output_options(p, single_run=True)


def _add_sanitize_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sanitize", action="store_true",
                   help="also report every missing synchronisation the kernels permit, whatever this run's "
                        "timing (racecheck, synccheck, initcheck; docs/sanitizer.md); exit 3 if any")


def _add_output_options(p: argparse.ArgumentParser, single_run: bool) -> None:
    g = p.add_argument_group("output")
    if single_run:
        g.add_argument("--timeline", action="store_true",
                       help="print a text timeline: chip summary, or lanes per pipe of --core/--task")
        g.add_argument("--core", metavar="NAME", help="timeline and plot: this core, e.g. aic0")
        g.add_argument("--task", metavar="NAME", help="timeline: this task and its instructions")
        g.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                       help="timeline colours (default: auto: a terminal and no NO_COLOR)")
    g.add_argument("--trace", metavar="FILE.json", type=Path,
                   help="write a Chrome trace (open it in ui.perfetto.dev or chrome://tracing)")
    g.add_argument("--trace-sync", choices=trace.SYNC_MODES, default="show",
                   help="'hide' leaves set_flag/wait_flag/barrier slices out of the trace (default: show)")
    g.add_argument("--plot", metavar="FILE.png", type=Path,
                   help="write a figure: utilization per core, a core's pipes, HBM bandwidth"
                        if single_run else "write a bar chart of the variants side by side")
    g.add_argument("--json", action="store_true",
                   help="print one JSON object on stdout (the text goes to stderr)")
    if single_run:
        g.add_argument("--dump", metavar="DIR", type=Path, help="write every GM tensor as DIR/NAME.npy and "
                       "DIR/summary.json (needs numerics)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


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
                   "pandas and pyarrow are installed (default: PROGRAM_sweep.csv)")
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


def _command(sub: Any, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=summary, description=summary, epilog=f"example:\n  {example}\n",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


class UsageError(Exception):
    """A command-line mistake found after parsing (an impossible shape, a program that does not fit)."""


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
    _add_run_command(sub)
    _add_compare_command(sub)
    _add_sweep_command(sub)
    _add_asm_command(sub)
    _add_check_command(sub)
    validate.add_parser(sub)
    presets = _command(sub, "presets", "list the hardware presets, or one preset's keys and values",
                       "npusim presets --keys --preset 910b3")
    presets.add_argument("--keys", action="store_true", help="print every key of --preset with its value")
    presets.add_argument("--preset", default="910b2", help="preset for --keys (default: 910b2)")
    _command(sub, "programs", "list the programs `npusim run` knows", "npusim programs")
    return parser


def _add_run_command(sub: Any) -> None:
    run = _command(sub, "run", "run a program by name and check it against PyTorch",
                   "npusim run paged-attention --variant 2block --batch 8 --context-len 2048")
    programs = run.add_subparsers(dest="program", required=True, metavar="PROGRAM",
                                  help=f"one of: {', '.join(registry.WORKLOADS)}")
    for workload in registry.WORKLOADS.values():
        p = _command(programs, workload.name, workload.summary, workload.example)
        _add_program_options(p, workload)
        _add_hardware_options(p)
        _add_run_options(p)


def _add_compare_command(sub: Any) -> None:
    compare = _command(sub, "compare",
                       "run a program's variants side by side: cycles, pipe busy time, speedup",
                       "npusim compare paged-attention --variants 1block,2block --batch 8 --context-len 2048")
    programs = compare.add_subparsers(dest="program", required=True, metavar="PROGRAM",
                                      help=f"one of: {', '.join(w.name for w in _with_variants())}")
    for workload in _with_variants():
        p = _command(programs, workload.name, f"compare variants of {workload.name}",
                     f"npusim compare {workload.name} --variants {','.join(workload.variants)}")
        _add_sanitize_option(p)
        p.add_argument("--variants", type=_variant_list(workload), default=list(workload.variants),
                       help="comma-separated, the first is the baseline "
                            f"(default: {','.join(workload.variants)})")
        _add_program_options(p, workload, skip=("variant",))
        _add_hardware_options(p)
        _add_numerics_option(p)
        _add_output_options(p, single_run=False)


def _add_sweep_command(sub: Any) -> None:
    sweep_cmd = _command(sub, "sweep", "simulate a program over swept preset keys and program options",
                         "npusim sweep paged-attention --batch 8 --vary variant=1block,2block "
                         "--set hbm.bandwidth_gbps=800,1600,3200 --baseline variant=1block --plot s.png")
    programs = sweep_cmd.add_subparsers(dest="program", required=True, metavar="PROGRAM",
                                        help=f"one of: {', '.join(registry.WORKLOADS)}")
    for workload in registry.WORKLOADS.values():
        p = _command(programs, workload.name, f"sweep {workload.name} over preset keys and its options",
                     f"npusim sweep {workload.name} --set hbm.bandwidth_gbps=800,1600,3200 --jobs 2")
        _add_program_options(p, workload, keep_defaults=False)
        _add_sweep_options(p)


def _add_asm_command(sub: Any) -> None:
    asm = _command(sub, "asm", "run a kernel written in assembly text",
                   "npusim asm programs/tile_matmul.s --input q=q.npy   # inputs not given are random")
    asm.add_argument("file", type=Path, help="an assembly file (.s); see docs/isa.md")
    asm.add_argument("--input", dest="inputs", action="append", default=[], metavar="NAME=FILE.npy",
                     help="value of an input tensor from a .npy file (repeatable)")
    asm.add_argument("--seed", type=int, default=0, help="seed of the inputs not given (default: 0)")
    _add_hardware_options(asm)
    asm.add_argument("--listing", action="store_true", help="print the program's assembly before running it")
    asm.add_argument("--check-only", action="store_true",
                     help="run the static checks and the sanitizer, not the kernel (as `npusim check`)")
    _add_sanitize_option(asm)
    _add_output_options(asm, single_run=True)


def _add_check_command(sub: Any) -> None:
    check = _command(sub, "check", "check an assembly kernel without running it: static checks and the "
                     "sanitizer", "npusim check kernel.s --preset 910b3")
    check.add_argument("file", type=Path, help="an assembly file (.s); see docs/isa.md")
    _add_hardware_options(check)
    check.add_argument("--listing", action="store_true", help="print the program's assembly")
    check.add_argument("--json", action="store_true", help="print the findings as JSON on stdout")


@contextmanager
def _file(option: str, path: Path | str, doing: str) -> Iterator[None]:
    """Around reading or writing the file a user named: its OSError is their path, not a bug."""
    try:
        yield
    except OSError as err:
        raise UsageError(f"{option} {path}: cannot {doing} it: {err.strerror or err}") from None


def _preset(name: str) -> HardwareConfig:
    with _file("--preset", name, "read"):
        return load_preset(name)


def _config(args: argparse.Namespace) -> tuple[HardwareConfig, dict[str, Any]]:
    """The preset with the --set overrides applied, and the overrides (typed, for the JSON record)."""
    config = _preset(args.preset)
    overrides = dict(parse_override(o, config) for o in args.overrides)
    return (config.replace(overrides) if overrides else config), overrides


def _check_folders(args: argparse.Namespace, *options: str) -> None:
    """An output file's folder must exist: found before a long run rather than after it."""
    for option in options:
        path = getattr(args, option, None)
        if path is not None and not path.parent.exists():
            raise UsageError(f"--{option} {path}: folder {path.parent} does not exist")


class _Out:
    """Where the human text goes: stdout, or stderr when stdout carries the JSON."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.stream = sys.stderr if getattr(args, "json", False) else sys.stdout

    def __call__(self, text: str = "", end: str = "\n") -> None:
        print(text, file=self.stream, end=end)


def _announce(program: Program, config: HardwareConfig, out: _Out, args: argparse.Namespace) -> None:
    """Say that the (already run) static checks passed, and print the listing if asked."""
    count = sum(len(k) for k in program.kernels)
    out(f"preset {config.name}; static checks passed ({len(program.tasks)} task(s), {count} instructions)")
    if args.listing:
        out("\n" + format_listing(program))


def _sanitize(program: Program, args: argparse.Namespace, out: _Out) -> list[Finding] | None:
    """With --sanitize: the program's findings, reported before the run (None without the option)."""
    if not getattr(args, "sanitize", False):
        return None
    findings = sanitize(program)
    out(sanitizer.report(findings))
    return findings


def _placed(result: Result, findings: list[Finding] | None, record: dict[str, Any]) -> Result:
    """The run with its findings on the cores that ran them, in the JSON record too."""
    if findings is None:
        return result
    result = sanitizer.place(result, findings)
    record["sanitizer"] = [sanitizer.record(f) for f in result.sanitizer or ()]
    return result


def _describe(name: str, value: np.ndarray) -> str:
    head = np.array2string(value.reshape(-1)[:6].astype(np.float64), precision=4, separator=", ")
    nans = int(np.isnan(value).sum()) if value.dtype.kind == "f" else 0
    poisoned = f"; {nans} of {value.size} are NaN" if nans else ""
    return f"  {name} {dtype_of(value.dtype).value}{list(value.shape)}: first values {head}{poisoned}"


def _instance(workload: registry.Workload, args: argparse.Namespace, config: HardwareConfig,
              shared: dict[Any, Any] | None = None, **fixed: Any) -> registry.Instance:
    """Build the workload from the parsed options and check it against the chip's cores."""
    values = {o.name: getattr(args, o.name) for o in workload.options if hasattr(args, o.name)} | fixed
    try:
        instance = workload.instance(values, config.chip.cube_cores, config, shared)
    except ValueError as err:
        raise UsageError(f"{workload.name}: {err}") from None
    try:
        check_program(instance.program, config.limits_by_kind())
    except CheckError as err:
        raise UsageError(f"{workload.name} {_params(instance.params)} does not fit preset {config.name}: "
                         f"{err.first}") from None
    return instance


def _roofline(workload: registry.Workload, instance: registry.Instance,
              config: HardwareConfig) -> HbmRoofline | None:
    """The run's HBM roofline, if the workload says what bytes it must read."""
    nbytes = workload.roofline_bytes(instance.params)
    return None if nbytes is None else HbmRoofline(nbytes, workload.must_read_what, config.hbm.bandwidth_gbps)


def _params(params: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in params.items() if v is not None}
    return "(" + ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                           for k, v in shown.items()) + ")"


def _simulate(program: Program, config: HardwareConfig, values: dict[str, np.ndarray] | None,
              args: argparse.Namespace, label: str) -> Result:
    progress = outputs.Progress.for_terminal(args.quiet, label)
    try:
        return simulate(program, config, inputs=values, numerics=values is not None, check=False,
                        progress=progress)
    finally:
        progress.close()


def _print_check(check: Mapping[str, Any], outs: Mapping[str, np.ndarray], out: _Out) -> None:
    tol = f"rtol={check['rtol']:g}, atol={check['atol']:g}"
    reference = None
    for row in check["comparisons"]:
        if row["reference"] != reference:
            reference = row["reference"]
            out(f"numerics against {reference} ({tol}):")
        out(_describe(row["tensor"], outs[row["tensor"]]))
        out(f"    max |sim - ref| = {row['max_abs_error']:.3e}, max relative (where |ref| > atol) = "
            f"{row['max_rel_error']:.3e}: {'match' if row['match'] else 'MISMATCH'}")


def _validate_outputs(program: Program, config: HardwareConfig, args: argparse.Namespace,
                      numerics: bool) -> None:
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
    _check_folders(args, "trace", "plot")


def _write_outputs(result: Result, args: argparse.Namespace, out: _Out, record: dict[str, Any]) -> None:
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
        with _file("--trace", args.trace, "write"):
            count = trace.write(args.trace, [(None, result)], args.trace_sync)
        out(f"trace: {count} events in {args.trace} (open it in ui.perfetto.dev)")
    if args.plot is not None:
        figure = plots.run_figure(result, core=args.core)
        with _file("--plot", args.plot, "write"):
            plots.save(figure, args.plot)
        out(f"plot: {args.plot}")
    if args.dump is not None:
        with _file("--dump", args.dump, "write"):
            files = outputs.dump(args.dump, result, record)
        out(f"dump: {len(files) - 1} tensors and summary.json in {args.dump}")
    if args.json:
        print(json.dumps(record, indent=1))


def _cmd_run(args: argparse.Namespace) -> int:
    workload = registry.get(args.program)
    config, overrides = _config(args)
    out = _Out(args)
    instance = _instance(workload, args, config)
    _validate_outputs(instance.program, config, args, args.numerics)
    out(f"{workload.name} {_params(instance.params)}: {workload.summary}")
    _announce(instance.program, config, out, args)  # _instance ran the checks
    findings = _sanitize(instance.program, args, out)
    values = instance.inputs() if args.numerics else None
    result = _simulate(instance.program, config, values, args, workload.name)
    out(summary(result))
    roofline = _roofline(workload, instance, config)
    if roofline is not None:
        out("  " + roofline.line(result))
    check = None
    if values is None:
        out("numerics: off (--no-numerics): timing only, no reference check")
    else:
        check = outputs.numerics_check(instance.references(values), result.tensors or {}, instance.rtol,
                                       instance.atol)
        _print_check(check, result.tensors or {}, out)
    record = outputs.record(result, workload.name, instance.params, overrides, check)
    if roofline is not None:
        record["hbm_roofline"] = roofline.record(result)
    result = _placed(result, findings, record)
    _write_outputs(result, args, out, record)
    return 3 if findings else 0 if check is None or check["match"] else 1


def _cmd_compare(args: argparse.Namespace) -> int:
    workload = registry.get(args.program)
    config, overrides = _config(args)
    out = _Out(args)
    _check_folders(args, "trace", "plot")
    shared: dict[Any, Any] = {}  # one problem: the variants draw its inputs and plain reference once
    instances = [_instance(workload, args, config, shared, variant=v)  # all checked first
                 for v in args.variants]
    roofline = _roofline(workload, instances[0], config)  # the variants read the same bytes
    found = []
    for variant, instance in zip(args.variants, instances, strict=True):
        if args.sanitize:
            out(f"{variant}: ", end="")
        found.append(_sanitize(instance.program, args, out))
    rows, records = [], []
    for variant, instance, findings in zip(args.variants, instances, found, strict=True):
        values = instance.inputs() if args.numerics else None
        result = _simulate(instance.program, config, values, args, f"{workload.name} {variant}")
        check = None if values is None else outputs.numerics_check(
            instance.references(values), result.tensors or {}, instance.rtol, instance.atol)
        records.append(outputs.record(result, workload.name, instance.params, overrides,
                                      check))
        if roofline is not None:
            records[-1]["hbm_roofline"] = roofline.record(result)
        result = _placed(result, findings, records[-1])
        rows.append((variant, result, None if check is None else check["match"]))
    common = {k: v for k, v in instances[0].params.items() if k != "variant"}
    title = (f"{workload.name} {_params(common)} on preset {config.name}"
             + (f" with {', '.join(args.overrides)}" if args.overrides else ""))
    out(title)
    out(compare_table(rows, roofline))
    if args.trace is not None:
        with _file("--trace", args.trace, "write"):
            count = trace.write(args.trace, [(variant, result) for variant, result, _ in rows],
                                args.trace_sync)
        out(f"trace: {count} events in {args.trace}, one block of processes per variant (ui.perfetto.dev)")
    if args.plot is not None:
        figure = plots.compare_figure([(v, r) for v, r, _ in rows], title)
        with _file("--plot", args.plot, "write"):
            plots.save(figure, args.plot)
        out(f"plot: {args.plot}")
    if args.json:
        base = rows[0][1].cycles
        runs = [{**rec, "speedup": base / rec["cycles"] if rec["cycles"] else None} for rec in records]
        print(json.dumps({"program": workload.name, "baseline": args.variants[0], "runs": runs}, indent=1))
    if any(found):
        return 3
    return 0 if all(matched is not False for _, _, matched in rows) else 1


def _cmd_asm(args: argparse.Namespace) -> int:
    with _file("asm", args.file, "read"):
        program = load_program(args.file)
    config, overrides = _config(args)
    out = _Out(args)
    if args.check_only:
        _refuse_run_options(args)
        return _check_only(program, config, args, out)
    _validate_outputs(program, config, args, True)
    check_program(program, config.limits_by_kind())
    _announce(program, config, out, args)
    findings = _sanitize(program, args, out)
    given = load_inputs(program, args.inputs)
    values = {**random_inputs(program, args.seed, skip=given), **given}
    result = _simulate(program, config, values, args, str(args.file))
    out(summary(result))
    drawn = sorted(set(values) - set(given))
    source = f"drawn with seed {args.seed}: {', '.join(drawn)}" if drawn else "all given"
    out(f"outputs (inputs {source}):")
    for tensor in program.tensors_of(Role.OUTPUT):
        out(_describe(tensor.name, (result.tensors or {})[tensor.name]))
    params = {"file": str(args.file), "seed": args.seed, "inputs": sorted(given), "random_inputs": drawn}
    record = outputs.record(result, program.name, params, overrides, None)
    result = _placed(result, findings, record)
    _write_outputs(result, args, out, record)
    return 3 if findings else 0


def _refuse_run_options(args: argparse.Namespace) -> None:
    """`asm --check-only` runs nothing: an option that needs a run is a mistake, not to be ignored."""
    options = (("--input", args.inputs), ("--trace", args.trace), ("--plot", args.plot),
               ("--dump", args.dump), ("--timeline", args.timeline), ("--core", args.core),
               ("--task", args.task), ("--sanitize", args.sanitize))
    given = [flag for flag, value in options if value]
    if given:
        them = "it" if len(given) == 1 else "them"
        raise UsageError(f"--check-only runs nothing, so {', '.join(given)} cannot apply; drop {them} or "
                         f"--check-only (it already runs the sanitizer)")


def _check_only(program: Program, config: HardwareConfig, args: argparse.Namespace, out: _Out) -> int:
    """`npusim check` and `asm --check-only`: the static checks and the sanitizer, no run."""
    check_program(program, config.limits_by_kind())
    _announce(program, config, out, args)
    findings = sanitize(program)
    out(sanitizer.report(findings))
    if getattr(args, "json", False):
        print(json.dumps({"program": program.name, "preset": config.name,
                          "findings": [sanitizer.record(f) for f in findings]}, indent=1))
    return 3 if findings else 0


def _cmd_check(args: argparse.Namespace) -> int:
    with _file("check", args.file, "read"):
        program = load_program(args.file)
    config, _ = _config(args)
    return _check_only(program, config, args, _Out(args))


def _swept_values(workload: registry.Workload, config: HardwareConfig, args: argparse.Namespace,
                  study: Mapping[str, Any]) -> tuple[dict[str, list[Any]], dict[str, list[Any]],
                                                     dict[str, Any]]:
    """(swept options, swept preset keys, fixed options) from the file, then the command line."""
    options = {o.name: o for o in workload.options}

    def option(name: str, where: str) -> registry.Option:
        found = options.get(name.replace("-", "_"))
        if found is None:
            raise UsageError(f"{where}: {workload.name} has no option {name!r}; "
                             f"options: {', '.join(options)}")
        return found

    def typed(opt: registry.Option, value: Any) -> Any:
        try:
            return opt.parse(value) if isinstance(value, str) and opt.parse is not str else value
        except ValueError as err:
            raise UsageError(f"option {opt.name}: {err}") from None

    vary: dict[str, list[Any]] = {}
    for name, values in study.get("vary", {}).items():
        opt = option(name, "[vary]")
        vary[opt.name] = [typed(opt, v) for v in values]
    for text in args.vary:
        name, sep, raw = text.partition("=")
        if not sep:
            raise UsageError(f"--vary {text!r} must look like OPTION=V1,V2, e.g. variant=1block,2block")
        opt = option(name, "--vary")
        vary[opt.name] = [typed(opt, v.strip()) for v in raw.split(",")]
    sets: dict[str, list[Any]] = {}
    for key, values in study.get("set", {}).items():
        for v in values:
            config.replace({key: v})  # ConfigError names a bad key or value
        sets[key] = list(values)
    for text in args.sweep_sets:
        key, sep, raw = text.partition("=")
        if not sep:
            raise UsageError(f"--set {text!r} must look like KEY=V1,V2, e.g. hbm.bandwidth_gbps=800,1600")
        parsed = [parse_override(f"{key}={v}", config) for v in raw.split(",")]
        for k, v in parsed:
            config.replace({k: v})
        sets[key.strip()] = [v for _, v in parsed]
    fixed = {option(k, "[options]").name: typed(option(k, "[options]"), v)
             for k, v in study.get("options", {}).items()}
    fixed |= {name: getattr(args, name) for name in options if hasattr(args, name)}
    for name in vary:  # a swept option overrides its fixed value
        fixed.pop(name, None)
    return vary, sets, fixed


def _typed_baseline(workload: registry.Workload, config: HardwareConfig, key: str, value: Any,
                    is_option: bool) -> Any:
    """A baseline value as the swept values are typed (`800` matches a swept float 800.0)."""
    if not isinstance(value, str):
        return value
    try:
        if is_option:
            return next(o for o in workload.options if o.name == key).parse(value)
        return parse_override(f"{key}={value}", config)[1]
    except (ValueError, ConfigError):
        return value  # no match below, and the message lists the valid values


@dataclass(frozen=True)
class _Study:
    """A sweep as its file and the command line describe it, checked before any point runs."""

    workload: registry.Workload
    preset: str
    config: HardwareConfig
    points: list[sweep.Point]
    swept: list[str]  # swept keys: program options, then preset keys
    baseline: dict[str, Any]  # swept key -> the value other points are compared with
    numerics: bool
    metric: str
    x_key: str | None


def _study(args: argparse.Namespace) -> _Study:
    """The study: the sweep file (if any) with the command line on top, every mistake found here."""
    workload = registry.get(args.program)
    study: dict[str, Any] = {}
    if args.file is not None:
        with _file("--file", args.file, "read"):
            study = sweep.read_file(args.file)
    if study.get("program", workload.name) != workload.name:
        raise UsageError(f"{args.file} is a sweep of {study['program']}, not {workload.name}")
    preset = args.preset or study.get("preset", "910b2")
    config = _preset(preset)
    vary, sets, fixed = _swept_values(workload, config, args, study)
    baseline = _baseline(workload, config, args, study, vary, sets)
    zipped = args.zip or bool(study.get("zip", False))
    if zipped and baseline:
        raise UsageError("--baseline compares each point with the one that differs only in the baseline's "
                         "value, which a --zip sweep does not have; drop one of the two")
    try:
        points = sweep.expand(vary, sets, fixed, zipped=zipped)
    except sweep.SweepError as err:
        raise UsageError(str(err)) from None
    numerics = args.numerics or bool(study.get("numerics", False))
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    _check_folders(args, "out", "plot")
    metric = args.metric or study.get("metric") or ("speedup" if baseline else "microseconds")
    if metric not in sweep.METRICS:
        raise UsageError(f"metric {metric!r}; valid: {', '.join(sweep.METRICS)}")
    if metric == "speedup" and not baseline:
        raise UsageError("the speedup metric needs a baseline, e.g. --baseline variant=1block")
    swept = [*vary, *sets]
    x_key = args.x_key
    if x_key is not None:
        x_key = x_key.replace("-", "_") if x_key.replace("-", "_") in vary else x_key
        if x_key not in swept:
            raise UsageError(f"--x {x_key}: not a swept key; swept: {', '.join(swept)}")
    return _Study(workload, preset, config, points, swept, baseline, numerics, metric, x_key)


def _baseline(workload: registry.Workload, config: HardwareConfig, args: argparse.Namespace,
              study: Mapping[str, Any], vary: Mapping[str, list[Any]],
              sets: Mapping[str, list[Any]]) -> dict[str, Any]:
    """The baseline values, from the file then --baseline, each matched to one of its key's swept values."""
    baseline: dict[str, Any] = dict(study.get("baseline", {}))
    for text in args.baseline:
        key, sep, raw = text.partition("=")
        if not sep:
            raise UsageError(f"--baseline {text!r} must look like KEY=VALUE, e.g. variant=1block")
        name = key.strip().replace("-", "_")
        baseline[name if name in vary else key.strip()] = raw
    swept_names = [*vary, *sets]
    for key, value in list(baseline.items()):
        if key not in swept_names:
            raise UsageError(f"--baseline {key}: not a swept key; swept: {', '.join(swept_names) or 'none'}")
        choices = vary.get(key, sets.get(key, []))
        typed = _typed_baseline(workload, config, key, value, key in vary)
        match = [c for c in choices if c == typed or str(c) == str(value)]
        if not match:
            raise UsageError(f"--baseline {key}={value}: not one of the swept values "
                             f"{', '.join(map(str, choices))}")
        baseline[key] = match[0]
    return baseline


def _run_study(s: _Study, args: argparse.Namespace, jobs: int) -> sweep.Outcome:
    """Every point, from the cache or computed, with a progress bar on a terminal."""
    specs = sweep.specs(s.workload.name, s.preset, s.points, s.numerics)
    cache = None
    if not args.no_cache:
        with _file("--cache", args.cache, "write"):
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
    except sweep.SweepError as err:
        raise UsageError(str(err)) from None
    finally:
        if bar is not None:
            bar.close()


def _report_study(s: _Study, args: argparse.Namespace, jobs: int, outcome: sweep.Outcome) -> int:
    """The table on stdout and in --out, the summary line, the plot; 130 if the sweep was interrupted."""
    rows = sweep.with_speedup(s.points, outcome.rows, s.baseline) if s.baseline else outcome.rows
    columns, values = sweep.table_rows(s.points, rows)
    print(sweep.format_table(columns, values))
    out = args.out or Path(f"{s.workload.name.replace('-', '_')}_sweep.csv")
    with _file("--out", out, "write"):
        sweep.write_csv(out, columns, values)
    written = [str(out)]
    with _file("--out", out.with_suffix(".parquet"), "write"):
        if sweep.write_parquet(out.with_suffix(".parquet"), columns, values):
            written.append(str(out.with_suffix(".parquet")))
    where = "Dask scheduler " + args.scheduler if args.scheduler else f"{jobs} local job(s)"
    cache = "" if args.no_cache else f" ({args.cache})"
    print(f"{len(s.points)} points: {outcome.computed} computed, {outcome.cached} from the cache{cache}, "
          f"{outcome.failed} failed; {outcome.seconds:.1f} s on {where}; table: {', '.join(written)}")
    if args.plot is not None and not outcome.interrupted:
        title = f"{s.workload.name} on {s.config.name}: {s.metric}"
        order = [s.x_key, *(k for k in s.swept if k != s.x_key)] if s.x_key else s.swept
        if any(row.get("status") == "ok" for row in rows):
            figure = plots.sweep_figure(columns, values, order, s.metric, title, skip=s.baseline or None)
            with _file("--plot", args.plot, "write"):
                plots.save(figure, args.plot)
            print(f"plot: {args.plot}")
        else:
            print(f"plot: not drawn, no point ran ({outcome.failed} failed)", file=sys.stderr)
    if outcome.interrupted:
        done = outcome.computed + outcome.cached
        print(f"interrupted: {done} of {len(s.points)} points finished and are kept; run the same command "
              f"again to finish the rest", file=sys.stderr)
        return 130
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    study = _study(args)
    jobs = 1 if args.scheduler else args.jobs
    return _report_study(study, args, jobs, _run_study(study, args, jobs))


def _cmd_presets(args: argparse.Namespace) -> int:
    if args.keys:
        config = _preset(args.preset)
        for key in keys():
            print(f"{key} = {config.get(key)!r}")
        return 0
    for name in available_presets():
        print(f"{name:<10} {load_preset(name).description}")
    return 0


def _cmd_programs(args: argparse.Namespace) -> int:
    for workload in registry.WORKLOADS.values():
        variants = f" (variants: {', '.join(workload.variants)})" if workload.variants else ""
        print(f"{workload.name:<16} {workload.summary}{variants}")
    return 0


USER_ERRORS = (IsaError, ConfigError, UsageError, timeline.TimelineError, sweep.SweepError, ValidationError)
"""The project's errors that name a user's mistake (SyncError and DeadlockError are IsaErrors). Any
other exception is a bug and keeps its traceback, a KeyError or OSError included."""

_COMMANDS = {"run": _cmd_run, "compare": _cmd_compare, "sweep": _cmd_sweep, "asm": _cmd_asm,
             "check": _cmd_check, "validate": validate.run, "presets": _cmd_presets,
             "programs": _cmd_programs}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `npusim` console script; user mistakes print one line and exit 2."""
    try:
        args = _parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except BrokenPipeError:  # output piped into a reader that stopped early, e.g. `| head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open until exit, to swallow the flush
        return 0
    except USER_ERRORS as err:
        print(f"npusim: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
