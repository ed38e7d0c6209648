"""The HTML report (`npusim.html_report`): the page parsed as a browser would, its numbers against the Result.

The tables' sums are checked against what the engine recorded (`Result.busy`, the traces'
instruction lists, the cores' pipes), not against `npusim.stats`, which builds them; the figures
are decoded from their data: URIs and their PNG headers read.
"""

import base64
import os
import struct
from collections import Counter
from html.parser import HTMLParser

import pytest

from isa.types import Pipe
from npusim import load_preset, simulate
from npusim.html_report import check_report_path, write_report
from npusim.outputs import Numerics
from npusim.plot_canvas import PlotError
from npusim.report import summary
from npusim.results import SHOWN_PIPES
from programs import paged_attention as pa
from programs import tile_matmul

CONFIG = load_preset("910b2")
TITLE = "tile <matmul> & friends"  # markup in the title must come back as text
OVERRIDES = ["chip.dispatch_cycles=100", "hbm.bandwidth_gbps=800"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input"}  # elements without an end tag


class Page(HTMLParser):
    """What a browser would show: the tables (by id), the images, every link, the text of each tag."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.links: list[str] = []  # every src and href
        self.images: list[str] = []
        self.tables: dict[str, dict[str, list]] = {}
        self.texts: dict[str, list[str]] = {}  # tag -> the text of each such element (outermost)
        self.ids: set[str] = set()
        self._open: list[str] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._text: dict[str, list[str]] = {}
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags[tag] += 1
        self.links += [v for k, v in attrs.items() if k in ("src", "href")]
        self.ids.add(attrs.get("id"))
        if tag == "img":
            self.images.append(attrs["src"])
        if tag in VOID:
            return  # no end tag follows
        if tag == "table":
            self._table = attrs["id"]
            self.tables[self._table] = {"head": [], "rows": []}
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        self._open.append(tag)
        self._text.setdefault(tag, []).append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr":
            is_head = all(t != "tbody" for t in self._open)
            self.tables[self._table]["head" if is_head else "rows"].append(self._row)
        self._open.pop()
        self.texts.setdefault(tag, []).append(self._text[tag].pop())

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        for tag in set(self._open):
            self._text[tag][-1] += data

    def table(self, ident: str) -> tuple[list[str], list[list[str]]]:
        found = self.tables[ident]
        return found["head"][0], found["rows"]


def number(cell: str) -> float:
    return float(cell.replace(",", ""))


def column(ident_rows: tuple[list[str], list[list[str]]], name: str) -> list[str]:
    head, rows = ident_rows
    return [row[head.index(name)] for row in rows]


@pytest.fixture(scope="module")
def matmul():
    return simulate(tile_matmul.build(), CONFIG, numerics=False)


@pytest.fixture(scope="module")
def single(matmul, tmp_path_factory):
    """One run's page, written twice (the determinism test compares the two)."""
    folder = tmp_path_factory.mktemp("report")
    check = Numerics("numerics against torch: |sim - ref| < 1e-3: match", True)
    paths = [write_report(folder / name, TITLE, [("tile", matmul)], preset="910b2", overrides=OVERRIDES,
                          checks={"tile": check})
             for name in ("a.html", "b.htm")]
    return paths, Page(paths[0].read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """Both paged-attention variants on one small case, the second reported as a mismatch."""
    case = pa.make_case(pa.Shape(batch=1, num_heads=16, num_kv_heads=1, head_dim=128, block_size=128), 512)
    runs = [(v, simulate(pa.build(case, v), CONFIG, numerics=False)) for v in pa.VARIANTS]
    # the verdicts come from the check, not the text: a "mismatch" in a matching run's lines is a name
    checks = {"1block": Numerics("out_mismatch_free: within by 1e-2: match", True),
              "2block": Numerics("out: 3 of 2048 element(s) over: MISMATCH", False)}
    path = write_report(tmp_path_factory.mktemp("report") / "compare.html", "paged attention, two ways", runs,
                        preset="910b2", overrides=[], checks=checks)
    return runs, Page(path.read_text(encoding="utf-8"))


def test_title_preset_overrides_and_the_summary_are_shown_as_text(single, matmul):
    _, page = single
    assert page.texts["title"] == [TITLE] and page.texts["h1"] == [TITLE]
    assert page.tags["matmul"] == 0 and page.tags["script"] == 0  # the title's "<matmul>" stayed text
    assert "910b2" in page.texts["dd"] and ", ".join(OVERRIDES) in page.texts["dd"]
    assert page.texts["code"][:2] == OVERRIDES
    assert summary(matmul) in page.texts["pre"]
    assert page.texts["h2"] == ["Run tile", "Figures", "Where the time went"]  # the summary first
    assert "numerics against torch: |sim - ref| < 1e-3: match" in page.texts["pre"]


def test_the_kinds_table_adds_up_to_the_run(single, matmul):
    """Per pipe, the busy cycles sum to Result.busy; per mnemonic, the counts are the kernels'."""
    _, page = single
    kinds = page.table("run-1-kinds")
    sync = page.table("run-1-kinds-sync")
    assert kinds[0] == sync[0] == ["kind", "pipe", "count", "busy cycles", "mean cycles",
                                   "% of the pipe's busy", "bytes", "flops"]
    rows = kinds[1] + sync[1]
    busy = Counter()
    for pipe, cycles in zip(column((kinds[0], rows), "pipe"), column((kinds[0], rows), "busy cycles"),
                            strict=True):
        busy[pipe] += number(cycles)
    assert busy == Counter({p.value: c for p, c in matmul.busy.items() if c})
    counts = Counter()
    for kind, n in zip(column((kinds[0], rows), "kind"), column((kinds[0], rows), "count"), strict=True):
        counts[kind] += number(n)
    executed = Counter(str(i).split()[0] for t in matmul.traces for i in t.kernel.instructions)
    assert counts == executed and sum(counts.values()) == matmul.instructions == 12
    assert all(number(b) > 0 for b in column(kinds, "busy cycles"))  # the busy kinds, apart from sync
    assert all(number(b) == 0 for b in column(sync, "busy cycles"))


def test_the_pipes_tables_split_every_cycle(single, matmul):
    _, page = single
    sums = page.table("run-1-pipes")
    assert sums[0] == ["pipe", "cores", "busy", "busy %", "flag wait", "barrier wait", "queue stall", "idle"]
    cores = matmul.pipes_by_core()
    util = matmul.utilization()
    assert [r[0] for r in sums[1]] == [p.value for p in (Pipe.S, *SHOWN_PIPES)
                                       if any(p in pipes for pipes in cores.values())]
    for row in sums[1]:
        pipe = Pipe(row[0])
        n = sum(pipe in pipes for pipes in cores.values())
        assert number(row[1]) == n
        assert number(row[2]) == matmul.busy[pipe]
        assert row[3] == f"{100 * util[pipe]:.1f}"
        assert sum(number(c) for c in (row[2], *row[4:])) == n * matmul.cycles
    every = page.table("run-1-pipes-per-core")
    assert len(every[1]) == sum(len(pipes) for pipes in cores.values())
    assert all(sum(number(c) for c in row[2:]) == matmul.cycles for row in every[1])


def test_the_speed_of_light_is_explained(single, matmul):
    _, page = single
    head, rows = page.table("run-1-bounds")
    assert head[:3] == ["resource", "least cycles", "% of the run"]
    hbm = next(r for r in rows if r[0] == "HBM bandwidth")
    per_cycle = CONFIG.hbm.bandwidth_gbps / CONFIG.clock_ghz
    assert number(hbm[1]) == round(matmul.memory.hbm_bytes / per_cycle)
    assert any(t.startswith(("Latency-bound", "Bound by", "Closest limit")) for t in page.texts["p"])


def png_size(uri: str) -> tuple[int, int]:
    """The width and height a data: URI's PNG declares in its IHDR chunk (after checking the signature)."""
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    data = base64.b64decode(uri[len(prefix):], validate=True)
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_figures_are_embedded_pngs_and_nothing_is_fetched(single, compared):
    for page, figures in ((single[1], 2), (compared[1], 4)):  # run + roofline; compare + roofline + heatmaps
        assert len(page.images) == figures
        for uri in page.images:
            width, height = png_size(uri)
            assert 600 <= width <= 1500 and 400 <= height <= 1700
        assert page.tags["script"] == page.tags["link"] == page.tags["iframe"] == 0
        assert all(link.startswith(("data:image/png;base64,", "#")) for link in page.links)
        assert all(link[1:] in page.ids for link in page.links if link.startswith("#"))


def test_two_runs_are_shown_side_by_side(compared):
    runs, page = compared
    assert "comparison" in page.ids and "Side by side" in page.texts["h2"]
    table = next(t for t in page.texts["pre"] if t.startswith("variant"))
    lines = table.splitlines()
    for (label, result), verdict, line in zip(runs, ("match", "MISMATCH"), lines[2:4], strict=True):
        assert line.split()[0] == label and f"{result.cycles:,}" in line.split()
        assert line.split()[-1] == verdict
    assert [t for t in page.texts["h2"] if t.startswith("Run ")] == ["Run 1block", "Run 2block"]
    for k, (_, result) in enumerate(runs, start=1):
        busy = Counter()
        kinds = page.table(f"run-{k}-kinds")
        for pipe, cycles in zip(column(kinds, "pipe"), column(kinds, "busy cycles"), strict=True):
            busy[pipe] += number(cycles)
        assert busy == Counter({p.value: c for p, c in result.busy.items() if c})


def test_the_same_runs_give_the_same_bytes(single):
    (a, b), _ = single
    assert a.read_bytes() == b.read_bytes()


def test_check_report_path_accepts_a_page_in_a_writable_folder(tmp_path):
    assert check_report_path(str(tmp_path / "r.html"), "--report") == tmp_path / "r.html"
    assert check_report_path(tmp_path / "R.HTM", "--report") == tmp_path / "R.HTM"


@pytest.mark.parametrize(("name", "says"), [
    ("r.png", "extension .png is not a web page; name an .html file"),
    ("report", "no extension; name an .html file, e.g."),
    ("missing/r.html", "does not exist"),
    ("folder.html", "is a folder; name a file"),
])
def test_check_report_path_refuses_what_cannot_become_a_page(tmp_path, name, says):
    (tmp_path / "folder.html").mkdir()
    with pytest.raises(PlotError, match=r"^--report .*" + says.replace(".", r"\.")):
        check_report_path(tmp_path / name, "--report")


def test_check_report_path_refuses_a_folder_it_cannot_write_in(tmp_path, monkeypatch):
    """Permission as the system answers it (faked: the tests may run as root, who may write anywhere)."""
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(PlotError, match=r"^--report .*r\.html: cannot write there \(permission denied\)"):
        check_report_path(tmp_path / "r.html", "--report")


def test_write_report_refuses_a_bad_path_before_drawing(matmul, tmp_path):
    with pytest.raises(PlotError, match="--report"):
        write_report(tmp_path / "r.txt", "t", [("tile", matmul)], preset="910b2", overrides=[])
    assert not (tmp_path / "r.txt").exists()
