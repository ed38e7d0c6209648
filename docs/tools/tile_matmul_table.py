"""The worked example of docs/model.md §3.1: tile_matmul timed by a run and by the cost formulas.

    python docs/tools/tile_matmul_table.py [--preset 910b2] [--set KEY=VALUE ...]

Runs `programs/tile_matmul.s` alone on the preset (timing only: cycles do not depend on the data)
and prints one row per instruction: its cycles in the run (issue, start, busy_end, end) beside its
occupancy and latency worked out from the preset's numbers by the formulas of docs/model.md §3.
The kernel is one dependent chain, so its cycles are the sum along it; the last lines give that
sum on the preset and on every other shipped preset (`--set` applies to each). It exits 1 when a
formula and the run disagree, so the doc's transcript of this script fails instead of going stale.

The formulas are restated here, not taken from `npusim.costs`: the point is a second derivation to
hold the run against, as tests/tile_matmul_by_hand.py is. They cover the instructions tile_matmul
uses and say so when it uses another.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without install

from isa import (  # noqa: E402
    DType,
    Fixpipe,
    GmRegion,
    Instruction,
    Load,
    Mmad,
    Move,
    Pipe,
    Program,
    SetFlag,
    Space,
    Tile,
    WaitFlag,
)
from npusim import HardwareConfig, load_preset, simulate  # noqa: E402
from npusim.config import available_presets, parse_override  # noqa: E402
from programs import tile_matmul  # noqa: E402


class Worked(NamedTuple):
    """One work instruction's costs by the formulas, and how they were worked out."""

    occupancy: int
    latency: int  # after busy_end (model.md's `end - busy_end`)
    how: str


def _ceil_div(num: int, rate: float) -> tuple[int, str]:
    """max(1, ceil(num / rate)) and its working: `4096 / 256 = 16` or `ceil(4096 / 160) = 26`."""
    value = max(1, math.ceil(num / rate - 1e-9))
    exact = num / rate == value
    return value, f"{'' if exact else 'ceil('}{num} / {rate:g}{'' if exact else ')'} = {value}"


def _gm_bytes(region: GmRegion, program: Program, what: str) -> int:
    """The bytes of a GM region that moves without burst padding or per-row cost (model.md §3)."""
    cols = next(t for t in program.tensors if t.name == region.tensor).shape[-1]
    if region.rows > 1 and (region.row_step != 1 or region.cols != cols):
        raise SystemExit(f"tile_matmul_table: {what} names strided or partial rows of {region.tensor}; "
                         "the formulas here cover contiguous regions only")
    return region.nbytes


def worked(instr: Instruction, c: HardwareConfig, program: Program) -> Worked:
    """Occupancy and latency of a work instruction of tile_matmul, from the preset's numbers."""
    if isinstance(instr, Load):  # a first touch: an L2 miss, so the DMA engine's latency
        nbytes = _gm_bytes(instr.src, program, "a load")
        to_l1 = instr.dst.space is Space.L1
        rate = c.mte2.gm_to_l1_bytes_per_cycle if to_l1 else c.mte2.gm_to_ub_bytes_per_cycle
        occ, how = _ceil_div(nbytes, rate)
        return Worked(occ, c.mte2.latency_cycles, how)
    if isinstance(instr, Move):
        rate = (c.mte1.l1_to_l0a_bytes_per_cycle if instr.dst.space is Space.L0A
                else c.mte1.l1_to_l0b_bytes_per_cycle)
        occ, how = _ceil_div(instr.dst.nbytes, rate)
        return Worked(occ, c.mte1.latency_cycles, how)
    if isinstance(instr, Mmad):
        (m, k), n = instr.a.shape, instr.b.shape[1]
        cube = c.cube
        k0 = max(1, cube.k0_bytes // instr.a.dtype.itemsize)
        step = cube.fp32_step_cycles if instr.a.dtype is DType.FP32 else 1
        steps = (math.ceil(m / cube.m0), math.ceil(k / k0), math.ceil(n / cube.n0))
        occ = cube.startup_cycles + step * math.prod(steps)
        factors = "·".join(map(str, ((step,) if step != 1 else ()) + steps))
        return Worked(occ, cube.latency_cycles, f"{cube.startup_cycles} + {factors} = {occ}")
    if isinstance(instr, Fixpipe) and isinstance(instr.dst, GmRegion):  # a write: the engine's latency
        nbytes = _gm_bytes(instr.dst, program, "the fixpipe")
        occ, how = _ceil_div(nbytes, c.fixpipe.l0c_to_gm_bytes_per_cycle)
        return Worked(occ, c.fixpipe.latency_cycles, how)
    raise SystemExit(f"tile_matmul_table: no formula here for `{instr}`; add one beside the others")


def _label(instr: Instruction, held: dict[Tile, str]) -> str:
    """A short name for the table: what moves where, and how many bytes."""
    if isinstance(instr, Load):
        held[instr.dst] = instr.src.tensor
        return f"load {instr.src.tensor}, {instr.src.nbytes} B"
    if isinstance(instr, Move):
        name = held.get(instr.src, instr.src.space.value)
        return f"move {name} → {instr.dst.space.value}, {instr.dst.nbytes} B"
    if isinstance(instr, Mmad):
        (m, k), n = instr.a.shape, instr.b.shape[1]
        return f"mmad {m}×{k}×{n} {instr.a.dtype.value}"
    if isinstance(instr, Fixpipe) and isinstance(instr.dst, GmRegion):
        return f"fixpipe → GM {instr.dst.tensor}, {instr.dst.nbytes} B"
    return " ".join(str(instr).split())


class Chain(NamedTuple):
    """The cycles of a one-chain kernel as the formulas add them up, and the lines that show it."""

    cycles: int
    rows: list[str]
    total: str
    problems: list[str]


def chain(config: HardwareConfig) -> Chain:
    """Run tile_matmul on `config` and work every instruction and the chain's sum by the formulas."""
    program = tile_matmul.build()
    result = simulate(program, config, numerics=False)
    trace = result.traces[0]
    kernel = trace.kernel.instructions
    rows: list[str] = []
    problems: list[str] = []
    held: dict[Tile, str] = {}  # what each load left in L1, to name the moves
    stages: list[list[Worked]] = [[]]  # the work between two flag hand-offs
    latest: dict[Pipe, int] = {}  # per pipe, the latest completion so far
    flags = 0
    sets: dict[tuple[Pipe, Pipe, int], tuple[int, int]] = {}  # per flag key: the last set, its fire cycle
    for i, instr in enumerate(kernel):
        start, busy_end, end = int(trace.start[i]), int(trace.busy_end[i]), int(trace.end[i])
        if isinstance(instr, SetFlag):
            done, flag = latest.get(instr.src, start), config.sync.flag_cycles
            how, want, got = f"fires max({start}, {done}) + {flag}", max(start, done) + flag, end
            sets[instr.src, instr.dst, instr.event] = i, want
            stages.append([])
            flags += 1
        elif isinstance(instr, WaitFlag):
            by, fired = sets[instr.src, instr.dst, instr.event]  # tile_matmul sets before it waits
            how, want, got = f"released by {by}", (by, fired), (int(trace.released_by[i]), end)
        else:
            w = worked(instr, config, program)
            stages[-1].append(w)
            how = f"{w.how}; + {w.latency}"
            want, got = (w.occupancy, w.latency), (busy_end - start, end - busy_end)
            latest[instr.pipe] = max(latest.get(instr.pipe, 0), end)
        if want != got:
            problems.append(f"instruction {i} `{' '.join(str(instr).split())}`: the formulas give {want}, "
                            f"the run {got}")
        rows.append(f"{i:>2}  {instr.pipe.value:<4}  {_label(instr, held):<26} {int(trace.issue[i]):>5} "
                    f"{start:>6} {busy_end:>9} {end:>5}  {how}")
    occupancies = [w.occupancy for stage in stages for w in stage]
    latencies = [stage[-1].latency for stage in stages if stage]
    first = config.chip.dispatch_cycles + config.frontend.issue_cycles
    cycles = first + sum(occupancies) + sum(latencies) + flags * config.sync.flag_cycles
    if cycles != result.cycles:
        problems.append(f"the chain adds up to {cycles} cycles, the run takes {result.cycles}")
    busy: dict[Pipe, int] = {}
    work = (x for x in kernel if not isinstance(x, SetFlag | WaitFlag))
    for instr, occ in zip(work, occupancies, strict=True):
        busy[instr.pipe] = busy.get(instr.pipe, 0) + occ
    for pipe, occ in busy.items():
        if trace.busy[pipe] != occ:
            problems.append(f"pipe {pipe.value}: the formulas give {occ} busy cycles, "
                            f"the run {trace.busy[pipe]}")
    us = cycles / config.clock_ghz / 1000
    total = (f"{config.chip.dispatch_cycles} (dispatch) + {config.frontend.issue_cycles} (issue) + "
             f"{sum(occupancies)} occupancy ({' + '.join(map(str, occupancies))})\n"
             f"  + {sum(latencies)} latency ({' + '.join(map(str, latencies))}) + "
             f"{flags * config.sync.flag_cycles} flag cycles ({flags} × {config.sync.flag_cycles}) = "
             f"{cycles} cycles = {us:.3f} us at {config.clock_ghz:g} GHz\n"
             f"  busy cycles: {', '.join(f'{p.value} {n}' for p, n in busy.items())}")
    return Chain(cycles, rows, total, problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="910b2")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    def config(name: str) -> HardwareConfig:
        c = load_preset(name)
        return c.replace(dict(parse_override(o, c) for o in args.overrides)) if args.overrides else c

    main_chain = chain(config(args.preset))
    print(f"programs/tile_matmul.s on {args.preset}, alone on one core; "
          "occupancy and latency by the formulas of §3")
    print(f" #  pipe  {'instruction':<26} issue  start  busy_end   end  occupancy; + latency")
    print("\n".join(main_chain.rows))
    print()
    print(f"{args.preset}: {main_chain.total}")
    problems = list(main_chain.problems)
    for name in available_presets():
        if name != args.preset:
            other = chain(config(name))
            print(f"{name}: {other.total}")
            problems += [f"{name}: {p}" for p in other.problems]
    for problem in problems:
        print(f"tile_matmul_table: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
