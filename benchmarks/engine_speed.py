"""How fast the timing engine runs, against the floor of a bare SimPy loop, in one run.

    python benchmarks/engine_speed.py            # full: 10k, 100k and 1M instructions, 3 repeats
    python benchmarks/engine_speed.py --quick    # same sizes, 1 repeat
    python benchmarks/engine_speed.py --long     # also 3M, npusim compare and long contexts (slow)
    python benchmarks/engine_speed.py --json out.json

Measures, on the double-buffered single-core GEMM of programs/matmul.py (k = 512):

1. the floor: one SimPy process doing one `env.timeout(1)` per instruction, same instruction count;
2. simulate(numerics=False) at about 10k, 100k and 1M instructions (--long: and 3M): wall time,
   instructions per second, ratio to the floor at the same count (building the program is timed
   separately);
3. simulate(numerics=True) at 10k and 100k (not 1M: C alone would be ~1.1 GB of fp32 in GM);
4. memory: record bytes per instruction (KernelTrace.record_nbytes / count) and the tracemalloc
   peak of one simulate(numerics=False) call per instruction, in a separate untimed run;
5. linearity: wall time per instruction at each size and the 1M / 10k ratio.

Then the chip (72 busy cores, HBM saturated) at about 10k, 100k and 1M instructions (--long: 3M)
and 5000 small tasks, and the speed, scale and start-up targets, each printed with PASS/FAIL:

6. the seed paged-attention runs (`npusim run paged-attention --variant 2block|1block
   --no-numerics --quiet`), whole process, against the floor for their instruction count;
7. start-up: wall time of `npusim --help` and `npusim presets`, and whether they import torch;
8. linearity: time per instruction across sizes, one core and chip;
9. --long only: `npusim compare paged-attention` with numerics (wall time, peak RSS) and timing-only
   runs at context 32768 with batch 256 and 512 (wall time, peak RSS).

Every timed figure is the median of --repeat runs (start-up: of 5; the --long commands: one run);
ratios compare figures from this same run, because the machine may be shared and noisy. The exit
status is 1 if any target that was measured is missed.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

import simpy  # noqa: E402

from isa.check import check_program  # noqa: E402
from isa.interpret import interpret  # noqa: E402
from isa.program import Program  # noqa: E402
from npusim.config import load_preset  # noqa: E402
from npusim.simulate import simulate  # noqa: E402
from programs import registry, vector_scale  # noqa: E402
from programs.matmul import build_per_tile, build_single_core, inputs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
K = 512
TILE = 128
TARGETS = {"numerics off vs floor": 5.0, "numerics on vs floor": 20.0, "record bytes / instr": 200.0}
SIZES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000}
LONG_SIZES = {"3M": 3_000_000}  # --long only
NUMERICS_SIZES = ("10k", "100k")  # 1M would need ~1.1 GB for C (m*n fp32) plus A and B in GM
# The speed targets are for long kernels (100k instructions and more); at 10k the per-program work
# (checking and decoding each distinct instruction, ~0.5 us per instruction) weighs more, and the
# point is there to show that time per instruction stays flat as kernels grow.
TARGET_SIZES = ("100k", "1M", "3M")


def instruction_count(m: int, n: int, k: int = K) -> int:
    """About the instructions of build_single_core(m, n, k): per tile, 13 per k-step + 5.

    Only to choose shapes: the kernel's prologue and drain change with programs/gemm_per_tile.py
    (today the count is 12 below this), so the figures use the built program's own count.
    """
    steps = -(-k // TILE)
    return (m // TILE) * (n // TILE) * (13 * steps + 5)


def shape_for(target: int) -> tuple[int, int]:
    """Square-ish (m, n), multiples of 128, whose kernel count is closest to `target`."""
    best: tuple[int, int, int] | None = None
    for a in range(1, 400):
        for b in (a, a + 1):
            d = abs(instruction_count(a * TILE, b * TILE) - target)
            if best is None or d < best[0]:
                best = (d, a, b)
    assert best is not None
    return best[1] * TILE, best[2] * TILE


def source_digest() -> str:
    """A short hash of the measured sources (isa/, npusim/, programs/), to tell which code ran."""
    h = hashlib.sha256()
    for path in sorted((*ROOT.glob("isa/*.py"), *ROOT.glob("npusim/*.py"), *ROOT.glob("programs/*.py"))):
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def git_head() -> str:
    """The checkout's commit, with +dirty if the measured sources differ from it ("?" outside git)."""
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  check=True).stdout.strip()
        dirty = git("status", "--porcelain", "--", "isa", "npusim", "programs")
        return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float]]:
    """Median wall seconds of `repeat` calls of fn (garbage collected before each, not during)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def floor_loop(count: int) -> None:
    """The floor: a bare SimPy loop of one timeout per instruction in one process."""
    env = simpy.Environment()

    def proc():
        timeout = env.timeout
        for _ in range(count):
            yield timeout(1)

    env.process(proc())
    env.run()


def peak_traced(fn: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run(repeat: int, log: Callable[[str], None], counts: dict[str, int]) -> dict[str, Any]:
    """The one-core GEMM at about each of `counts` (label -> instructions)."""
    res: dict[str, Any] = {"repeat": repeat, "k": K, "python": platform.python_version(),
                           "simpy": simpy.__version__, "cpus": os.cpu_count(), "commit": git_head(),
                           "sources": source_digest(), "sizes": {}}
    limits = load_preset().core_limits()
    for label, target in counts.items():
        m, n = shape_for(target)
        t0 = time.perf_counter()
        program = build_single_core(m, n, K)
        build = time.perf_counter() - t0
        count = len(program.kernels[0].instructions)
        row: dict[str, Any] = {"m": m, "n": n, "k": K, "instructions": count, "build_s": build}
        log(f"[{label}] m={m} n={n} k={K}: {count} instructions, built in {build:.2f} s")

        row["floor_s"], row["floor_runs"] = timed(lambda c=count: floor_loop(c), repeat)
        log(f"[{label}] floor {row['floor_s']:.3f} s")

        result = simulate(program, numerics=False)  # also checks the run works before timing it
        trace = result.traces[0]
        row["cycles"] = result.cycles
        row["record_bytes_per_instr"] = trace.record_nbytes / count
        del result, trace
        row["off_s"], row["off_runs"] = timed(lambda p=program: simulate(p, numerics=False), repeat)
        log(f"[{label}] numerics off {row['off_s']:.3f} s")

        # The static checks run inside simulate(); timed alone too, to show their share.
        row["check_s"], row["check_runs"] = timed(lambda p=program: check_program(p, limits), repeat)

        if label in NUMERICS_SIZES:
            ins = inputs(m, n, K)
            row["on_s"], row["on_runs"] = timed(lambda p=program, i=ins: simulate(p, inputs=i), repeat)
            # The same numbers with no timing at all: what the semantics alone cost on this kernel.
            row["interp_s"], row["interp_runs"] = timed(
                lambda p=program, i=ins: interpret(p, i, limits), repeat)
            del ins
            log(f"[{label}] numerics on {row['on_s']:.3f} s, interpreter alone {row['interp_s']:.3f} s")

        peak = peak_traced(lambda p=program: simulate(p, numerics=False))  # untimed: tracemalloc is slow
        row["peak_traced_bytes"] = peak
        row["peak_traced_bytes_per_instr"] = peak / count
        log(f"[{label}] tracemalloc peak {peak / 2**20:.1f} MiB")
        del program
        gc.collect()
        res["sizes"][label] = row

    sizes = res["sizes"]
    for row in sizes.values():
        c = row["instructions"]
        row["floor_ips"] = c / row["floor_s"]
        row["off_ips"] = c / row["off_s"]
        row["off_ratio"] = row["off_s"] / row["floor_s"]
        row["off_us_per_instr"] = 1e6 * row["off_s"] / c
        row["floor_us_per_instr"] = 1e6 * row["floor_s"] / c
        row["check_us_per_instr"] = 1e6 * row["check_s"] / c
        if "on_s" in row:
            row["on_ips"] = c / row["on_s"]
            row["on_ratio"] = row["on_s"] / row["floor_s"]
    res["linearity_1M_over_10k"] = sizes["1M"]["off_us_per_instr"] / sizes["10k"]["off_us_per_instr"]
    res["floor_linearity_1M_over_10k"] = (sizes["1M"]["floor_us_per_instr"]
                                          / sizes["10k"]["floor_us_per_instr"])
    long = [r for label, r in sizes.items() if label in TARGET_SIZES]
    worst_off = max(r["off_ratio"] for r in long)
    worst_on = max(r["on_ratio"] for r in long if "on_ratio" in r)
    worst_rec = max(r["record_bytes_per_instr"] for r in sizes.values())
    res["targets"] = {
        "numerics off vs floor": {"limit": TARGETS["numerics off vs floor"], "worst": worst_off,
                                  "met": worst_off <= TARGETS["numerics off vs floor"]},
        "numerics on vs floor": {"limit": TARGETS["numerics on vs floor"], "worst": worst_on,
                                 "met": worst_on <= TARGETS["numerics on vs floor"]},
        "record bytes / instr": {"limit": TARGETS["record bytes / instr"], "worst": worst_rec,
                                 "met": worst_rec <= TARGETS["record bytes / instr"]},
    }
    return res


def table(res: dict[str, Any]) -> str:
    sizes = res["sizes"]
    out = [f"engine speed: Python {res['python']}, SimPy {res['simpy']}, {res['cpus']} CPUs, "
           f"median of {res['repeat']} run(s)",
           f"commit {res['commit']}, sources sha256 {res['sources']}", ""]
    head = ("size", "m x n x k", "instructions", "build s", "floor s", "off s", "off instr/s",
            "off / floor", "on s", "on instr/s", "on / floor", "interpreter s")
    rows = []
    for label, r in sizes.items():
        on = "on_s" in r
        rows.append((label, f"{r['m']} x {r['n']} x {r['k']}", f"{r['instructions']:,}",
                     f"{r['build_s']:.2f}", f"{r['floor_s']:.3f}", f"{r['off_s']:.3f}",
                     f"{r['off_ips']:,.0f}", f"{r['off_ratio']:.2f}x", f"{r['on_s']:.3f}" if on else "-",
                     f"{r['on_ips']:,.0f}" if on else "-", f"{r['on_ratio']:.2f}x" if on else "-",
                     f"{r['interp_s']:.3f}" if on else "-"))
    out += _grid(head, rows)
    out.append("")
    head = ("size", "floor us/instr", "off us/instr", "of which checks", "record B/instr",
            "peak traced B/instr", "peak MiB")
    rows = [(label, f"{r['floor_us_per_instr']:.3f}", f"{r['off_us_per_instr']:.3f}",
             f"{r['check_us_per_instr']:.3f}",
             f"{r['record_bytes_per_instr']:.1f}", f"{r['peak_traced_bytes_per_instr']:.0f}",
             f"{r['peak_traced_bytes'] / 2**20:.1f}") for label, r in sizes.items()]
    out += _grid(head, rows)
    out.append("")
    out.append(f"linearity: per-instruction time 1M / 10k = {res['linearity_1M_over_10k']:.2f} "
               f"(floor: {res['floor_linearity_1M_over_10k']:.2f})")
    out.append("")
    for name, t in res["targets"].items():
        unit = " B" if "bytes" in name else "x"
        out.append(f"target {name} <= {t['limit']:g}{unit}: worst {t['worst']:.2f}{unit} "
                   f"-> {'PASS' if t['met'] else 'FAIL'}")
    long = ", ".join(label for label in TARGET_SIZES if label in sizes)
    out.append(f"(speed targets over the long kernels: {long}; numerics on runs at 10k "
               f"and 100k only: at 1M, C alone is ~1.1 GB of fp32 in GM)")
    return "\n".join(out)


def _grid(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:{'<' if i < 2 else '>'}{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*head), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)]


def chip_program(m: int, rows: int) -> Program:
    """A GEMM over every cube core beside a streaming vector program over every vector core: all 72
    of 910b2's cores busy at once, HBM shared (saturated) among them. The GEMM is the per-tile kernel,
    which reloads its slices from GM at every k-step: the heavier GM load, and the same program
    whatever the shipped GEMM's tiling becomes, so figures stay comparable across commits."""
    gemm = build_per_tile(m, m, K, 24)
    scale = vector_scale.build(rows, 1024, 48)
    return Program("chip", gemm.tensors + scale.tensors, gemm.tasks + scale.tasks)


CHIP_CASES: dict[str, Callable[[], Program]] = {
    "chip 10k": lambda: chip_program(1280, 5632),  # for linearity; the speed target is for 100k and more
    "chip 100k": lambda: chip_program(3840, 56320),
    "chip 1M": lambda: chip_program(12032, 560000),
    # Many small tasks: 5000 vector tasks of 94 instructions, queued on 48 vector cores.
    "5000 tasks": lambda: vector_scale.build(5000 * 640, 128, 5000),
}
LONG_CHIP_CASES: dict[str, Callable[[], Program]] = {"chip 3M": lambda: chip_program(20864, 1680000)}
CHIP_LINEAR = ("chip 10k", "chip 100k", "chip 1M", "chip 3M")  # one program at four sizes


def run_chip(repeat: int, log: Callable[[str], None],
             cases: dict[str, Callable[[], Program]]) -> dict[str, Any]:
    """The multi-core case: 24 GEMM tasks and 48 vector tasks, timing only."""
    out: dict[str, Any] = {}
    for label, build in cases.items():
        program = build()
        count = sum(len(k) for k in program.kernels)
        result = simulate(program, numerics=False)
        busy = {name for name, (tasks, _) in result.by_core().items() if tasks}
        row: dict[str, Any] = {
            "instructions": count, "tasks": len(program.tasks), "cores": len(busy),
            "cycles": result.cycles, "hbm_avg_gbps": result.memory.average_gbps(result.cycles),
            "hbm_peak_gbps": result.memory.peak_gbps, "l2_hit_rate": result.memory.l2_hit_rate,
        }
        del result
        row["floor_s"], row["floor_runs"] = timed(lambda c=count: floor_loop(c), repeat)
        row["off_s"], row["off_runs"] = timed(lambda p=program: simulate(p, numerics=False), repeat)
        row["off_ratio"] = row["off_s"] / row["floor_s"]
        row["off_ips"] = count / row["off_s"]
        row["off_us_per_instr"] = 1e6 * row["off_s"] / count
        log(f"[{label}] {count} instructions, {len(program.tasks)} tasks on {len(busy)} cores: "
            f"{row['off_s']:.3f} s ({row['off_ratio']:.2f}x the floor)")
        out[label] = row
        del program
        gc.collect()
    return out


def chip_table(rows: dict[str, Any]) -> str:
    head = ("case", "instructions", "tasks", "cores busy", "cycles", "floor s", "off s", "off instr/s",
            "off / floor", "HBM avg GB/s", "HBM peak GB/s", "L2 hit rate")
    body = [(label, f"{r['instructions']:,}", str(r["tasks"]), str(r["cores"]), f"{r['cycles']:,}",
             f"{r['floor_s']:.3f}", f"{r['off_s']:.3f}", f"{r['off_ips']:,.0f}", f"{r['off_ratio']:.2f}x",
             f"{r['hbm_avg_gbps']:.0f}", f"{r['hbm_peak_gbps']:.0f}", f"{r['l2_hit_rate']:.2f}")
            for label, r in rows.items()]
    return "\n".join(["multi-core on 910b2, numerics off (chip: GEMM on 24 AIC + vector scale on 48 AIV)",
                      *_grid(head, body)])


# --- scale targets: whole commands, start-up, linearity, long contexts ------------------------

SCALE_TARGETS = {"seed vs floor": 20.0, "chip vs floor": 10.0, "one core off vs floor": 3.0,
           "one core on vs floor": 10.0, "compare s": 10.0, "compare peak GiB": 1.0,
           "long context peak GiB": 3.0, "linearity": 1.3}
SEED_VARIANTS = ("2block", "1block")
LONG_CONTEXT = {"batch 256": 256, "batch 512": 512}  # at context 32768, 2-block, timing only
LONG_CONTEXT_LEN = 32768
STARTUP_COMMANDS = {"npusim --help": ("--help",), "npusim presets": ("presets",)}
STARTUP_REPEAT = 5
GIB = 2**30

# Which heavy modules a command imports: its main() in a fresh interpreter, output discarded.
_IMPORTS_PROBE = """
import contextlib, io, sys
from npusim.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:  # --help exits
        pass
print(" ".join(m for m in ("torch", "matplotlib", "ml_dtypes") if m in sys.modules))
"""


def _child_env() -> dict[str, str]:
    """The environment of a child command: this checkout first on the path, so its sources run."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _npusim() -> list[str]:
    """The `npusim` console script beside this interpreter, else the same through `-m npusim.cli`."""
    script = Path(sys.executable).with_name("npusim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "npusim.cli"]


_GNU_TIME = Path("/usr/bin/time")


def run_npusim(args: Sequence[str]) -> dict[str, Any]:
    """`npusim *args` in a fresh process: its wall seconds, peak RSS and exit status.

    The peak is the command's own, from GNU time's %M. Not from os.wait4 on a child of this process:
    a child's peak starts at this (large) process's RSS when it forks, and exec keeps it.
    """
    with tempfile.NamedTemporaryFile() as peak, tempfile.TemporaryFile() as err:
        measure = [str(_GNU_TIME), "-f", "%M", "-o", peak.name] if _GNU_TIME.exists() else []
        t0 = time.perf_counter()
        proc = subprocess.run([*measure, *_npusim(), *args], cwd=ROOT, env=_child_env(),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        wall = time.perf_counter() - t0
        err.seek(0)
        tail = err.read()[-2000:].decode(errors="replace")
        kib = Path(peak.name).read_text().split()[-1] if measure else ""
    return {"command": " ".join(["npusim", *args]), "wall_s": wall,
            "peak_rss_bytes": int(kib) * 1024 if kib.isdigit() else float("nan"),  # GNU time reports KiB
            "status": proc.returncode, "stderr_tail": tail if proc.returncode else ""}


def seed_instructions(variant: str) -> int:
    """Instructions of the seed paged-attention program (batch 64, context 8192) on 910b2."""
    config = load_preset("910b2")
    workload = registry.get("paged-attention")
    program = workload.instance({"variant": variant}, config.chip.cube_cores, config).program
    return sum(len(k) for k in program.kernels)


def run_seed(repeat: int, log: Callable[[str], None]) -> dict[str, Any]:
    """The seed paged-attention runs, timing only, whole process, against the floor of their size."""
    out: dict[str, Any] = {}
    for variant in SEED_VARIANTS:
        count = seed_instructions(variant)
        gc.collect()
        row: dict[str, Any] = {"instructions": count}
        row["floor_s"], row["floor_runs"] = timed(lambda c=count: floor_loop(c), repeat)
        args = ("run", "paged-attention", "--variant", variant, "--no-numerics", "--quiet")
        runs = [run_npusim(args) for _ in range(repeat)]
        row["command"] = runs[0]["command"]
        row["runs"] = runs
        row["ok"] = all(r["status"] == 0 for r in runs)
        row["wall_s"] = statistics.median(r["wall_s"] for r in runs)
        row["peak_rss_bytes"] = max(r["peak_rss_bytes"] for r in runs)
        row["ratio"] = row["wall_s"] / row["floor_s"]
        log(f"[seed {variant}] {count} instructions: {row['wall_s']:.2f} s whole process, "
            f"{row['ratio']:.1f}x the floor ({row['floor_s']:.3f} s)"
            + ("" if row["ok"] else f"; FAILED: {runs[-1]['stderr_tail'][-300:]}"))
        out[variant] = row
    return out


def run_startup(log: Callable[[str], None]) -> dict[str, Any]:
    """Wall time of each start-up command (median of 5 fresh runs) and the heavy modules it imports."""
    out: dict[str, Any] = {}
    for label, args in STARTUP_COMMANDS.items():
        runs = [run_npusim(args) for _ in range(STARTUP_REPEAT)]
        probe = subprocess.run([sys.executable, "-c", _IMPORTS_PROBE, *args], cwd=ROOT, env=_child_env(),
                               capture_output=True, text=True, check=True)
        imported = probe.stdout.split()
        row = {"wall_s": statistics.median(r["wall_s"] for r in runs), "runs": [r["wall_s"] for r in runs],
               "ok": all(r["status"] == 0 for r in runs), "imported": imported,
               "torch": "torch" in imported}
        log(f"[{label}] {row['wall_s']:.2f} s; imports {', '.join(imported) or 'none'} of torch, "
            f"matplotlib, ml_dtypes")
        out[label] = row
    return out


def run_long(log: Callable[[str], None]) -> dict[str, Any]:
    """--long: `npusim compare paged-attention` with numerics, and the long-context runs; one run each."""
    out: dict[str, Any] = {"compare": run_npusim(("compare", "paged-attention", "--quiet"))}
    r = out["compare"]
    log(f"[compare] {r['wall_s']:.1f} s, peak {r['peak_rss_bytes'] / GIB:.2f} GiB, exit {r['status']}")
    for label, batch in LONG_CONTEXT.items():
        r = run_npusim(("run", "paged-attention", "--variant", "2block", "--batch", str(batch),
                        "--context-len", str(LONG_CONTEXT_LEN), "--no-numerics", "--quiet"))
        log(f"[{label}, context {LONG_CONTEXT_LEN}] {r['wall_s']:.1f} s, "
            f"peak {r['peak_rss_bytes'] / GIB:.2f} GiB, exit {r['status']}")
        out[label] = r
    return out


def _spread(rows: dict[str, Any], labels: Sequence[str]) -> tuple[float, str]:
    """Largest over smallest time per instruction across `labels` (those measured), and the figures."""
    per = {label: rows[label]["off_us_per_instr"] for label in labels if label in rows}
    figures = ", ".join(f"{label} {us:.2f}" for label, us in per.items())
    return max(per.values()) / min(per.values()), f"us/instr {figures}"


def scale_targets(res: dict[str, Any], long: bool) -> list[dict[str, Any]]:
    """Every speed, scale and start-up target with what was measured and PASS, FAIL or SKIPPED (no --long)."""
    rows: list[dict[str, Any]] = []

    def add(target: str, measured: str, value: float | None, limit: float | None, met: bool | None) -> None:
        verdict = "SKIPPED (--long)" if met is None else "PASS" if met else "FAIL"
        rows.append({"target": target, "measured": measured, "value": value, "limit": limit,
                     "verdict": verdict})

    limit = SCALE_TARGETS["seed vs floor"]
    for variant, r in res["seed"].items():
        failed = "" if r["ok"] else ", exited with an error"
        add(f"seed paged-attention {variant}, timing only, whole process <= {limit:g}x floor",
            f"{r['ratio']:.1f}x ({r['wall_s']:.2f} s, {r['instructions']:,} instr, floor "
            f"{r['floor_s']:.3f} s){failed}", r["ratio"], limit, r["ok"] and r["ratio"] <= limit)
    limit = SCALE_TARGETS["chip vs floor"]
    for label, r in res["chip"].items():
        if label == "chip 10k":  # the targets are for long programs; 10k is there for linearity
            continue
        add(f"{label} ({r['cores']} cores, timing only) <= {limit:g}x floor",
            f"{r['off_ratio']:.2f}x ({r['off_s']:.2f} s, floor {r['floor_s']:.3f} s)", r["off_ratio"],
            limit, r["off_ratio"] <= limit)
    sizes = res["sizes"]
    limit = SCALE_TARGETS["one core off vs floor"]
    for label in TARGET_SIZES:
        if label in sizes:
            ratio = sizes[label]["off_ratio"]
            add(f"one core {label}, timing only <= {limit:g}x floor", f"{ratio:.2f}x", ratio, limit,
                ratio <= limit)
    limit = SCALE_TARGETS["one core on vs floor"]
    for label in TARGET_SIZES:
        if "on_ratio" in sizes.get(label, {}):
            ratio = sizes[label]["on_ratio"]
            add(f"one core {label}, numerics on <= {limit:g}x floor", f"{ratio:.2f}x", ratio, limit,
                ratio <= limit)

    lim_s, lim_mem = SCALE_TARGETS["compare s"], SCALE_TARGETS["compare peak GiB"]
    compare = res["long"]["compare"] if long else None
    if compare is None:
        add(f"npusim compare paged-attention (numerics) < {lim_s:g} s", "not run", None, lim_s, None)
        add(f"npusim compare paged-attention peak RSS < {lim_mem:g} GiB", "not run", None, lim_mem, None)
    else:
        ok = compare["status"] == 0
        exit_note = "" if ok else f", exit {compare['status']}"
        peak = compare["peak_rss_bytes"] / GIB
        add(f"npusim compare paged-attention (numerics) < {lim_s:g} s",
            f"{compare['wall_s']:.1f} s{exit_note}", compare["wall_s"], lim_s,
            ok and compare["wall_s"] < lim_s)
        add(f"npusim compare paged-attention peak RSS < {lim_mem:g} GiB", f"{peak:.2f} GiB{exit_note}",
            peak, lim_mem, ok and peak < lim_mem)
    lim_mem = SCALE_TARGETS["long context peak GiB"]
    for label in LONG_CONTEXT:
        bound = f"peak RSS < {lim_mem:g} GiB" if label == "batch 256" else "runs to the end"
        target = f"{label}, context {LONG_CONTEXT_LEN}, 2block timing only: {bound}"
        r = res["long"][label] if long else None
        if r is None:
            add(target, "not run", None, lim_mem if label == "batch 256" else None, None)
            continue
        ok = r["status"] == 0
        peak = r["peak_rss_bytes"] / GIB
        measured = f"{r['wall_s']:.0f} s, peak {peak:.2f} GiB" + ("" if ok else f", exit {r['status']}")
        if label == "batch 256":
            add(target, measured, peak, lim_mem, ok and peak < lim_mem)
        else:
            add(target, measured, r["wall_s"], None, ok)

    for label, r in res["startup"].items():
        add(f"{label} imports no torch", f"{r['wall_s']:.2f} s, torch "
            f"{'imported' if r['torch'] else 'not imported'}", r["wall_s"], None, r["ok"] and not r["torch"])

    limit = SCALE_TARGETS["linearity"]
    one_labels = [label for label in (*SIZES, *LONG_SIZES) if label in sizes]
    spread, figures = _spread(sizes, one_labels)
    add(f"linear, one core ({', '.join(one_labels)}): max/min time per instr <= {limit:g}",
        f"{spread:.2f} ({figures})", spread, limit, spread <= limit)
    chip_labels = [label for label in CHIP_LINEAR if label in res["chip"]]
    spread, figures = _spread(res["chip"], chip_labels)
    add(f"linear, chip ({', '.join(label.split()[1] for label in chip_labels)}): max/min time per instr "
        f"<= {limit:g}", f"{spread:.2f} ({figures})", spread, limit, spread <= limit)
    return rows


def scale_table(res: dict[str, Any], long: bool) -> str:
    seed = res["seed"]
    head = ("seed run (batch 64, context 8192)", "instructions", "floor s", "whole process s", "/ floor",
            "peak RSS MiB")
    body = [(r["command"], f"{r['instructions']:,}", f"{r['floor_s']:.3f}", f"{r['wall_s']:.2f}",
             f"{r['ratio']:.1f}x", f"{r['peak_rss_bytes'] / 2**20:.0f}") for r in seed.values()]
    out = ["speed, scale and start-up targets", "", *_grid(head, body), ""]
    head = ("start-up command", f"median of {STARTUP_REPEAT} s", "imports (of torch, matplotlib, ml_dtypes)")
    body = [(label, f"{r['wall_s']:.2f}", ", ".join(r["imported"]) or "none")
            for label, r in res["startup"].items()]
    out += [*_grid(head, body), ""]
    if not long:
        out += ["not run (they take minutes; pass --long): npusim compare paged-attention, the context-32768 "
                "runs, and the 3M-instruction points of linearity", ""]
    head = ("target", "measured", "verdict")
    body = [(t["target"], t["measured"], t["verdict"]) for t in res["scale_targets"]]
    out += _grid(head, body)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one repeat per measurement instead of three")
    ap.add_argument("--repeat", type=int, help="repeats per timed measurement (default 3, --quick 1)")
    ap.add_argument("--long", action="store_true",
                    help="also 3M instructions, npusim compare paged-attention with numerics and the "
                         "context-32768 runs (tens of minutes)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure as JSON to FILE")
    args = ap.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    res = run(repeat, log, SIZES | LONG_SIZES if args.long else SIZES)
    res["long_run"] = args.long
    res["chip"] = run_chip(repeat, log, CHIP_CASES | LONG_CHIP_CASES if args.long else CHIP_CASES)
    res["seed"] = run_seed(repeat, log)
    res["startup"] = run_startup(log)
    res["long"] = run_long(log) if args.long else None
    res["scale_targets"] = scale_targets(res, args.long)
    print(table(res))
    print()
    print(chip_table(res["chip"]))
    print()
    print(scale_table(res, args.long))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    met = all(t["met"] for t in res["targets"].values())
    return 0 if met and all(t["verdict"] != "FAIL" for t in res["scale_targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
