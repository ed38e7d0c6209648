"""Regenerate the user guide's picture of the HTML report: a browser's screenshot of the page.

    python docs/tools/report_image.py [--keep PAGE.html]

Builds the guide's case (paged attention, batch 8, context 2048, preset 910b2, both variants, run
and checked against PyTorch as `npusim compare paged-attention --batch 8 --context-len 2048
--report R.html` does), writes the page to a temporary folder (or to `--keep`), and has headless
Chromium take docs/images/report.png of its top: the header, the side-by-side table and the
figures, reduced to a palette of colours (with Pillow, which matplotlib needs) to stay small. Only
the picture is kept in the repository: `npusim` writes the page on demand. Without Chromium
(Debian's `chromium` package) it says so and skips, leaving the picture as it is.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without install

from PIL import Image  # noqa: E402  (matplotlib's own dependency)

from npusim import load_preset  # noqa: E402
from npusim.cli import runner  # noqa: E402
from npusim.html_report import write_report  # noqa: E402
from programs import registry  # noqa: E402

PROGRAM, PRESET = "paged-attention", "910b2"
CASE = {"batch": 8, "context_len": 2048}

IMAGE = Path(__file__).resolve().parents[1] / "images" / "report.png"
# CSS pixels: a laptop's page width, and down to just below the roofline's caption (the page's top:
# header, side by side, figures); move it if the top of the page changes.
WINDOW = (1280, 2640)
COLOURS = 256  # the picture is quantized to a palette: less than half the bytes, no visible change
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str | None:
    """The first headless-capable Chromium on PATH, or None."""
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def write_page(path: Path) -> None:
    """The guide's compare case, run and checked as `npusim compare` runs it, as a report page at `path`."""
    config = load_preset(PRESET)
    workload = registry.get(PROGRAM)
    shared: dict[Any, Any] = {}
    runs, checks = [], {}
    for variant in workload.variants:
        instance = workload.instance(CASE | {"variant": variant}, config.chip.cube_cores, config, shared)
        job = runner.Job.of(workload, instance, True, None, None)
        done = runner.execute(job, config, {}, True, f"{PROGRAM} {variant}")
        runs.append((variant, done.result))
        checks[variant] = runner.numerics(done)
    title = f"{PROGRAM} {runner.params_text(CASE)} on preset {config.name}"
    write_report(path, title, runs, preset=config.name, overrides=[], checks=checks)


def screenshot(chrome: str, page: Path, image: Path) -> None:
    """Chromium's screenshot of `page` at WINDOW's size (no sandbox: it may run as root in CI)."""
    command = [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--screenshot={image}", f"--window-size={WINDOW[0]},{WINDOW[1]}", page.resolve().as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    with Image.open(image) as shot:
        rgb = shot.convert("RGB")
    small = rgb.quantize(COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(image, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, metavar="PAGE.html", help="also keep the page here")
    args = parser.parse_args(argv)
    chrome = browser()
    if chrome is None:
        print(f"report_image: skipped, no Chromium found ({', '.join(BROWSERS)}); docs/images/{IMAGE.name} "
              "is unchanged (Debian's `chromium` package takes the picture)", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        page = args.keep or Path(tmp) / "report.html"
        write_page(page)
        screenshot(chrome, page, IMAGE)
        print(f"docs/images/{IMAGE.name}: {IMAGE.stat().st_size // 1024} KiB, the top of a "
              f"{page.stat().st_size // 1024} KiB page")
    return 0


if __name__ == "__main__":
    sys.exit(main())
