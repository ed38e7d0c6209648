"""Regenerate the pictures of docs/user_guide.md (docs/images/*.png) from the simulator itself.

    python docs/tools/make_images.py

The case is the guide's: paged attention, batch 8, context 2048, default preset, timing only
(the pictures do not depend on the data). Saved at a low resolution to keep the repository small.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without install

from npusim import load_preset, plots, simulate  # noqa: E402
from programs import paged_attention as pa  # noqa: E402

IMAGES = Path(__file__).resolve().parents[1] / "images"
DPI = 60


def main() -> int:
    config = load_preset("910b2")
    case = pa.make_case(pa.Shape(batch=8, num_heads=16, num_kv_heads=1, head_dim=128, block_size=128), 2048)
    runs = [(v, simulate(pa.build(case, v), config, numerics=False)) for v in pa.VARIANTS]
    IMAGES.mkdir(exist_ok=True)
    title = "paged attention, batch 8, context 2048, 910b2"
    plots.save(plots.compare_figure(runs, title), IMAGES / "compare_1block_2block.png", dpi=DPI)
    for variant, result in runs:
        plots.save(plots.run_figure(result, core="aic0"), IMAGES / f"run_{variant}.png", dpi=DPI)
    for path in sorted(IMAGES.glob("*.png")):
        print(f"{path.relative_to(IMAGES.parent.parent)}: {path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
