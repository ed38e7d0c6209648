"""The GEMM rows of the fidelity table: `matmul` against pto-isa's published gemm_performance figures.

    python docs/tools/gemm_table.py [--preset 910b2] [--set KEY=VALUE ...] [--sizes 1536,6144]

Published: pto-isa kernels/manual/a2a3/gemm_performance/README.md, "Measured Performance
(Reference)", fp16 inputs, fp32 output, 24 cube cores (Ascend A3): time, and the share of the run
each pipe was busy (TMATMUL = cube, TLOAD = MTE2). Simulated: `npusim run matmul --m N --n N --k N
--dtype fp16 --no-numerics` on the preset, timing only (cycles do not depend on the data); busy
shares as `npusim run` prints them (busy cycles over the run's cycles on every core that ran a task).
6144^3 is about a million instructions: a minute or two.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without install

from isa import DType, Pipe  # noqa: E402
from npusim import HardwareConfig, load_preset, simulate  # noqa: E402
from npusim.config import parse_override  # noqa: E402
from programs import matmul  # noqa: E402


class Published(NamedTuple):
    """One row of the README's table (m = n = k)."""

    us: float
    cube_percent: float  # TMATMUL (Cube) Ratio
    mte2_percent: float  # TLOAD Ratio


PUBLISHED = {  # pto-isa gemm_performance README, "Measured Performance (Reference)"
    1536: Published(38.8, 54.5, 72.2),
    3072: Published(206.7, 79.0, 90.9),
    6144: Published(1506.0, 86.7, 95.2),
    7680: Published(3168.0, 80.6, 98.4),
}
CORES = 24  # "collected on Ascend A3 (24 cores)"


def row(size: int, config: HardwareConfig) -> str:
    """One Markdown table row: size, time and busy shares, published vs simulated."""
    program = matmul.build(size, size, size, CORES, DType.FP16, config)
    result = simulate(program, config, numerics=False)
    us = result.seconds * 1e6
    util = result.utilization()
    want = PUBLISHED[size]
    return (f"| {size}^3 | {want.us:.1f} | {us:.1f} | {us / want.us:.2f} | {want.cube_percent:.1f} | "
            f"{100 * util[Pipe.M]:.1f} | {want.mte2_percent:.1f} | {100 * util[Pipe.MTE2]:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="910b2")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--sizes", default="1536,6144",
                        help=f"m = n = k values, comma-separated, of: {', '.join(map(str, PUBLISHED))}")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    unknown = [s for s in sizes if s not in PUBLISHED]
    if unknown:
        parser.error(f"no published figure for {unknown}; valid: {', '.join(map(str, PUBLISHED))}")
    config = load_preset(args.preset)
    if args.overrides:
        config = config.replace(dict(parse_override(o, config) for o in args.overrides))
    print("| size | published us | simulated us | ratio | cube busy % published | cube busy % simulated "
          "| MTE2 busy % published | MTE2 busy % simulated |")
    print("| ---: |" + " ---: |" * 7)
    for size in sizes:
        print(row(size, config), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
