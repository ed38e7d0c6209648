"""Every ```python block in README.md and docs/ runs as written.

The rule, for whoever writes a block:
- The blocks of one markdown file run in order in one fresh namespace, like a doctest session: a
  later block may use what an earlier block of the same file imported or defined, never what
  another file did.
- They run with the repository on sys.path, in a temporary folder that looks like the repository
  root (links to its top-level entries), so `programs/tile_matmul.s` resolves and a file a block
  writes in the current folder (`out.png`, not `docs/out.png`) is thrown away.
- A block that is deliberately not runnable (a fragment, a measurement setup that needs other
  trees) has the comment `<!-- not run: WHY -->` on the line right above its fence. Use it
  sparingly: prefer a block that defines its own inputs.
- A block must take no more than a second or two; shrink its sizes rather than gate it. A block
  marked `<!-- slow -->` above its fence runs only with NPUSIM_DOCS_SLOW=1 (as the slow docs
  transcripts do; CI sets it).

A block that raises fails its file's test with its own exception, noted with the block's file and
line; the traceback's line numbers are the markdown file's own.
"""

import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs").glob("*/*.md"))]
SLOW = bool(os.environ.get("NPUSIM_DOCS_SLOW"))

_FENCE = re.compile(r"^\s*```(\w*)")
_NOT_RUN = re.compile(r"^\s*<!-- not run: (\S.*?)\s*-->\s*$")
_SLOW = re.compile(r"^\s*<!-- slow -->\s*$")


@dataclass(frozen=True)
class Block:
    """One ```python block: where its code starts (1-based line of the markdown file), its code,
    and the marker above its fence, if any ("not run" or "slow")."""

    path: Path
    line: int
    code: str
    marker: str | None

    @property
    def where(self) -> str:
        return f"{_name(self.path)}:{self.line - 1}"  # the fence's line


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of `path`, in order; a marker that is not right above one is an error."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            _no_stray_marker(path, lines, i)
            i += 1
            continue
        close = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        assert close is not None, f"{_name(path)}:{i + 1}: the block never ends"
        if opening.group(1) == "python":
            above = lines[i - 1] if i else ""
            marker = "not run" if _NOT_RUN.match(above) else "slow" if _SLOW.match(above) else None
            code = textwrap.dedent("\n".join(lines[i + 1:close]))
            blocks.append(Block(path, i + 2, code, marker))
        i = close + 1
    return blocks


def _no_stray_marker(path: Path, lines: list[str], i: int) -> None:
    if _NOT_RUN.match(lines[i]) or _SLOW.match(lines[i]):
        below = _FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        assert below and below.group(1) == "python", (
            f"{_name(path)}:{i + 1}: `{lines[i].strip()}` must be right above a ```python fence")


def run_session(blocks: list[Block], slow: bool) -> int:
    """Run `blocks` in order in one fresh namespace; the number run. A block's exception goes on,
    with a note naming the block and the markdown file's line that raised."""
    namespace = {"__name__": "__main__", "__tracebackhide__": True}  # pytest shows the note, not the page
    ran = 0
    for block in blocks:
        if block.marker == "not run" or (block.marker == "slow" and not slow):
            continue
        source = "\n" * (block.line - 1) + block.code  # line numbers of the markdown file
        try:
            exec(compile(source, str(block.path), "exec"), namespace)
        except BaseException as error:  # annotated and raised again, never swallowed
            error.add_note(f"in the ```python block at {block.where}, line {_raising_line(error, block)}")
            raise
        ran += 1
    return ran


def _raising_line(error: BaseException, block: Block) -> int:
    """The markdown file's line of the block's innermost frame in the traceback of `error`."""
    line, frame = block.line, error.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code.co_filename == str(block.path):
            line = frame.tb_lineno
        frame = frame.tb_next
    return line


@pytest.fixture
def repo_like_folder(tmp_path, monkeypatch):
    """The current folder: a temporary one linking the repository's top-level entries."""
    for entry in ROOT.iterdir():
        if not entry.name.startswith("."):
            (tmp_path / entry.name).symlink_to(entry)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    return tmp_path


WITH_CODE = [p for p in FILES if python_blocks(p)]


def test_the_files_with_python_are_found():
    assert {p.name for p in WITH_CODE} >= {"README.md", "model.md"}


@pytest.mark.parametrize("path", WITH_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_runs(path, repo_like_folder):
    run_session(python_blocks(path), SLOW)


# --- the rule itself ---------------------------------------------------------------------------


def _page(tmp_path, text):
    path = tmp_path / "page.md"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_blocks_share_one_namespace_per_file_and_keep_their_lines(tmp_path):
    page = _page(tmp_path, """\
        # A page

        ```python
        x = 2
        ```

        ```sh
        ```python inside a shell block is not code
        ```

        - in a list:

          ```python
          y = x * 21
          ```
        """)
    blocks = python_blocks(page)
    assert [(b.line, b.code, b.marker) for b in blocks] == [(4, "x = 2", None), (14, "y = x * 21", None)]
    assert run_session(blocks, slow=False) == 2


def test_a_failing_block_is_named_by_file_and_line(tmp_path):
    page = _page(tmp_path, "Text.\n\n```python\nimport math\n\nmath.sqrt(q)\n```\n")
    with pytest.raises(NameError, match="'q' is not defined") as raised:
        run_session(python_blocks(page), slow=False)
    assert raised.value.__notes__ == [f"in the ```python block at {page}:3, line 6"]  # `math.sqrt(q)`


def test_not_run_and_slow_blocks_are_skipped_and_markers_must_sit_on_a_fence(tmp_path):
    page = _page(tmp_path, """\
        <!-- not run: shows the error -->
        ```python
        raise RuntimeError
        ```
        <!-- slow -->
        ```python
        raise KeyError("slow ran")
        ```
        """)
    assert [b.marker for b in python_blocks(page)] == ["not run", "slow"]
    assert run_session(python_blocks(page), slow=False) == 0
    with pytest.raises(KeyError, match="slow ran"):
        run_session(python_blocks(page), slow=True)
    stray = _page(tmp_path, "<!-- not run: why -->\n\n```python\nx = 1\n```\n")
    with pytest.raises(AssertionError, match=r"page\.md:1: .* must be right above a ```python fence"):
        python_blocks(stray)
