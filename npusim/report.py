"""Text reports of a run: the timing summary and the side-by-side comparison of variants."""

from __future__ import annotations

from collections.abc import Sequence

from isa.types import Pipe
from npusim.results import Result
from npusim.roofline import Bounds, bounds

# Pipes in data-flow order, as the tables show them (S runs only sync and barriers).
SHOWN_PIPES = (Pipe.MTE2, Pipe.MTE1, Pipe.M, Pipe.FIX, Pipe.V, Pipe.MTE3)


def summary(result: Result) -> str:
    """Cycles, time, per-pipe busy cycles and utilisation, and GM traffic of one run."""
    clock = result.config.clock_ghz
    cores = result.by_core()
    lines = [f"timing: {result.cycles} cycles = {result.seconds * 1e6:.3f} us at {clock:g} GHz "
             f"({result.instructions} instructions, {len(result.traces)} task(s) on {len(cores)} core(s))",
             "  pipe   busy cycles  busy % (of the cores that have the pipe and ran a task)"]
    utilization, busy = result.utilization(), result.busy
    for pipe in Pipe:
        if busy[pipe]:
            lines.append(f"  {pipe.value:<6} {busy[pipe]:>11}  {100 * utilization[pipe]:5.1f}%")
    mem = result.memory
    lines.append(f"  GM: {mem.hbm_read_bytes / 1e6:.3f} MB read from HBM, {mem.l2_hit_bytes / 1e6:.3f} MB "
                 f"from L2 (hit rate {100 * mem.l2_hit_rate:.0f}%), {mem.hbm_write_bytes / 1e6:.3f} MB "
                 f"written; HBM {mem.average_gbps(result.cycles):.0f} GB/s on average, "
                 f"{mem.peak_gbps:.0f} GB/s at peak")
    lines.append(roofline_line(bounds(result)))
    return "\n".join(lines)


def roofline_line(b: Bounds) -> str:
    """Speed of light: the compute and memory bounds as shares of the achieved time, and the limit."""
    return (f"  speed of light: cube compute {100 * b.compute:.1f}%, HBM {100 * b.memory:.1f}% of the "
            f"achieved {b.cycles} cycles; {b.explain()}")


def compare_table(rows: Sequence[tuple[str, Result, bool | None]]) -> str:
    """One row per (variant, result, numerics matched or None if not checked); the first is the baseline."""
    base = rows[0][1].cycles
    head = ["variant", "cycles", "us", "speedup", "tasks", "instructions", "HBM MB",
            *(f"{p.value} %" for p in SHOWN_PIPES), "numerics"]
    table = []
    for variant, result, matched in rows:
        util = result.utilization()
        table.append([
            variant, f"{result.cycles:,}", f"{result.seconds * 1e6:.1f}",
            f"{base / result.cycles:.2f}x" if result.cycles else "-",
            f"{len(result.traces):,}", f"{result.instructions:,}", f"{result.memory.hbm_bytes / 1e6:.1f}",
            *(f"{100 * util[p]:.1f}" for p in SHOWN_PIPES),
            "not checked" if matched is None else ("match" if matched else "MISMATCH"),
        ])
    widths = [max(len(str(r[i])) for r in [head, *table]) for i in range(len(head))]
    fmt = [f"{{:<{w}}}" if i in (0, len(head) - 1) else f"{{:>{w}}}" for i, w in enumerate(widths)]
    lines = ["  ".join(f.format(c) for f, c in zip(fmt, r, strict=True)).rstrip() for r in [head, *table]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("speedup: the first variant's cycles / each variant's; busy %: of the cores that have the "
                 "pipe and ran a task; numerics: every output within tolerance of every reference")
    return "\n".join(lines)
