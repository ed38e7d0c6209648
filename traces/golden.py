"""Golden timing summaries: small runs whose cycle counts must not drift without a deliberate commit.

    python traces/golden.py            # rewrite traces/golden.json from the current simulator
    python traces/golden.py --check    # exit 1 and print the differences if anything drifted

tests/test_golden.py runs the same check. A change to the timing model, a preset or a program that
moves any figure here must regenerate the file in the same commit and say why in its message.

Every case runs on every shipped preset (`npusim.config.available_presets()`), with numerics off:
timing does not depend on the data. A run on the default preset (910b2) is stored under the case's
name, as it always was; on another preset under "PRESET/case". A pair that does not fit its preset
goes in SKIP with the reason; every pair fits today.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from isa.program import Program  # noqa: E402
from npusim import HardwareConfig, load_preset, simulate  # noqa: E402
from npusim.config import available_presets  # noqa: E402
from programs import matmul, paged_attention, tile_matmul  # noqa: E402

GOLDEN = Path(__file__).with_name("golden.json")
DEFAULT_PRESET = "910b2"  # its runs keep the bare case names

# A case builds its program for the preset it runs on, as `npusim run --preset` does: the programs
# size their tiles and offsets to the config's buffers.
Build = Callable[[HardwareConfig], Program]


def _paged(variant: str, shape: paged_attention.Shape, lens: list[int]) -> Build:
    return lambda config: paged_attention.build(paged_attention.make_case(shape, lens, seed=0), variant,
                                                config)


MHA_SMALL = paged_attention.Shape(batch=2, num_heads=16, num_kv_heads=1, head_dim=128, block_size=128)
GQA_TAIL = paged_attention.Shape(batch=3, num_heads=40, num_kv_heads=2, head_dim=64, block_size=64)

CASES: dict[str, Build] = {
    "paged_attention_1block_b2_ctx300_513": _paged("1block", MHA_SMALL, [300, 513]),
    "paged_attention_2block_b2_ctx300_513": _paged("2block", MHA_SMALL, [300, 513]),
    "paged_attention_1block_gqa_tail": _paged("1block", GQA_TAIL, [1, 129, 320]),
    "paged_attention_2block_gqa_tail": _paged("2block", GQA_TAIL, [1, 129, 320]),
    "matmul_300x260x200_4cores": lambda config: matmul.build(300, 260, 200, cores=4, config=config),
    "matmul_512x512x512_24cores": lambda config: matmul.build(512, 512, 512, cores=24, config=config),
    "tile_matmul": lambda config: tile_matmul.build(),  # one fixed tile, valid on every preset
}

# (case, preset) pairs left out, each with why: a program that does not fit a preset's buffers.
SKIP: dict[tuple[str, str], str] = {}


def run_name(case: str, preset: str) -> str:
    """The key of one run in golden.json."""
    return case if preset == DEFAULT_PRESET else f"{preset}/{case}"


def runs() -> dict[str, tuple[str, str]]:
    """Every golden run, by its key: (case, preset) for every case on every shipped preset but SKIP."""
    return {run_name(case, preset): (case, preset) for preset in available_presets() for case in CASES
            if (case, preset) not in SKIP}


def summarize(case: str, preset: str = DEFAULT_PRESET) -> dict[str, Any]:
    """Total cycles, per-pipe busy cycles, task and instruction counts, HBM bytes of one run."""
    config = load_preset(preset)
    result = simulate(CASES[case](config), config, numerics=False)
    return {
        "cycles": result.cycles,
        "busy": {pipe.value: cycles for pipe, cycles in result.busy.items() if cycles},
        "tasks": len(result.traces),
        "instructions": result.instructions,
        "hbm_bytes": int(result.memory.hbm_bytes),
    }


def current() -> dict[str, dict[str, Any]]:
    return {name: summarize(case, preset) for name, (case, preset) in runs().items()}


def differences(golden: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Every figure that differs, as 'case: field golden -> now'."""
    out = []
    for name in sorted(set(golden) | set(now)):
        if name not in now or name not in golden:
            why = "no longer produced" if name not in now else "new case, not in golden.json"
            out.append(f"{name}: {why}")
            continue
        g, n = golden[name], now[name]
        for key in sorted(set(g) | set(n)):
            if g.get(key) != n.get(key):
                out.append(f"{name}: {key} {g.get(key)} -> {n.get(key)}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with golden.json instead of writing it")
    args = parser.parse_args()
    now = current()
    if args.check:
        diff = differences(json.loads(GOLDEN.read_text()), now)
        print("\n".join(diff) if diff else f"no drift in {len(now)} golden runs")
        return 1 if diff else 0
    GOLDEN.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({len(now)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
