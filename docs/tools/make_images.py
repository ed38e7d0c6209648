"""Regenerate the pictures of docs/user_guide.md (docs/images/*.png) from the simulator itself.

    python docs/tools/make_images.py

The case is the guide's: paged attention, batch 8, context 2048, default preset, timing only
(the pictures do not depend on the data), drawn as the command line draws them (`--plot` on run
and compare, `--roofline`). Saved at a low resolution to keep the repository small. The report's
screenshot comes from docs/tools/report_image.py (it needs Chromium).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without install

from npusim import load_preset, plots, simulate  # noqa: E402
from npusim.plot_canvas import plot_title  # noqa: E402
from npusim.roofline_plot import roofline_figure  # noqa: E402
from programs import paged_attention as pa  # noqa: E402

IMAGES = Path(__file__).resolve().parents[1] / "images"
DPI = 60
PROGRAM = "paged-attention (batch 8, context 2048)"


def main() -> int:
    config = load_preset("910b2")
    case = pa.make_case(pa.Shape(batch=8, num_heads=16, num_kv_heads=1, head_dim=128, block_size=128), 2048)
    runs = [(v, simulate(pa.build(case, v), config, numerics=False)) for v in pa.VARIANTS]
    IMAGES.mkdir(exist_ok=True)
    title = plot_title(PROGRAM, config.name, variants=[v for v, _ in runs])
    figures = {
        "compare_1block_2block.png": plots.compare_figure(runs, title),
        "roofline_1block_2block.png": roofline_figure(runs, program=PROGRAM, preset=config.name),
    }
    for variant, result in runs:
        figures[f"run_{variant}.png"] = plots.run_figure(result, core="aic0", preset=config.name)
    for name, figure in figures.items():
        plots.save(figure, IMAGES / name, dpi=DPI)
        print(f"docs/images/{name}: {(IMAGES / name).stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
