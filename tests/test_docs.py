"""The docs cannot go stale: every command transcript in docs/*.md is what its command prints today.

`docs/tools/transcripts.py` reruns the command above each marked block; these tests run it in check
mode. Transcripts marked `slow` (several seconds each) run only with NPUSIM_DOCS_SLOW=1; after a
change that moves cycles, `python docs/tools/transcripts.py` rewrites every block.
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from isa import Mmad
from programs import registry

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))


def _tool(script: str):
    """A script of docs/tools/, loaded as a module (the scripts are not a package)."""
    name = f"npusim_docs_{script.removesuffix('.py')}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "tools" / script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


transcripts = _tool("transcripts.py")
WITH_TRANSCRIPTS = [p for p in DOCS if transcripts.find(p)]


def test_the_docs_with_transcripts_are_found():
    assert {p.name for p in WITH_TRANSCRIPTS} >= {"isa.md", "user_guide.md", "paged_attention.md", "model.md"}


@pytest.mark.parametrize("path", WITH_TRANSCRIPTS, ids=lambda p: p.name)
def test_transcripts_match_their_commands(path):
    stale = transcripts.update(path, quick=True, write=False)
    assert not stale, "stale transcripts; run python docs/tools/transcripts.py\n" + "\n".join(stale)


@pytest.mark.skipif(not os.environ.get("NPUSIM_DOCS_SLOW"), reason="slow transcripts: set NPUSIM_DOCS_SLOW=1")
@pytest.mark.parametrize("path", WITH_TRANSCRIPTS, ids=lambda p: p.name)
def test_slow_transcripts_match_their_commands(path):
    stale = transcripts.update(path, quick=False, write=False)
    assert not stale, "stale transcripts; run python docs/tools/transcripts.py\n" + "\n".join(stale)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_transcript_has_a_marker(path):
    """A block showing `$ npusim ...` or an `npusim: error:` line is generated, never typed by hand."""
    assert transcripts.unmarked(path) == []


def test_the_example_listing_is_the_file(path=ROOT / "docs" / "isa.md"):
    """docs/isa.md §5 numbers the lines of programs/tile_matmul.s; they must be the file's lines."""
    text = path.read_text(encoding="utf-8").split("## 5. Example: `programs/tile_matmul.s`", 1)[1]
    block = text.split("```\n", 2)[1].splitlines()
    source = (ROOT / "programs" / "tile_matmul.s").read_text(encoding="utf-8").splitlines()
    assert block == [f"{n:>2}  {line}".rstrip() for n, line in enumerate(source, start=1)]


def test_the_sync_example_is_the_file(path=ROOT / "docs" / "isa.md"):
    """docs/isa.md §3.14's example kernel is programs/kv_head.s, which docs/sanitizer.md edits."""
    text = path.read_text(encoding="utf-8").split("# One KV head of one cache block", 1)[1]
    block = "# One KV head of one cache block" + text.split("```", 1)[0]
    assert block == (ROOT / "programs" / "kv_head.s").read_text(encoding="utf-8")


def test_the_vector_scale_listing_is_the_builders(path=ROOT / "programs" / "vector_scale.s"):
    """programs/vector_scale.s, which docs/sanitizer.md edits, is what the builder makes."""
    from isa.asm import load_program
    from programs import vector_scale
    assert load_program(path) == vector_scale.build(64, 256, tasks=1, alpha=0.125, tile_rows=16)


def test_the_tile_matmul_table_fails_when_a_formula_and_the_run_disagree(monkeypatch, capsys):
    """docs/tools/tile_matmul_table.py, whose output is model.md §3.1, exits 1 naming the mismatch."""
    table = _tool("tile_matmul_table.py")
    assert table.main([]) == 0
    real = table.worked

    def one_cycle_more_for_mmad(instr, config, program):
        w = real(instr, config, program)
        return w._replace(occupancy=w.occupancy + 1) if isinstance(instr, Mmad) else w

    monkeypatch.setattr(table, "worked", one_cycle_more_for_mmad)
    capsys.readouterr()
    assert table.main([]) == 1
    err = capsys.readouterr().err
    assert "tile_matmul_table: instruction 8 `mmad " in err
    assert "tile_matmul_table: the chain adds up to" in err and "tile_matmul_table: pipe M:" in err


# --- the tool itself ---------------------------------------------------------------------------


def _doc(tmp_path, marker, body):
    path = tmp_path / "doc.md"
    path.write_text(f"# A page\n\nText.\n\n{marker}\n```\n{body}\n```\n\nMore text.\n", encoding="utf-8")
    return path


def test_a_stale_block_is_reported_then_rewritten(tmp_path):
    path = _doc(tmp_path, "<!-- transcript: npusim programs -->", "$ npusim programs\nsomething old")
    before = path.read_text()
    (diff,) = transcripts.update(path, write=False)
    assert "-something old" in diff and path.read_text() == before  # check mode changes nothing
    transcripts.update(path)
    lines = path.read_text().splitlines()
    block = lines[lines.index("$ npusim programs") + 1: lines.index("```", lines.index("$ npusim programs"))]
    assert [line.split()[0] for line in block] == list(registry.WORKLOADS)  # one line per program
    assert lines[:4] == ["# A page", "", "Text.", ""] and lines[-2:] == ["", "More text."]
    assert transcripts.update(path, write=False) == []  # now current


def test_setup_runs_first_and_the_status_is_checked(tmp_path):
    marker = "<!-- transcript: npusim asm missing.s\nsetup: echo '.kernel k' > other.s\nstatus: 2 -->"
    path = _doc(tmp_path, marker, "")
    transcripts.update(path)
    assert "npusim: error: asm missing.s: cannot read it: No such file or directory" in path.read_text()
    path = _doc(tmp_path, "<!-- transcript: npusim asm missing.s -->", "")  # status 0 expected
    with pytest.raises(transcripts.TranscriptError, match="ended with status 2, the marker says 0"):
        transcripts.update(path, write=False)
    path = _doc(tmp_path, "<!-- transcript: sh -c 'cat other.s'\nsetup: echo '.kernel k' > other.s -->", "")
    transcripts.update(path)
    assert "$ sh -c 'cat other.s'\n.kernel k\n```" in path.read_text()


def test_a_marker_without_a_block_is_an_error(tmp_path):
    path = tmp_path / "doc.md"
    path.write_text("<!-- transcript: npusim programs -->\n\nno block here\n")
    with pytest.raises(transcripts.TranscriptError, match="must be followed at once by a fenced block"):
        transcripts.find(path)
    path.write_text("<!-- transcript: npusim programs\ncolour: red -->\n```\n```\n")
    with pytest.raises(transcripts.TranscriptError, match="unknown marker line 'colour: red'"):
        transcripts.find(path)
