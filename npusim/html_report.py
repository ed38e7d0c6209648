"""`--report FILE.html`: one self-contained page on one or more runs, the page a user sends a colleague.

The page holds what the command printed and what the other views would have written: the
title, preset and `--set` overrides; for several runs the side-by-side table; the figures (the
run figure, or the compare figure and each variant's heatmap, and the roofline); and per run its
text summary, its numerics, its speed-of-light bounds and the kinds and pipes tables of
`npusim.stats`. It needs no network: the style is inline, the figures are PNGs inside the page
(`npusim.html_render`). The same runs give the same bytes.

Call `check_report_path` before the run, so that a bad name costs nothing, and `write_report`
after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from npusim import plots, stats
from npusim.html_render import Column, count, element, image, page, percent, png, preformatted, table, text
from npusim.outputs import Numerics
from npusim.paths import output_file
from npusim.plot_canvas import PlotError, new_figure
from npusim.report import compare_table, summary
from npusim.results import PIPE_ORDER, Result
from npusim.roofline import BOUND_FROM, LATENCY_BOUND_BELOW, bounds
from npusim.roofline_plot import draw_roofline

SUFFIXES = (".html", ".htm")
Runs = Sequence[tuple[str, Result]]


__all__ = ["SUFFIXES", "check_report_path", "render_report", "write_report"]


def check_report_path(path: str | Path, option: str) -> Path:
    """`path` as a Path if the page can be written there; else a PlotError naming `option`.

    The name must end in .html or .htm (what a browser opens by a double click), its folder must
    exist and be writable, and the path must not be a folder. Meant to run before the simulation.
    """
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        what = f"extension {path.suffix} is not a web page" if path.suffix else "no extension"
        raise PlotError(f"{option} {path}: {what}; name an .html file, e.g. {path.with_suffix('.html')}")
    return output_file(path, option, "report.html", PlotError)


def write_report(path: str | Path, title: str, runs: Runs, *, preset: str, overrides: Sequence[str],
                 checks: Mapping[str, Numerics] | None = None) -> Path:
    """Write the page of `render_report` to `path` (checked first, as `check_report_path`); the path."""
    path = check_report_path(path, "--report")
    page_text = render_report(title, runs, preset=preset, overrides=overrides, checks=checks)
    path.write_text(page_text, encoding="utf-8", newline="\n")
    return path


def render_report(title: str, runs: Runs, *, preset: str, overrides: Sequence[str],
                  checks: Mapping[str, Numerics] | None = None) -> str:
    """The page on `runs` ((label, result) per run or variant, all on one config), as HTML text.

    `title` heads the page; `preset` and `overrides` (the `--set` text as typed) say what the
    runs ran on; `checks` maps a label to its run's `Numerics` (a run without one is
    shown as not checked).
    """
    if not runs:
        raise ValueError("a report needs at least one run")
    if len({r.config for _, r in runs}) != 1:
        raise ValueError("a report shows runs of one config; these ran on several")
    checks = checks or {}
    sections = ([("comparison", "side by side", _comparison(runs, checks))] if len(runs) > 1 else [])
    sections.append(("figures", "figures", _figures(title, runs, preset, overrides)))
    for k, (label, result) in enumerate(runs, start=1):
        ident = f"run-{k}"
        check = checks.get(label)
        ran = _run_text(label, result, None if check is None else check.text, ident)
        if len(runs) > 1:  # the table and figures above, then each run whole
            sections.append((ident, f"run {label}", ran + _run_details(label, result, ident, heatmap=True)))
        else:  # the summary first, then the figures, then where the time went
            sections.insert(0, (ident, f"run {label}: summary and numerics", ran))
            details = element("h2", "Where the time went", id=f"{ident}-time") + _run_details(
                label, result, ident, heatmap=False)
            sections.append((f"{ident}-time", "where the time went: speed of light, kinds, pipes", details))
    parts = [_header(title, runs, preset, overrides), _contents([(a, n) for a, n, _ in sections])]
    parts += [markup for _, _, markup in sections]
    return page(title, "\n".join(parts))


def _header(title: str, runs: Runs, preset: str, overrides: Sequence[str]) -> str:
    config = runs[0][1].config
    chip = config.chip
    cores = (f"{chip.cube_cores} cube + {chip.vector_cores} vector cores" if chip.vector_cores
             else f"{chip.cube_cores} cores")
    changed = ", ".join(element("code", text(o)) for o in overrides) or "none (the preset as shipped)"
    programs = dict.fromkeys(r.program.name for _, r in runs)
    rows = [("program", text(", ".join(programs))), ("preset", text(preset)), ("--set overrides", changed),
            ("runs", text(", ".join(label for label, _ in runs))),
            ("chip", text(f"{cores}, {config.clock_ghz:g} GHz, HBM {config.hbm.bandwidth_gbps:g} GB/s"))]
    meta = "".join(element("dt", name) + element("dd", value) for name, value in rows)
    return element("h1", text(title)) + "\n" + element("dl", meta, class_="meta")


def _contents(links: Sequence[tuple[str, str]]) -> str:
    """A line of links to the page's sections: (anchor, name) each."""
    items = "".join(element("li", element("a", text(name), href=f"#{target}")) for target, name in links)
    return element("nav", element("ul", items))


def _comparison(runs: Runs, checks: Mapping[str, Numerics]) -> str:
    rows = [(label, result, None if label not in checks else checks[label].matched) for label, result in runs]
    return (element("h2", "Side by side", id="comparison")
            + element("p", text(f"The first run, {runs[0][0]}, is the baseline of the speedup."),
                      class_="note")
            + preformatted(compare_table(rows)))


def _figures(title: str, runs: Runs, preset: str, overrides: Sequence[str]) -> str:
    first = runs[0][1]
    if len(runs) == 1:
        main = image(png(plots.run_figure(first, preset=preset, overrides=overrides)), "run figure",
                     "Pipe utilisation per core; each core's busy share over time; the busiest core's pipes "
                     "over time; HBM bandwidth over time.")
    else:
        main = image(png(plots.compare_figure(runs, title)), "compare figure",
                     "Time and speedup; busy share per pipe; HBM bandwidth and each pipe's busy share over "
                     "time, one colour per run throughout.")
    roof_figure = new_figure(10, 6.5)
    draw_roofline(roof_figure.subplots(), runs, f"Roofline: {title}")
    roof = image(png(roof_figure), "roofline",
                 "Each run's cube throughput against its arithmetic intensity, under the preset's HBM and "
                 "cube ceilings (log axes).")
    return element("h2", "Figures", id="figures") + main + roof


def _run_text(label: str, result: Result, check: str | None, ident: str) -> str:
    """A run's heading, its text summary and its numerics, as the command printed them."""
    return "\n".join([element("h2", text(f"Run {label}"), id=ident),
                      element("h3", "Summary"), preformatted(summary(result)),
                      element("h3", "Numerics"), preformatted(check or "numerics: not checked for this run")])


def _run_details(label: str, result: Result, ident: str, heatmap: bool) -> str:
    """Where a run's time went: its heatmap if asked (the run figure has one), its bounds and tables."""
    parts = []
    if heatmap:
        ran = f"{label}: {result.cycles:,} cycles = {result.seconds * 1e6:.1f} us"
        parts.append(image(png(plots.heatmap_figure(result, ran)), f"heatmap of {label}",
                           "Each core's busy share over time (mean over its pipes)."))
    parts += [_speed_of_light(result, ident), _kinds(result, ident), _pipes(result, ident)]
    return "\n".join(parts)


def _speed_of_light(result: Result, ident: str) -> str:
    b = bounds(result)
    rows = [("cube compute", b.compute_cycles, "the mmads' work at the cube's peak rate, over the cube cores "
             "that ran"),
            ("HBM bandwidth", b.memory_cycles,
             f"{result.memory.hbm_bytes / 1e6:.3f} MB over the HBM bandwidth")]
    rows += [(f"pipe {p.value}", b.pipe_cycles[p], "its busy cycles, over the cores that have it")
             for p in PIPE_ORDER if p in b.pipe_cycles]
    cells = [(name, count(cycles), percent(b.fraction(cycles)), why) for name, cycles, why in rows]
    columns = [Column("resource", False), Column("least cycles"), Column("% of the run"),
               Column("from", False)]
    explain = (f"Each bound is the least time one resource alone would need for this run's work; as a share "
               f"of the achieved {b.cycles:,} cycles, one at {100 * BOUND_FROM:.0f}% or more is what bounds "
               f"the run, and when none reaches {100 * LATENCY_BOUND_BELOW:.0f}% the time goes to latency "
               "and dependencies (dispatch, DMA latency, flag hand-offs).")
    verdict = b.explain()
    return (element("h3", "Speed of light")
            + element("p", text(verdict[0].upper() + verdict[1:] + "."), class_="bound")
            + element("p", text(explain), class_="note")
            + table(columns, cells, "lower bounds on the run's cycles, one per resource", f"{ident}-bounds"))


KIND_COLUMNS = (Column("kind", False), Column("pipe", False), Column("count"), Column("busy cycles"),
                Column("mean cycles"), Column("% of the pipe's busy"), Column("bytes"), Column("flops"))
PIPE_SUMS = (Column("pipe", False), Column("cores"), Column("busy"), Column("busy %"), Column("flag wait"),
             Column("barrier wait"), Column("queue stall"), Column("idle"))
PIPE_ROWS = (Column("core", False), Column("pipe", False), Column("busy"), Column("flag wait"),
             Column("barrier wait"), Column("queue stall"), Column("idle"))
STATES = ("busy", "flag_wait", "barrier_wait", "queue_stall", "idle")  # stats.PipeTime's, as shown


def _kinds(result: Result, ident: str) -> str:
    """The kinds table; the kinds that never hold their pipe (flags, barriers) folded under it."""
    rows: dict[bool, list[tuple[str, ...]]] = {True: [], False: []}
    for k in stats.kinds(result):
        rows[k.busy > 0].append((k.mnemonic, k.pipe.value, count(k.count), count(k.busy), f"{k.mean:,.1f}",
                                 percent(k.share), count(k.bytes), count(k.flops)))
    caption = "every instruction kind that kept a pipe busy, most busy cycles first (kinds.csv of --stats)"
    idle = element("details", element("summary", text(f"kinds with no busy cycles ({len(rows[False])}): "
                                                      "flags and barriers, whose time is waiting"))
                   + table(KIND_COLUMNS, rows[False], "the rest of kinds.csv", f"{ident}-kinds-sync"))
    return (element("h3", "Instruction kinds") + table(KIND_COLUMNS, rows[True], caption, f"{ident}-kinds")
            + (idle if rows[False] else ""))


def _pipes(result: Result, ident: str) -> str:
    """The pipes table summed per pipe, and folded under it the table itself, per core and pipe."""
    per_core = stats.pipes(result)
    sums = []
    for pipe in PIPE_ORDER:
        mine = [r for r in per_core if r.pipe is pipe]
        if mine:
            busy, *waits = (sum(getattr(r, state) for r in mine) for state in STATES)
            sums.append((pipe.value, count(len(mine)), count(busy),
                         percent(busy / (len(mine) * result.cycles) if result.cycles else 0.0),
                         *(count(s) for s in waits)))
    rows = [(r.core, r.pipe.value, *(count(getattr(r, state)) for state in STATES)) for r in per_core]
    note = (f"Each core's {result.cycles:,} cycles, per pipe, split into busy, waiting on a flag or a "
            "barrier, stalled on a full queue and idle (pipes.csv of --stats); S is the scalar front-end.")
    every = element("details", element("summary", text(f"every core ({len(rows)} rows)"))
                    + table(PIPE_ROWS, rows, "per core and pipe, in cycles", f"{ident}-pipes-per-core"))
    return (element("h3", "Pipes") + element("p", text(note), class_="note")
            + table(PIPE_SUMS, sums, "per pipe, cycles summed over the cores that have it", f"{ident}-pipes")
            + every)
