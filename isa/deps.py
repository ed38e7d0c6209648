"""Ordering between kernels derived from the GM regions they read and write.

A program's kernels (or tasks) are written in program order; a later kernel must wait for an earlier
one when their GM accesses conflict: it reads what the earlier one writes (read after write), or
writes what the earlier one reads (write after read) or writes (write after write). Reads of the
same data never order anything, so kernels that only share read-only inputs (a KV cache, a block
table) may run in any order.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, repeat

import numpy as np

from isa.collector import gc_paused
from isa.instructions import Instruction
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


# Comparing every task with every earlier one is quadratic: half a billion pairs for a long-context
# program of 32,768 tasks. The dependencies are computed instead as array operations over one table
# of the GM accesses that may conflict. Python asks each distinct object (instruction, region) for
# its fields once, and does nothing per instruction occurrence or per pair of tasks.

_READS = operator.attrgetter("reads")
_WRITES = operator.attrgetter("writes")
_TENSOR = operator.attrgetter("tensor")
_SHAPE = operator.attrgetter("row", "rows", "row_step", "col", "cols")


def _expand(keys: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each `keys[i]` paired with every position in `lo[i]:hi[i]`, as two flat arrays."""
    counts = np.maximum(hi - lo, 0)
    offsets = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    return np.repeat(keys, counts), np.arange(len(offsets)) + offsets


def _instruction_accesses(distinct: list[Instruction]) -> tuple[np.ndarray, np.ndarray, list[GmRegion]]:
    """The GM accesses of `distinct` instructions as (instruction index, is a write, region), by index."""
    reads, writes = list(map(_READS, distinct)), list(map(_WRITES, distinct))
    regions = list(chain(chain.from_iterable(reads), chain.from_iterable(writes)))
    counts = np.fromiter(map(len, chain(reads, writes)), np.int64, 2 * len(distinct))
    owner = np.repeat(np.tile(np.arange(len(distinct)), 2), counts)
    write = np.repeat(np.arange(2 * len(distinct)) >= len(distinct), counts)
    gm = np.flatnonzero(np.fromiter(map(isinstance, regions, repeat(GmRegion)), bool, len(regions)))
    gm = gm[np.argsort(owner[gm], kind="stable")]
    return owner[gm], write[gm], [regions[i] for i in gm.tolist()]


def _kernel_accesses(kernels: list[Kernel]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[GmRegion]]:
    """Every GM access of `kernels` (distinct objects) as (kernel index, is a write, region index).

    Builders pool equal instructions (flags, barriers, vector ops on the same tiles): a long-context
    program's 2.5 million instructions are half a million objects. Each object is asked for its
    regions once and its occurrences are matched to it by identity in one sort (instructions hash
    in Python; identities are plain numbers). Returns the rows and the regions they index.
    """
    instructions = list(chain.from_iterable(k.instructions for k in kernels))
    kernel = np.repeat(np.arange(len(kernels)), np.fromiter(map(len, kernels), np.int64, len(kernels)))
    ids = np.fromiter(map(id, instructions), np.uint64, len(instructions))
    _, first, which = np.unique(ids, return_index=True, return_inverse=True)
    owner, write, regions = _instruction_accesses(list(map(instructions.__getitem__, first.tolist())))
    counts = np.bincount(owner, minlength=len(first))
    starts = np.cumsum(counts) - counts
    touching = np.flatnonzero(counts[which])  # occurrences of instructions that access GM
    at, access = _expand(touching, starts[which[touching]], (starts + counts)[which[touching]])
    return kernel[at], write[access], access, regions


def _task_accesses(kernels: Sequence[Kernel]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[GmRegion]]:
    """Every GM access of every task as (task index, is a write, region index), and the regions.

    A kernel object shared by several tasks is scanned once; its accesses count once per task.
    """
    index: dict[int, int] = {}
    kernel_of = np.fromiter((index.setdefault(id(k), len(index)) for k in kernels), np.int64, len(kernels))
    kernel, write, region, regions = _kernel_accesses(list({id(k): k for k in kernels}.values()))
    tasks = np.argsort(kernel_of, kind="stable")
    counts = np.bincount(kernel_of, minlength=len(index))
    starts = np.cumsum(counts) - counts
    row, position = _expand(np.arange(len(kernel)), starts[kernel], (starts + counts)[kernel])
    return tasks[position], write[row], region[row], regions


@dataclass(frozen=True)
class _Accesses:
    """The GM accesses that may conflict, as parallel arrays: one entry per (task, region, read or write).

    Only tensors some task writes are kept (reads of read-only inputs such as a KV cache order
    nothing), and no empty region. Rows of all tensors are laid end to end on one line, each
    tensor a stretch of its own, so regions of different tensors never share a span of rows and
    one sorted pass over the line pairs up the regions of every tensor at once.
    """

    regions: list[GmRegion]  # entry i accesses regions[region[i]] (kept for the exact strided test)
    region: np.ndarray
    task: np.ndarray
    write: np.ndarray  # bool
    first: np.ndarray  # first row, on the line
    last: np.ndarray  # last row, on the line
    col: np.ndarray
    end_col: np.ndarray  # one past the last column
    step: np.ndarray

    @classmethod
    def of(cls, kernels: Sequence[Kernel]) -> _Accesses:
        task, write, region, regions = _task_accesses(kernels)
        tensor = _tensor_numbers(regions)
        written = np.zeros(tensor.max(initial=-1) + 1, bool)
        written[tensor[region[write]]] = True
        # Only regions of written tensors are asked for their shape: most regions of a paged-attention
        # program are blocks of the read-only KV cache.
        shaped = np.flatnonzero(written[tensor])
        row, rows, step, col, cols = np.fromiter(
            chain.from_iterable(map(_SHAPE, map(regions.__getitem__, shaped.tolist()))), np.int64,
            5 * len(shaped)).reshape(-1, 5).T
        last = row + (rows - 1) * step
        nonempty = (rows > 0) & (cols > 0)
        place = np.full(len(regions), -1)  # a region's place in the shape arrays; -1: it conflicts with none
        place[shaped[nonempty]] = np.flatnonzero(nonempty)
        entries = np.flatnonzero(place[region] >= 0)
        task, write, region = task[entries], write[entries], region[entries]
        # Each tensor's stretch of the line is as long as the span of all rows named.
        low = row.min(initial=0)
        stretch = tensor[shaped] * (max(last.max(initial=0), low) - low + 1) - low
        at = place[region]
        return cls(regions, region, task, write, (row + stretch)[at], (last + stretch)[at], col[at],
                   (col + cols)[at], step[at])


def _tensor_numbers(regions: list[GmRegion]) -> np.ndarray:
    """The tensor of each region, numbered in order of first appearance."""
    names = list(map(_TENSOR, regions))
    numbers = {name: i for i, name in enumerate(dict.fromkeys(names))}
    return np.fromiter(map(numbers.__getitem__, names), np.int64, len(names))


def _span_pairs(acc: _Accesses) -> tuple[np.ndarray, np.ndarray]:
    """Every (write, access) pair of entries whose row spans meet, as two index arrays.

    Two spans meet iff one starts inside the other, so the pairs are those where the access starts
    inside the write's span plus those where the write starts inside the access's span, after the
    access starts: two binary searches over sorted starts, and each pair is found once.
    """
    writes = np.flatnonzero(acc.write)
    by_first = np.argsort(acc.first, kind="stable")
    firsts = acc.first[by_first]
    w1, at = _expand(writes, np.searchsorted(firsts, acc.first[writes], "left"),
                     np.searchsorted(firsts, acc.last[writes], "right"))
    writes_by_first = writes[np.argsort(acc.first[writes], kind="stable")]
    write_firsts = acc.first[writes_by_first]
    a2, wt = _expand(np.arange(len(acc.first)), np.searchsorted(write_firsts, acc.first, "right"),
                     np.searchsorted(write_firsts, acc.last, "right"))
    return np.concatenate([w1, writes_by_first[wt]]), np.concatenate([by_first[at], a2])


def _conflicting_tasks(acc: _Accesses, w: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (task, task) pairs of the span pairs `(w, a)` that are two tasks' overlapping regions."""
    keep = (acc.task[w] != acc.task[a]) & (acc.col[w] < acc.end_col[a]) & (acc.col[a] < acc.end_col[w])
    w, a = w[keep], a[keep]
    strided = np.flatnonzero((acc.step[w] != 1) | (acc.step[a] != 1))
    if len(strided):  # spans that meet may still share no row: ask `overlaps`, the one exact test
        regions = acc.regions
        pairs = zip(acc.region[w[strided]].tolist(), acc.region[a[strided]].tolist(), strict=True)
        keep = np.ones(len(w), bool)
        keep[strided] = [overlaps(regions[i], regions[k]) for i, k in pairs]
        w, a = w[keep], a[keep]
    return acc.task[w], acc.task[a]


def dependencies(kernels: Sequence[Kernel]) -> tuple[tuple[int, ...], ...]:
    """For each kernel, the sorted indices of the earlier kernels it must wait for.

    Kernel j waits for i < j when j reads a GM region overlapping one that i writes, or writes a
    region overlapping one that i reads or writes. Every such edge is listed, including those implied
    by others (no transitive reduction). Row steps must be at least 1 (as `isa.check` requires).
    Cost grows with the number of distinct instructions, of GM accesses and of pairs of a write and
    another access whose row spans meet, not with the square of the number of kernels.
    Pass `[t.kernel for t in program.tasks]` to order a program's tasks.
    """
    n = len(kernels)
    if n == 0:
        return ()
    with gc_paused():  # millions of short-lived tuples, no cycles: collections would only walk them
        acc = _Accesses.of(kernels)
        one, other = _conflicting_tasks(acc, *_span_pairs(acc))
    edges = np.unique(np.maximum(one, other) * n + np.minimum(one, other))  # by waiter, then waited-for
    bounds = np.searchsorted(edges, np.arange(n + 1) * n).tolist()
    earlier = (edges % n).tolist()
    return tuple(tuple(earlier[bounds[j]:bounds[j + 1]]) for j in range(n))
