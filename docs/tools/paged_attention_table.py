"""The 1-block vs 2-block table of docs/paged_attention.md: batch x context on one preset.

    python docs/tools/paged_attention_table.py [--preset 910b2] [--set KEY=VALUE ...]

Timing only (numerics off): cycles do not depend on the data. Prints a Markdown table and, per
configuration, the counts that explain the difference (tasks dispatched, q loads, sync
instructions, HBM bytes, pipe busy time) and the run's share of its HBM roofline (K and V read
once at the preset's HBM bandwidth, as `npusim run` prints it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without install

from isa import Load, SetFlag, WaitFlag  # noqa: E402
from npusim import load_preset, simulate  # noqa: E402
from npusim.config import parse_override  # noqa: E402
from npusim.results import SHOWN_PIPES  # noqa: E402
from programs import paged_attention as pa  # noqa: E402

BATCHES = (1, 8, 64)
CONTEXTS = (512, 2048, 8192)


def counts(program) -> tuple[int, int]:
    """(q loads, set_flag + wait_flag instructions) over every kernel."""
    q = sync = 0
    for kernel in program.kernels:
        for instr in kernel.instructions:
            q += isinstance(instr, Load) and instr.src.tensor == "query"
            sync += isinstance(instr, SetFlag | WaitFlag)
    return q, sync


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="910b2")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    config = load_preset(args.preset)
    if args.overrides:
        config = config.replace(dict(parse_override(o, config) for o in args.overrides))
    pipes = " | ".join(f"{p.value} %" for p in SHOWN_PIPES)
    print("| batch | context | variant | cycles | us | speedup | roofline % | tasks | instructions | q loads "
          f"| sync instr | HBM MB | HBM GB/s | {pipes} |")
    print("|" + " ---: |" * (13 + len(SHOWN_PIPES)))
    for batch in BATCHES:
        for context in CONTEXTS:
            shape = pa.Shape(batch=batch, num_heads=16, num_kv_heads=1, head_dim=128, block_size=128)
            case = pa.make_case(shape, context, seed=0)
            roofline = pa.kv_bytes(shape, context) / (config.hbm.bandwidth_gbps * 1e9)  # seconds
            base = None
            for variant in pa.VARIANTS:
                program = pa.build(case, variant, config)
                result = simulate(program, config, numerics=False)
                base = base or result.cycles
                q, sync = counts(program)
                util = result.utilization()
                busy = " | ".join(f"{100 * util[p]:.1f}" for p in SHOWN_PIPES)
                print(f"| {batch} | {context} | {variant} | {result.cycles:,} | {result.seconds * 1e6:.1f} | "
                      f"{base / result.cycles:.2f}x | {100 * roofline / result.seconds:.1f} | "
                      f"{len(program.tasks):,} | {result.instructions:,} | "
                      f"{q:,} | {sync:,} | {result.memory.hbm_bytes / 1e6:.1f} | "
                      f"{result.memory.average_gbps(result.cycles):.0f} | {busy} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
