"""Output paths a command will write, checked before the run so that a bad name costs nothing.

One home for the rules every output shares (a figure, the report, a trace, the stats tables, a
dump): the folder exists and can be written, a file is not a folder, a directory to be made is not
blocked by a file. What one kind of output adds (an image format, a page's extension, the tables'
names) stays with that output.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


class OutputPathError(ValueError):
    """An output path the run could not write, named with its option, found before the run."""


def output_file(path: str | Path, option: str, example: str,
                error: type[OutputPathError] = OutputPathError) -> Path:
    """`path` as a Path if a file can be written there; else an `error` naming `option`.

    `example`: a file name to suggest when `path` is a folder; `error`: the caller's own kind.
    """
    path = Path(path)
    if path.is_dir():
        raise error(f"{option} {path}: is a folder; name a file, e.g. {path / example}")
    if path.is_symlink() and not path.exists():
        raise error(f"{option} {path}: is a link to {os.readlink(path)}, which does not exist")
    folder = path.parent
    if not folder.is_dir():
        blocked = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if blocked is not None and not blocked.is_dir():
            raise error(f"{option} {path}: {blocked} is a file, so it cannot hold the folder {folder}")
        raise error(f"{option} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise error(f"{option} {path}: cannot write there (permission denied)")
    return path


def output_directory(path: str | Path, option: str, holds: str = "",
                     error: type[OutputPathError] = OutputPathError) -> Path:
    """`path` as a Path if a directory can be written there (made if missing, with its parents);
    else an `error` naming `option`. `holds`: what the directory is for, for the message."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise error(f"{option} {path}: is a link to {os.readlink(path)}, which does not exist")
    if path.exists() and not path.is_dir():
        raise error(f"{option} {path}: is a file; give a directory{' to hold ' + holds if holds else ''} "
                    f"(made if missing)")
    existing = next((p for p in (path, *path.parents) if p.exists()), Path.cwd())
    if not existing.is_dir():
        raise error(f"{option} {path}: {existing} is a file, so the directory cannot be made")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise error(f"{option} {path}: no permission to write in {existing}")
    return path


@contextlib.contextmanager
def written_whole(path: str | Path) -> Iterator[TextIO]:
    """A text file to write `path` through: it appears, or replaces what was there, only once the
    block ends without an error, so an interrupted run leaves no half-written file behind. A link
    is written through, to the file it names."""
    path = Path(path).resolve() if Path(path).is_symlink() else Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8", newline="\n") as f:
            yield f
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
