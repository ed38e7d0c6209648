"""Ordering between kernels derived from the GM regions they read and write.

A program's kernels (or tasks) are written in program order; a later kernel must wait for an earlier
one when their GM accesses conflict: it reads what the earlier one writes (read after write), or
writes what the earlier one reads (write after read) or writes (write after write). Reads of the
same data never order anything, so kernels that only share read-only inputs (a KV cache, a block
table) may run in any order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from isa.program import Kernel
from isa.regions import GmRegion


@dataclass(frozen=True)
class Footprint:
    """The GM regions one kernel reads and writes, each listed once, in first-use order."""

    reads: tuple[GmRegion, ...]
    writes: tuple[GmRegion, ...]


def footprint(kernel: Kernel) -> Footprint:
    """Collect the GM regions `kernel` reads and writes (on-chip tiles are private to its core).

    Identical regions are listed once. Regions that merely overlap or contain one another are all
    kept: the footprint is exactly what the instructions name.
    """
    reads: dict[GmRegion, None] = {}
    writes: dict[GmRegion, None] = {}
    for ins in kernel.instructions:
        for region in ins.reads:
            if isinstance(region, GmRegion):
                reads[region] = None
        for region in ins.writes:
            if isinstance(region, GmRegion):
                writes[region] = None
    return Footprint(tuple(reads), tuple(writes))


def overlaps(a: GmRegion, b: GmRegion) -> bool:
    """Whether two GM regions share at least one element (same tensor, row and column).

    Exact for strided rows: the rows of each region form an arithmetic progression, and two
    progressions meet iff the congruences x = a.row (mod a.row_step), x = b.row (mod b.row_step)
    have a solution inside both row spans. Row steps must be at least 1 (as `isa.check` requires).
    Empty regions (no rows or no columns) overlap nothing.
    """
    if a.tensor != b.tensor:
        return False
    if a.col >= b.col + b.cols or b.col >= a.col + a.cols or a.cols <= 0 or b.cols <= 0:
        return False
    lo = max(a.row, b.row)
    hi = min(a.last_row, b.last_row)
    if lo > hi or a.rows <= 0 or b.rows <= 0:
        return False
    if a.row_step == 1 and b.row_step == 1:
        return True
    g = math.gcd(a.row_step, b.row_step)
    diff = b.row - a.row
    if diff % g:
        return False
    # x = a.row + a.row_step * t with a.row_step * t = diff (mod b.row_step): solve for t modulo
    # m = b.row_step / g, then every common row is x plus a multiple of lcm = a.row_step * m.
    m = b.row_step // g
    t = (diff // g) * pow(a.row_step // g, -1, m) % m
    x = a.row + a.row_step * t
    lcm = a.row_step * m
    first_common_at_or_after_lo = lo + (x - lo) % lcm
    return first_common_at_or_after_lo <= hi


# Rows per bucket of the access index below. Comparing every kernel with every earlier one is
# quadratic (12 million pairs for a 5000-kernel paged-attention program). Two regions can only overlap
# if they share a row, so each region is filed under the row buckets its rows fall in and only regions
# filed under a common bucket of the same tensor are compared exactly. 64 rows is a few tiles of 16
# rows: small enough that unrelated tiles rarely share a bucket, large enough that a tile or a strided
# KV block touches a handful of buckets, not hundreds.
_BUCKET_ROWS = 64


def _buckets(region: GmRegion) -> range | set[int]:
    """The buckets holding at least one row of `region`."""
    first = region.row // _BUCKET_ROWS
    last = region.last_row // _BUCKET_ROWS
    if last - first < region.rows:
        return range(first, last + 1)
    # A step wider than a bucket would skip most of its span: list only buckets of real rows.
    return {r // _BUCKET_ROWS for r in range(region.row, region.last_row + 1, region.row_step)}


class _AccessIndex:
    """The kernels seen so far that read (or that write) each GM region, findable by overlap."""

    def __init__(self) -> None:
        # Kernels touching one region again and again (an accumulator updated once per KV block)
        # share one entry, so a lookup tests each distinct region once, not each access.
        self._kernels: dict[GmRegion, list[int]] = {}
        self._buckets: dict[str, dict[int, list[tuple[GmRegion, list[int]]]]] = {}

    def add(self, region: GmRegion, kernel: int) -> None:
        kernels = self._kernels.get(region)
        if kernels is not None:
            kernels.append(kernel)
            return
        kernels = self._kernels[region] = [kernel]
        by_bucket = self._buckets.setdefault(region.tensor, {})
        entry = (region, kernels)
        for b in _buckets(region):
            by_bucket.setdefault(b, []).append(entry)

    def find(self, region: GmRegion, found: set[int]) -> None:
        """Add to `found` every kernel with a region overlapping `region`."""
        by_bucket = self._buckets.get(region.tensor)
        if not by_bucket:
            return
        seen: set[int] = set()  # a region filed under several of these buckets is tested once
        for b in _buckets(region):
            for other, kernels in by_bucket.get(b, ()):
                if id(kernels) not in seen:
                    seen.add(id(kernels))
                    if overlaps(region, other):
                        found.update(kernels)


def dependencies(kernels: Sequence[Kernel]) -> tuple[tuple[int, ...], ...]:
    """For each kernel, the sorted indices of the earlier kernels it must wait for.

    Kernel j waits for i < j when j reads a GM region overlapping one that i writes, or writes a
    region overlapping one that i reads or writes. Every such edge is listed, including those implied
    by others (no transitive reduction). Cost grows with the number of accesses, of distinct regions
    filed under a common 64-row bucket, and of edges; not with the square of the number of kernels.
    Pass `[t.kernel for t in program.tasks]` to order a program's tasks.
    """
    by_id: dict[int, Footprint] = {}  # tasks that share one Kernel object scan it once
    fps: list[Footprint] = []
    for k in kernels:
        fp = by_id.get(id(k))
        if fp is None:
            fp = by_id[id(k)] = footprint(k)
        fps.append(fp)

    first_write: dict[str, int] = {}
    last_write: dict[str, int] = {}
    for j, fp in enumerate(fps):
        for w in fp.writes:
            first_write.setdefault(w.tensor, j)
            last_write[w.tensor] = j

    writers = _AccessIndex()
    readers = _AccessIndex()
    n = len(fps)
    result: list[tuple[int, ...]] = []
    for j, fp in enumerate(fps):
        found: set[int] = set()
        # Look up before entering this kernel's own accesses, so it never finds itself.
        for r in fp.reads:
            if first_write.get(r.tensor, n) < j:
                writers.find(r, found)
        for w in fp.writes:
            writers.find(w, found)
            readers.find(w, found)
        # A read matters only to later writers of its tensor: reads of tensors nobody writes
        # afterwards (read-only inputs such as a KV cache) are never indexed.
        for r in fp.reads:
            if last_write.get(r.tensor, -1) > j:
                readers.add(r, j)
        for w in fp.writes:
            writers.add(w, j)
        result.append(tuple(sorted(found)))
    return tuple(result)
