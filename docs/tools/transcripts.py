"""Regenerate, or check, every command transcript in docs/*.md by running its command.

A transcript is the fenced block right below a marker that names its command:

    <!-- transcript: npusim asm bad.s
    setup: sed '9s/ bf16$//' programs/tile_matmul.s > bad.s
    status: 2 -->
    ```
    $ npusim asm bad.s
    npusim: error: bad.s:9:58: expected the tensor's dtype ...
    ```

The marker's first line is the command, as typed at the repository root. Optional lines after it:
`setup:` a shell command run first and not shown (it makes files the command needs); `status:` the
exit status the command must end with (default 0: a transcript never hides a failure); `slow` for
a command that takes more than a few seconds, which `--quick` skips (the tests run `--quick`).

    python docs/tools/transcripts.py                    # rewrite every block from its command
    python docs/tools/transcripts.py --check            # exit 1 with a diff if any block is stale
    python docs/tools/transcripts.py --check --quick docs/isa.md
    python docs/tools/transcripts.py --list             # the markers, and blocks that look unmarked

Each command runs in a fresh temporary folder holding links to the repository's top-level entries
(so `programs/tile_matmul.s` resolves and the files a command writes are thrown away), with
COLUMNS=100 and NO_COLOR=1. An `npusim` command runs in this process through `npusim.cli.main`,
its stdout and stderr interleaved as a terminal shows them; any other command runs in a shell.
Trailing spaces are dropped from every line.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a checkout without install

DOCS = ROOT / "docs"
ENV = {"COLUMNS": "100", "NO_COLOR": "1"}
_MARKER = "<!-- transcript:"
_SHELL = re.compile(r"[|&;<>()$`]")  # a command with these needs a shell


class TranscriptError(Exception):
    """A malformed marker, or a command that ended with another status than its marker says."""


@dataclass(frozen=True)
class Transcript:
    """One marked block: where it is, what to run, and the lines between its fences."""

    path: Path
    line: int  # 1-based line of the marker
    command: str
    setup: str | None
    status: int
    slow: bool
    body: tuple[int, int]  # [start, end) indices of the block's lines inside the fences

    @property
    def where(self) -> str:
        return f"{_name(self.path)}:{self.line}"


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def markers(lines: list[str], prefix: str) -> Iterator[tuple[int, str, list[str], int]]:
    """Each marker comment opening with `prefix`, in order: (its first line's index, its command,
    its other non-empty lines, its last line's index). A marker that never ends (no `-->`) is
    yielded with last index -1. Shared by docs/tools/what_if.py."""
    i = 0
    while i < len(lines):
        if not lines[i].startswith(prefix):
            i += 1
            continue
        start, text = i, lines[i][len(prefix):]
        while "-->" not in lines[i]:
            i += 1
            if i == len(lines):
                yield start, "", [], -1
                return
            text += "\n" + lines[i]
        command, *options = [t.strip() for t in text[: text.index("-->")].strip().splitlines()]
        yield start, command, [o for o in options if o], i
        i += 1


def find(path: Path) -> list[Transcript]:
    """The marked transcripts of one markdown file, in order; TranscriptError for a malformed one."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for start, command, options, last in markers(lines, _MARKER):
        if last < 0:
            raise TranscriptError(f"{_name(path)}:{start + 1}: the marker never ends (-->)")
        fields = dict(_option(o, path, start) for o in options)
        i = last + 1
        if i >= len(lines) or not lines[i].startswith("```"):
            raise TranscriptError(f"{_name(path)}:{start + 1}: a transcript marker must be "
                                  "followed at once by a fenced block (```)")
        close = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        if close is None:
            raise TranscriptError(f"{_name(path)}:{i + 1}: the block below the marker never ends")
        found.append(Transcript(path, start + 1, command, fields.get("setup"), int(fields.get("status", 0)),
                                "slow" in fields, (i + 1, close)))
    return found


def _option(text: str, path: Path, line: int) -> tuple[str, str]:
    key, sep, value = text.partition(":")
    key = key.strip()
    if key == "slow" and not sep:
        return key, ""
    if key not in ("setup", "status") or not sep:
        raise TranscriptError(f"{_name(path)}:{line + 1}: unknown marker line {text!r}; "
                              "valid: setup: SHELL, status: N, slow")
    return key, value.strip()


@contextlib.contextmanager
def _sandbox() -> Iterator[Path]:
    """A temporary folder that looks like the repository root, as the current folder."""
    old_cwd, old_env = Path.cwd(), {k: os.environ.get(k) for k in ENV}
    with tempfile.TemporaryDirectory(prefix="transcript-") as tmp:
        folder = Path(tmp)
        for entry in ROOT.iterdir():
            if not entry.name.startswith("."):
                (folder / entry.name).symlink_to(entry)
        os.chdir(folder)
        os.environ.update(ENV)
        try:
            yield folder
        finally:
            os.chdir(old_cwd)
            for key, value in old_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _shell(command: str, folder: Path) -> tuple[int, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # npusim, python
    env = os.environ | ENV | {"PATH": path}
    done = subprocess.run(command, shell=True, cwd=folder, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    return done.returncode, done.stdout


def _npusim(argv: Sequence[str]) -> tuple[int, str]:
    from npusim.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            status = main(list(argv))
        except SystemExit as stop:  # --help
            status = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    return status, out.getvalue()


def run(t: Transcript) -> list[str]:
    """The block's lines: `$ command`, then what the command printed."""
    with _sandbox() as folder:
        if t.setup:
            status, output = _shell(t.setup, folder)
            if status:
                raise TranscriptError(f"{t.where}: setup `{t.setup}` failed ({status}):\n{output}")
        argv = shlex.split(t.command)
        if argv and argv[0] == "npusim" and not _SHELL.search(t.command):
            status, output = _npusim(argv[1:])
        else:
            status, output = _shell(t.command, folder)
    if status != t.status:
        raise TranscriptError(f"{t.where}: `{t.command}` ended with status {status}, the marker says "
                              f"{t.status}:\n{output}")
    lines = [line.rstrip() for line in output.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return [f"$ {t.command}", *lines]


def update(path: Path, quick: bool = False, write: bool = True) -> list[str]:
    """Run the transcripts of `path` (not the slow ones with `quick`); a diff per stale block.

    With `write`, stale blocks are rewritten in the file; the file is untouched if none is.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    diffs = []
    for t in reversed(find(path)):  # from the end, so earlier blocks keep their line numbers
        if quick and t.slow:
            continue
        start, end = t.body
        new = run(t)
        if new != lines[start:end]:
            name = f"{t.where} ({t.command})"
            diffs.append("\n".join(difflib.unified_diff(lines[start:end], new, name, name + " now",
                                                        lineterm="")))
            lines[start:end] = new
    if write and diffs:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return diffs[::-1]


def unmarked(path: Path) -> list[str]:
    """Blocks that look like a transcript (`$ npusim ...` or `npusim: error:` inside) with no marker."""
    lines = path.read_text(encoding="utf-8").splitlines()
    marked = {t.body[0] - 1 for t in find(path)}
    found: list[str] = []
    fence: int | None = None  # the line of the open fence, inside a block
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fence = None if fence is not None else i
            continue
        looks = line.startswith("$ npusim") or line.startswith("npusim: error:")
        if fence is not None and looks and fence not in marked:
            found.append(f"{_name(path)}:{fence + 1}: {line[:80]}")
            marked.add(fence)  # report each block once
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="markdown files (default: docs/*.md)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is stale")
    parser.add_argument("--quick", action="store_true", help="skip the transcripts marked slow")
    parser.add_argument("--list", action="store_true", help="list the markers and unmarked transcripts")
    args = parser.parse_args(argv)
    files = [f.resolve() for f in args.files] or sorted(DOCS.glob("*.md"))
    try:
        if args.list:
            for path in files:
                for t in find(path):
                    print(f"{t.where}: {t.command}{'  (slow)' if t.slow else ''}")
                for line in unmarked(path):
                    print(f"{line}  (UNMARKED)")
            return 0
        stale = [d for path in files for d in update(path, args.quick, write=not args.check)]
    except TranscriptError as err:
        print(f"transcripts: {err}", file=sys.stderr)
        return 2
    return report_stale(stale, args.check, "transcript(s)", "docs/tools/transcripts.py")


def report_stale(stale: list[str], check: bool, what: str, script: str) -> int:
    """Print the diffs of what was stale and a count; the exit status (1: stale blocks under --check).
    Shared by docs/tools/what_if.py."""
    for diff in stale:
        print(diff)
    if stale:
        verb = f"are stale; run python {script}" if check else "rewritten"
        print(f"{len(stale)} {what} {verb}", file=sys.stderr)
    return 1 if stale and check else 0


if __name__ == "__main__":
    sys.exit(main())
