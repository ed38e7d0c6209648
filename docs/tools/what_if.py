"""Regenerate, or check, the studies of docs/what-if.md by running their `npusim sweep` commands.

A study is the region between a marker that names its command and `<!-- /what-if -->`:

    <!-- what-if: npusim sweep paged-attention --batch 64 --vary variant=1block,2block ...
    columns: variant, context_len, cycles, microseconds, speedup, bound_by
    plot: images/whatif_hbm.png -->
    ```sh
    npusim sweep paged-attention --batch 64 --vary variant=1block,2block ...
    ```

    12 points, 181.5 s with 1 job (commit 6ea7ec0).

    | variant | context_len | ... |
    <!-- /what-if -->

The marker's first line is the command as the page shows it (its `--plot` file is replaced by the
marker's `plot:`, relative to docs/, and the CSV goes to a temporary folder). `columns:` are the
sweep table's columns the page shows. The region is rewritten: the command wrapped at 100
characters, how long the sweep took, and the table. Prose outside the regions is not touched.

    python docs/tools/what_if.py              # run every study, rewrite its region and its plot
    python docs/tools/what_if.py --check      # change nothing; exit 1 with a diff if a table is stale
    python docs/tools/what_if.py --fresh      # compute every point (no cache), so the times are measured
    python docs/tools/what_if.py --list       # the markers

Studies run one after another with `--jobs 1` (the page's times say so). Points come from the
sweep cache unless `--fresh`; a study whose points were not all computed keeps the time line it
had, since that line says how long computing them took (the cache key includes the simulator's
sources, so a cached point is one this code computed).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import difflib
import io
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a checkout without install
sys.path.insert(0, str(Path(__file__).resolve().parent))
from transcripts import markers, report_stale  # noqa: E402  (the marker comments both tools read)

PAGE = ROOT / "docs" / "what-if.md"
WIDTH = 100
_START = "<!-- what-if:"
_END = "<!-- /what-if -->"
_SUMMARY = re.compile(r"^(\d+) points: (\d+) computed, (\d+) from the cache.*; ([\d.]+) s on ")
_TIMING = re.compile(r"^\d+ points, .* s with ")


class StudyError(Exception):
    """A malformed marker, or a sweep that did not end with status 0."""


@dataclass(frozen=True)
class Study:
    """One marked region: its command, the columns and plot it shows, and where it is."""

    line: int  # 1-based line of the marker
    command: str
    columns: tuple[str, ...]
    plot: str  # relative to docs/
    region: tuple[int, int]  # [start, end) indices of the lines between the marker and the end marker


def find(path: Path) -> list[Study]:
    """The marked studies of a markdown file, in order; StudyError for a malformed one."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for start, command, options, last in markers(lines, _START):
        if last < 0:
            raise StudyError(f"line {start + 1}: the marker never ends (-->)")
        fields = {}
        for option in options:
            key, sep, value = option.partition(":")
            if key.strip() not in ("columns", "plot") or not sep:
                raise StudyError(f"line {start + 1}: unknown marker line {option!r}; valid: columns: A, B, "
                                 "plot: images/NAME.png")
            fields[key.strip()] = value.strip()
        if set(fields) != {"columns", "plot"}:
            raise StudyError(f"line {start + 1}: a study marker needs both columns: and plot:")
        end = next((j for j in range(last + 1, len(lines)) if lines[j].strip() == _END), None)
        if end is None:
            raise StudyError(f"line {start + 1}: the study never ends ({_END})")
        columns = tuple(c.strip() for c in fields["columns"].split(","))
        found.append(Study(start + 1, command, columns, fields["plot"], (last + 1, end)))
    return found


def wrap(command: str) -> list[str]:
    """The command as a shell block shows it: broken before an option, continued with 4 spaces."""
    words = shlex.split(command)
    parts = [words[0]]
    for word in words[1:]:
        if word.startswith("--") or not parts[-1].startswith("--") or "=" in parts[-1]:
            parts.append(word)
        else:
            parts[-1] += " " + word  # an option's value stays with it
    lines = [parts[0]]
    for part in parts[1:]:
        if len(lines[-1]) + 1 + len(part) + 2 > WIDTH:
            lines[-1] += " \\"
            lines.append("    " + part)
        else:
            lines[-1] += " " + part
    return lines


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or "unknown"


def run(study: Study, plot_dir: Path | None, fresh: bool) -> tuple[list[str], str | None]:
    """The table's lines and, if every point was computed, the time line; the plot is written too."""
    from npusim.cli import main

    argv = shlex.split(study.command)
    if argv[:2] != ["npusim", "sweep"]:
        raise StudyError(f"line {study.line}: a study's command is `npusim sweep ...`, got {study.command!r}")
    with tempfile.TemporaryDirectory(prefix="what-if-") as tmp:
        plot = (plot_dir or Path(tmp)) / Path(study.plot).name
        extra = ["--jobs", "1", "--quiet", "--out", f"{tmp}/table.csv", "--plot", str(plot)]
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            status = main([*argv[1:], *extra, *(["--no-cache"] if fresh else [])])
        if status not in (0, 1):  # 1: some points failed, which a study may show (the L0B study does)
            raise StudyError(f"line {study.line}: `{study.command}` ended with status {status}:\n"
                             + out.getvalue())
        with open(f"{tmp}/table.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    missing = [c for c in study.columns if rows and c not in rows[0]]
    if missing:
        raise StudyError(f"line {study.line}: no column {', '.join(missing)}; "
                         f"the sweep has {', '.join(rows[0])}")
    summary = next((m for m in map(_SUMMARY.match, out.getvalue().splitlines()) if m), None)
    if summary is None:
        raise StudyError(f"line {study.line}: no summary line in the sweep's output:\n{out.getvalue()}")
    points, computed, seconds = int(summary[1]), int(summary[2]), float(summary[4])
    timing = None
    if computed == points:
        timing = f"{points} points, {seconds:.0f} s with 1 job (commit {_commit()})."
    table = ["| " + " | ".join(study.columns) + " |", "| " + " | ".join("---" for _ in study.columns) + " |"]
    table += ["| " + " | ".join(row[c].replace("|", "\\|") for c in study.columns) + " |" for row in rows]
    return table, timing


def region(study: Study, table: list[str], timing: str | None, old: list[str]) -> list[str]:
    """The lines between the markers: the command, the time line (fresh or the old one), the table."""
    if timing is None:
        timing = next((line for line in old if _TIMING.match(line)), "(not timed: run with --fresh)")
    return ["```sh", *wrap(study.command), "```", "", timing, "", *table]


def update(path: Path, check: bool, fresh: bool) -> list[str]:
    """Run every study of `path`; a diff per stale region, which is rewritten unless `check`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    diffs, changes = [], []
    with tempfile.TemporaryDirectory(prefix="what-if-plots-") as scratch:
        for study in find(path):
            print(f"line {study.line}: {study.command}", file=sys.stderr)
            plots = Path(scratch) if check else path.parent / Path(study.plot).parent
            table, timing = run(study, plots, fresh)
            start, end = study.region
            old, new = lines[start:end], region(study, table, timing, lines[start:end])
            if check:  # the time line moves with the machine's load: only the rest can be stale
                old = [line for line in old if not _TIMING.match(line)]
                new = [line for line in new if not _TIMING.match(line)]
            if new != old:
                name = f"{path.name}:{study.line}"
                diffs.append("\n".join(difflib.unified_diff(old, new, name, name + " now", lineterm="")))
                changes.append((study.region, region(study, table, timing, lines[start:end])))
    if not check and changes:
        for (start, end), new in reversed(changes):  # from the end, so earlier regions keep their places
            lines[start:end] = new
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return diffs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is stale")
    parser.add_argument("--fresh", action="store_true", help="compute every point (no cache), timing them")
    parser.add_argument("--list", action="store_true", help="list the studies")
    args = parser.parse_args(argv)
    try:
        if args.list:
            for study in find(PAGE):
                print(f"docs/what-if.md:{study.line}: {study.command}")
            return 0
        stale = update(PAGE, args.check, args.fresh)
    except StudyError as err:
        print(f"what_if: docs/what-if.md: {err}", file=sys.stderr)
        return 2
    return report_stale(stale, args.check, "study table(s)", "docs/tools/what_if.py")


if __name__ == "__main__":
    sys.exit(main())
