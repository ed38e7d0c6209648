"""What the sanitizer adds to a run: the seed paged-attention programs, timed with and without it.

    python benchmarks/sanitizer_cost.py [--repeat 3]

For each variant of the seed configuration (batch 64, context 8192, the 910b2 preset), numerics
off: the median time of `simulate(program)` and of `isa.sanitize.sanitize(program)` over `--repeat`
runs, taken in turn (run, sanitize, run, sanitize, ...) so that load on a shared machine falls on
both alike, and the ratio (run + sanitize) / run that `simulate(..., sanitize=True)` costs. The
issue's bar is 2x. The program is built once, outside the timings.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from isa.sanitize import sanitize  # noqa: E402
from npusim import load_preset, simulate  # noqa: E402
from programs import registry  # noqa: E402


def _timed(fn) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    config = load_preset("910b2")
    print(f"{'variant':<8} {'instructions':>12} {'run s':>7} {'sanitize s':>10} {'ratio':>6}")
    for variant in ("1block", "2block"):
        program = registry.get("paged-attention").instance({"variant": variant}, 24, config).program
        runs, checks = [], []
        for _ in range(args.repeat):
            runs.append(_timed(lambda p=program: simulate(p, config, numerics=False)))
            checks.append(_timed(lambda p=program: sanitize(p)))
        run, check = statistics.median(runs), statistics.median(checks)
        count = sum(len(t.kernel) for t in program.tasks)
        print(f"{variant:<8} {count:>12,} {run:>7.2f} {check:>10.2f} {(run + check) / run:>5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
