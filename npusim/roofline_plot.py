"""The roofline figure: each run as a point under the cube-compute and HBM-bandwidth ceilings.

x is arithmetic intensity (cube flops per HBM byte), y the achieved cube throughput; both axes are
logarithmic, so the HBM ceiling is a slope of one and meets the flat cube ceiling at the ridge
point. A run left of the ridge can at best reach the slope (memory-bound, as paged attention is);
right of it, the flat line. The ceilings are the preset's: `roofline.cube_peak_flops` and
`roofline.hbm_peak_bytes`. Only mmad flops count, the work the cube ceiling bounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from isa.types import DType
from npusim.costs import cube_k0
from npusim.plot_canvas import new_figure, plot_title, variant_colors
from npusim.results import Result
from npusim.roofline import cube_flops, cube_peak_flops, hbm_peak_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TERA = 1e12


@dataclass(frozen=True)
class Ceilings:
    """The two roofs of one config, for the inputs' dtype: flop/s and bytes per second."""

    dtype: DType
    peak_flops: float
    hbm_bytes_per_s: float

    @property
    def ridge(self) -> float:
        """The intensity (flop per byte) where the HBM slope meets the cube peak."""
        return self.peak_flops / self.hbm_bytes_per_s

    def roof(self, intensity: float) -> float:
        """The most flop/s a run of this intensity can reach."""
        return min(self.peak_flops, self.hbm_bytes_per_s * intensity)


@dataclass(frozen=True)
class Point:
    """One run on the roofline: its cube flops, HBM bytes and time."""

    name: str
    flops: int
    hbm_bytes: float
    seconds: float

    @property
    def drawable(self) -> bool:
        return self.flops > 0 and self.hbm_bytes > 0 and self.seconds > 0

    @property
    def intensity(self) -> float:
        return self.flops / self.hbm_bytes

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.seconds


def ceilings(runs: Sequence[tuple[str, Result]]) -> Ceilings:
    """The roofs of the runs' config, for the input dtype that carries most of their cube flops."""
    configs = {r.config for _, r in runs}
    if len(configs) != 1:
        raise ValueError("a roofline draws runs of one config; these ran on several")
    by_dtype: dict[DType, int] = {}
    for _, r in runs:
        for dtype, flops in cube_flops(r).items():
            by_dtype[dtype] = by_dtype.get(dtype, 0) + flops
    dtype = max(by_dtype, key=lambda d: (by_dtype[d], d.value)) if by_dtype else DType.BF16
    config = runs[0][1].config
    return Ceilings(dtype, cube_peak_flops(config, dtype), hbm_peak_bytes(config))


def points(runs: Sequence[tuple[str, Result]]) -> list[Point]:
    return [Point(name, sum(cube_flops(r).values()), r.memory.hbm_bytes, r.seconds) for name, r in runs]


def _ceiling_lines(ax, roof: Ceilings, config_note: str, lo: float, hi: float) -> None:
    ridge = roof.ridge
    ax.plot([lo, ridge], [roof.hbm_bytes_per_s * lo / TERA, roof.peak_flops / TERA], color="black",
            linewidth=2, label=f"HBM ceiling: {roof.hbm_bytes_per_s / 1e9:g} GB/s x intensity")
    ax.plot([ridge, hi], [roof.peak_flops / TERA] * 2, color="dimgrey", linewidth=2,
            label=f"cube ceiling ({roof.dtype.value}): {roof.peak_flops / TERA:.1f} TFLOP/s = {config_note}")
    ax.plot([ridge], [roof.peak_flops / TERA], marker="D", color="black", linestyle="none")
    ax.annotate(f"ridge point: {ridge:.1f} flop/B", (ridge, roof.peak_flops / TERA), xytext=(8, -16),
                textcoords="offset points", fontsize=9)


def _point(ax, point: Point, roof: Ceilings, color: str) -> None:
    share = point.flops_per_s / roof.roof(point.intensity)
    ax.scatter([point.intensity], [point.flops_per_s / TERA], s=60, color=color, zorder=3,
               label=f"{point.name}: {point.flops_per_s / TERA:.3g} TFLOP/s at {point.intensity:.3g} flop/B "
                     f"({100 * share:.0f}% of its roof)")


def draw_roofline(ax, runs: Sequence[tuple[str, Result]], title: str) -> None:
    """The ceilings of the runs' config and one point per run, on `ax`."""
    roof, pts = ceilings(runs), points(runs)
    colors = variant_colors([p.name for p in pts])
    shown = [p for p in pts if p.drawable]
    xs = [p.intensity for p in shown] + [roof.ridge]
    lo, hi = min(xs) / 10, max(xs) * 10
    config = runs[0][1].config
    cube = config.cube
    per_step = f" / {cube.fp32_step_cycles}" if roof.dtype is DType.FP32 else ""  # cycles per fp32 step
    k0 = cube_k0(config, roof.dtype)
    note = (f"{config.chip.cube_cores} cores x {cube.m0}x{cube.n0}x{k0} MAC{per_step} x 2 flop"
            f" x {config.clock_ghz:g} GHz")
    _ceiling_lines(ax, roof, note, lo, hi)
    for p in pts:
        if p.drawable:
            _point(ax, p, roof, colors[p.name])
        else:  # a legend line rather than a silent gap: log axes cannot place it
            ax.plot([], [], linestyle="none", label=f"{p.name}: not drawn ({p.flops} cube flops, "
                                                    f"{p.hbm_bytes:.0f} HBM bytes)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    low = min([p.flops_per_s / TERA for p in shown] + [roof.hbm_bytes_per_s * lo / TERA])
    ax.set_ylim(low / 3, roof.peak_flops / TERA * 3)
    ax.set_xlabel("arithmetic intensity (cube flop per HBM byte)")
    ax.set_ylabel("achieved cube throughput (TFLOP/s)")
    ax.set_title(title)
    ax.grid(which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="lower right")


def roofline_figure(runs: Sequence[tuple[str, Result]], program: str | None = None, preset: str | None = None,
                    overrides: Sequence[str] = ()) -> Figure:
    """The roofline of one run or of each compared variant, titled with what ran and how.

    `runs` are (variant or label, result) pairs on one config; the title names `program` (else the
    first run's program), the variants, `preset` (else the config's name) and the `--set`
    `overrides` as the user gave them ("key=value").
    """
    fig = new_figure(10, 6.5)
    first = runs[0][1]
    names = [name for name, _ in runs]
    what = plot_title(program or first.program.name, preset or first.config.name, overrides, names)
    draw_roofline(fig.subplots(), runs, f"Roofline: {what}")
    return fig

