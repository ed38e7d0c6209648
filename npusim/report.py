"""Text reports of a run: the timing summary and the side-by-side comparison of variants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from npusim import stats
from npusim.results import PIPE_ORDER, SHOWN_PIPES, Result
from npusim.roofline import Bounds, bounds

TOP_KINDS = 5  # instruction kinds the summary lists under "where the time goes"


def summary(result: Result) -> str:
    """Cycles, time, per-pipe busy cycles and utilisation, the busiest instruction kinds, GM traffic
    and the speed-of-light bounds of one run."""
    clock = result.config.clock_ghz
    cores = result.by_core()
    lines = [f"timing: {result.cycles} cycles = {result.seconds * 1e6:.3f} us at {clock:g} GHz "
             f"({result.instructions} instructions, {len(result.traces)} task(s) on {len(cores)} core(s))",
             "  pipe   busy cycles  busy % (of the cores that have the pipe and ran a task)"]
    if result.launch_cycles:
        lines.insert(1, f"  end to end: {result.end_to_end_seconds * 1e6:.3f} us with the kernel launch "
                        f"(chip.launch_cycles = {result.launch_cycles})")
    utilization, busy = result.utilization(), result.busy
    for pipe in PIPE_ORDER:
        if busy[pipe]:
            lines.append(f"  {pipe.value:<6} {busy[pipe]:>11}  {100 * utilization[pipe]:5.1f}%")
    lines += where_the_time_goes(result)
    mem = result.memory
    lines.append(f"  GM: {mem.hbm_read_bytes / 1e6:.3f} MB read from HBM, {mem.l2_hit_bytes / 1e6:.3f} MB "
                 f"from L2 (hit rate {100 * mem.l2_hit_rate:.0f}%), {mem.hbm_write_bytes / 1e6:.3f} MB "
                 f"written; HBM {mem.average_gbps(result.cycles):.0f} GB/s on average, "
                 f"{mem.peak_gbps:.0f} GB/s at peak")
    lines.append(roofline_line(bounds(result)))
    return "\n".join(lines)


def where_the_time_goes(result: Result, n: int = TOP_KINDS) -> list[str]:
    """The `n` instruction kinds with the most busy cycles: count, busy cycles, share of their pipe's."""
    top = stats.top_kinds(result, n)
    if not top:
        return []
    width = max(len(k.mnemonic) for k in top)
    lines = [f"  where the time goes: the {len(top)} instruction kinds with the most busy cycles",
             f"  {'kind':<{width}}  {'pipe':<5} {'count':>9} {'busy cycles':>12}  % of the pipe's busy"]
    lines += [f"  {k.mnemonic:<{width}}  {k.pipe.value:<5} {k.count:>9} {k.busy:>12}  {100 * k.share:5.1f}%"
              for k in top]
    return lines


def roofline_line(b: Bounds) -> str:
    """Speed of light: the compute and memory bounds as shares of the achieved time, and the limit."""
    return (f"  speed of light: cube compute {100 * b.compute:.1f}%, HBM {100 * b.memory:.1f}% of the "
            f"achieved {b.cycles} cycles; {b.explain()}")


@dataclass(frozen=True)
class HbmRoofline:
    """The least time any run of a workload can take: the bytes it must read, at the HBM bandwidth.

    The bytes come from the workload's options (`Workload.roofline_bytes`), not from a run, so a
    run that moves more (or re-reads) shows as a smaller share.
    """

    nbytes: float
    what: str  # what the bytes are, e.g. "K and V read once"
    gbps: float  # the preset's hbm.bandwidth_gbps

    @property
    def seconds(self) -> float:
        return self.nbytes / (self.gbps * 1e9)

    def share(self, result: Result) -> float:
        """The roofline's time over the run's: 1.0 is a run that moves only those bytes, at full rate."""
        return self.seconds / result.seconds if result.cycles else 0.0

    def line(self, result: Result) -> str:
        return (f"HBM roofline: {self.seconds * 1e6:.3f} us ({self.what} at {self.gbps:g} GB/s); "
                f"this run {result.seconds * 1e6:.3f} us = {100 * self.share(result):.1f}% of it")

    def record(self, result: Result) -> dict[str, Any]:
        """The roofline as JSON: the bytes, what they are, the bandwidth, its time and the run's share."""
        return {"bytes": self.nbytes, "what": self.what, "gbps": self.gbps,
                "microseconds": self.seconds * 1e6, "percent": 100 * self.share(result)}


def compare_table(rows: Sequence[tuple[str, Result, bool | None]],
                  roofline: HbmRoofline | None = None) -> str:
    """One row per (variant, result, numerics matched or None if not checked); the first is the baseline.

    With a `roofline`, a column gives each variant's share of it, and a line below says what it is.
    """
    base = rows[0][1].cycles
    head = ["variant", "cycles", "us", "speedup", "tasks", "instructions", "HBM MB",
            *(f"{p.value} %" for p in SHOWN_PIPES), *(["roofline %"] if roofline else []), "numerics"]
    table = []
    for variant, result, matched in rows:
        util = result.utilization()
        table.append([
            variant, f"{result.cycles:,}", f"{result.seconds * 1e6:.1f}",
            f"{base / result.cycles:.2f}x" if result.cycles else "-",
            f"{len(result.traces):,}", f"{result.instructions:,}", f"{result.memory.hbm_bytes / 1e6:.1f}",
            *(f"{100 * util[p]:.1f}" for p in SHOWN_PIPES),
            *([f"{100 * roofline.share(result):.1f}"] if roofline else []),
            "not checked" if matched is None else ("match" if matched else "MISMATCH"),
        ])
    widths = [max(len(str(r[i])) for r in [head, *table]) for i in range(len(head))]
    fmt = [f"{{:<{w}}}" if i in (0, len(head) - 1) else f"{{:>{w}}}" for i, w in enumerate(widths)]
    lines = ["  ".join(f.format(c) for f, c in zip(fmt, r, strict=True)).rstrip() for r in [head, *table]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("speedup: the first variant's cycles / each variant's; busy %: of the cores that have the "
                 "pipe and ran a task; numerics: every output within tolerance of every reference")
    if roofline:
        lines.append(f"HBM roofline: {roofline.seconds * 1e6:.3f} us ({roofline.what} at {roofline.gbps:g} "
                     f"GB/s); roofline %: that time / each variant's time")
    return "\n".join(lines)
