"""Regenerate the example pictures of the roofline, the busy heatmap and compare's timelines.

    python docs/tools/plot_images.py

Writes docs/images/roofline_1block_2block.png, heatmap_2block.png and compare_timelines.png. The
case is the user guide's (as docs/tools/make_images.py): paged attention, batch 8, context 2048,
preset 910b2, timing only (the pictures do not depend on the data), at a low resolution to keep the
repository small.
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
PROGRAM = "paged-attention"


def main() -> int:
    config = load_preset("910b2")
    case = pa.make_case(pa.Shape(batch=8, num_heads=16, num_kv_heads=1, head_dim=128, block_size=128), 2048)
    runs = [(v, simulate(pa.build(case, v), config, numerics=False)) for v in pa.VARIANTS]
    IMAGES.mkdir(exist_ok=True)
    program = f"{PROGRAM} (batch 8, context 2048)"
    written = {
        "roofline_1block_2block.png": roofline_figure(runs, program=program, preset=config.name),
        "heatmap_2block.png": plots.heatmap_figure(
            runs[-1][1], plot_title(program, config.name, variants=[runs[-1][0]])),
        "compare_timelines.png": plots.compare_figure(
            runs, plot_title(program, config.name, variants=[v for v, _ in runs])),
    }
    for name, figure in written.items():
        plots.save(figure, IMAGES / name, dpi=DPI)
        print(f"docs/images/{name}: {(IMAGES / name).stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
