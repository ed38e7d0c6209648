"""Pausing Python's cyclic garbage collector around work that makes many long-lived objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a program is built or run.

    A program is hundreds of thousands of small objects (a long context's, millions) that all live
    on: every collection the allocations trigger walks them again, which took most of a long-context
    build's time, and a run allocates many small records besides. Neither makes many reference
    cycles; what there is gets collected once the collector resumes.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
