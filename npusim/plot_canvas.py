"""What every figure shares: an Agg canvas, titles, one colour per variant, and the files they go to.

matplotlib is imported by the functions that need it, not at the top: the command line imports
the plotting modules, and a run without a plot option should not pay matplotlib's start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from npusim.paths import OutputPathError, output_file

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# One colour per variant, in the order the variants are given (matplotlib's tab10 cycle).
VARIANT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                  "#7f7f7f", "#bcbd22", "#17becf")
# matplotlib writes these only with a LaTeX installation, which a run cannot count on.
NEEDS_LATEX = frozenset({"pgf"})


class PlotError(OutputPathError):
    """An output path no figure can be written to, found before the run rather than after it."""


def new_figure(width: float, height: float) -> Figure:
    """An empty figure on an Agg canvas (no display, no pyplot state), laid out by constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazily: see the module docstring
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    """Write `fig` to `path` in the format its extension names (see `check_plot_path`)."""
    fig.savefig(path, dpi=dpi)


def variant_colors(names: Sequence[str]) -> dict[str, str]:
    """The colour of each variant, the same in every panel that shows it."""
    return {name: VARIANT_COLORS[k % len(VARIANT_COLORS)] for k, name in enumerate(names)}


def plot_title(program: str, preset: str, overrides: Sequence[str] = (), variants: Sequence[str] = ()) -> str:
    """`program variants on preset P with key=value, ...`: what ran, on what, changed how."""
    shown = f"{program} {', '.join(variants)}" if variants else program
    changed = f" with {', '.join(overrides)}" if overrides else ""
    return f"{shown} on preset {preset}{changed}"


def image_formats() -> list[str]:
    """The file extensions a figure can be saved as here (png, svg, pdf, ...), sorted."""
    from matplotlib.backend_bases import FigureCanvasBase  # lazily: see the module docstring

    return sorted(set(FigureCanvasBase.get_supported_filetypes()) - NEEDS_LATEX)


def check_plot_path(path: str | Path, option: str) -> Path:
    """`path` as a Path if a figure can be written there; else a PlotError naming `option`.

    The extension picks the format and must be one matplotlib writes (no extension would make
    matplotlib write to another name than the one given); the folder must exist and be writable;
    the path must not be a folder. Meant to run before the simulation, so that a bad name costs
    nothing.
    """
    path = Path(path)
    formats = image_formats()
    suffix = path.suffix.lower().removeprefix(".")
    if suffix not in formats:
        what = f"extension .{suffix} is not an image format" if suffix else "no extension names the format"
        raise PlotError(f"{option} {path}: {what}; use one of {', '.join('.' + f for f in formats)}")
    return output_file(path, option, "plot." + suffix, PlotError)
