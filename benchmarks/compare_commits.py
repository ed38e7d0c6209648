"""Time one benchmark case on two commits, interleaved, and report the medians and their ratio.

On a shared machine a figure taken minutes apart from another says little; this runs the same case
on each commit in turn (A, B, A, B, ...), each run in a fresh process against the SimPy floor of the
same size, so load that comes and goes falls on both alike.

    python benchmarks/compare_commits.py ecd23a6 HEAD --case one-100k --case chip-100k --repeat 3

Each commit is checked out once into a temporary git worktree (removed at the end); the case is
built and timed by that commit's own benchmarks/engine_speed.py, so each side runs its own code.
The seed cases time the whole `npusim run paged-attention --variant V --no-numerics` process (batch
64, context 8192) of each commit, against the floor of the program's instruction count.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run inside the worktree: build the case with that commit's benchmark helpers, time it and the floor.
_ONE = r"""
import gc, json, sys, time
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/benchmarks"]
import engine_speed as es
from npusim.simulate import simulate
case = sys.argv[2]
if case.startswith("seed-"):  # the whole `npusim run` process, as a user runs it; built here only to count
    import subprocess
    from npusim.config import load_preset
    from programs import registry
    variant, config = case.removeprefix("seed-"), load_preset("910b2")
    program = registry.get("paged-attention").instance({"variant": variant}, config.chip.cube_cores,
                                                       config).program
    command = [sys.executable, "-m", "npusim.cli", "run", "paged-attention", "--variant", variant,
               "--no-numerics", "--quiet"]
    run = lambda: subprocess.run(command, check=True, capture_output=True)
elif case == "chip-100k":
    program = es.CHIP_CASES["chip 100k"]()
    run = lambda: simulate(program, numerics=False)
else:
    m, n = es.shape_for({"one-10k": 10_000, "one-100k": 100_000, "on-10k": 10_000}[case])
    program = es.build_single_core(m, n, es.K)
    values = es.inputs(m, n, es.K) if case == "on-10k" else None
    run = lambda: simulate(program, inputs=values, numerics=values is not None)
count = sum(len(k) for k in program.kernels)
gc.collect(); t0 = time.perf_counter(); es.floor_loop(count); floor = time.perf_counter() - t0
gc.collect(); t0 = time.perf_counter(); run(); took = time.perf_counter() - t0
print(json.dumps({"instructions": count, "seconds": took, "floor": floor}))
"""

CASES = ("one-10k", "one-100k", "on-10k", "chip-100k", "seed-2block", "seed-1block")


def time_once(tree: Path, case: str) -> dict[str, float]:
    # cwd: `python -m` and `-c` put the working directory first on sys.path, before PYTHONPATH.
    out = subprocess.run([sys.executable, "-c", _ONE, str(tree), case], check=True, capture_output=True,
                         text=True, cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the commit to compare against, e.g. ecd23a6")
    parser.add_argument("head", help="the commit to measure, e.g. HEAD")
    parser.add_argument("--case", action="append", choices=CASES, help="repeatable; default: all")
    parser.add_argument("--repeat", type=int, default=3, help="runs per commit and case (default 3)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        for rev in (args.base, args.head):
            tree = Path(tmp) / rev.replace("/", "_")
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
                           check=True, capture_output=True)
            trees[rev] = tree
        try:
            for case in args.case or CASES:
                runs: dict[str, list[dict[str, float]]] = {rev: [] for rev in trees}
                for _ in range(args.repeat):  # A, B, A, B, ...
                    for rev, tree in trees.items():
                        runs[rev].append(time_once(tree, case))
                report(case, runs)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                               capture_output=True)
    return 0


def report(case: str, runs: dict[str, list[dict[str, float]]]) -> None:
    line = [f"{case}:"]
    medians = {}
    for rev, rs in runs.items():
        seconds = statistics.median(r["seconds"] for r in rs)
        ratio = statistics.median(r["seconds"] / r["floor"] for r in rs)
        medians[rev] = seconds
        line.append(f"{rev} {seconds:.3f} s ({ratio:.2f}x its floor, {rs[0]['instructions']:,} instr)")
    base, head = medians.values()
    line.append(f"head / base = {head / base:.2f}")
    print("  ".join(line))


if __name__ == "__main__":
    sys.exit(main())
