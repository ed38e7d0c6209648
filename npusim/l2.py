"""The chip's L2 as a set of resident GM lines: which bytes of a transfer are already on chip.

GM is one byte address space: each tensor starts at a base address aligned to an L2 line, in
declaration order. L2 approximates LRU by touch distance: a global counter advances by one for
every line a transfer touches, and each line remembers the counter value when it was last
touched. A line is resident while fewer than capacity_bytes / line_bytes lines were touched after
it. That is exact LRU when no line is touched twice in between; re-touches count again, so the
model errs towards misses. Reads and writes both allocate their lines, so data written by one task
and soon read by another comes from L2. Residency is decided when a transfer starts, for all its
lines at once.

L2 is write-back, as Huawei documents for the 910B (CANN Ascend C best practices, "Setting a Proper
L2 CacheMode"): a write marks its lines dirty and costs HBM nothing then; a dirty line costs HBM
its bytes when it is evicted, and the transfer whose touch evicts it pays for that write-back.
A tensor marked `l2 = False` (the per-tensor cache hint, `Tensor.l2`) bypasses L2: its reads never
hit and allocate nothing, its writes go straight to HBM; `l2.hints = false` ignores the marks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from isa.program import Tensor
from isa.regions import GmRegion
from npusim.config import HardwareConfig

_NEVER = -(1 << 62)  # the stamp of a line never touched: never resident


class Touch(NamedTuple):
    """What one transfer found in L2: the fraction of its lines resident, the bytes it wrote back."""

    hit_fraction: float
    writeback_bytes: int
    cached: bool  # False for a tensor that bypasses L2


_BYPASS = Touch(0.0, 0, False)


HOST_BYTES_PER_LINE = 8 + 8 + 1
"""Host memory L2Lines keeps per GM line: its last-touch stamp and its group (int64), its dirty flag."""


def _lines(tensor: Tensor, line: int) -> int:
    """The L2 lines a tensor covers: each tensor starts on a fresh line."""
    return -(-tensor.nbytes // line)


def host_bytes(config: HardwareConfig, tensors: Sequence[Tensor]) -> int:
    """Host memory L2Lines holds for a run over `tensors`: it grows with GM, whatever the run touches."""
    return HOST_BYTES_PER_LINE * sum(_lines(t, config.l2.line_bytes) for t in tensors)


class L2Lines:
    """Which L2 lines each GM region covers, and which of them are resident when it is touched."""

    def __init__(self, config: HardwareConfig, tensors: Sequence[Tensor]) -> None:
        line = config.l2.line_bytes
        self._line = line
        self._capacity_lines = config.l2.capacity_bytes // line
        # Per tensor: its base address, then its matrix rows, columns and bytes per element.
        self._layout: dict[str, tuple[int, int, int, int]] = {}
        address = 0
        for t in tensors:
            self._layout[t.name] = (address, *t.matrix_shape, t.dtype.itemsize)
            address += _lines(t, line) * line
        self.gm_bytes = address
        self._last_touch = np.full(address // line, _NEVER, dtype=np.int64)
        self._ramp = np.arange(1024, dtype=np.int64)  # 0, 1, 2, ...: a line's position in a transfer
        self._counter = 0
        # Regions recur (loops): each distinct one gets a code, and per code its lines, the counter
        # at its last touch, and whether that touch's stamps are still to be written.
        self._codes: dict[GmRegion, int] = {}
        self._by_id: dict[int, tuple[GmRegion, int]] = {}
        self._lines: list[np.ndarray] = []
        self._base: list[int] = []
        self._deferred: list[bool] = []
        # Regions that share a line form a group (union-find, `_parent`); `_group` holds, per line,
        # a region that covers it; `_pending`, per group root, the regions with unwritten stamps.
        self._parent: list[int] = []
        self._group = np.full(len(self._last_touch), -1, dtype=np.int64)
        self._pending: dict[int, list[int]] = {}
        # Write-back: which lines hold data not yet in HBM, and the touches that left lines dirty,
        # oldest first, as [counter at the touch, region code, lines of it already retired].
        self._dirty_lines = np.zeros(len(self._last_touch), dtype=bool)
        self._ndirty = 0
        self._dirty_touches: deque[list[int]] = deque()
        self._written: set[str] = set()  # tensors with a write so far: only their reads can meet dirty lines
        self._untouched = -1  # the code of the region just set up if no line of it was ever touched
        self._bypass = frozenset(t.name for t in tensors if not t.l2) if config.l2.hints else frozenset()

    def base(self, tensor: str) -> int:
        """The GM byte address where `tensor` starts."""
        return self._entry(tensor)[0]

    def lines_of(self, region: GmRegion) -> np.ndarray:
        """The L2 line numbers a region covers, ascending, each once: only its rows' own bytes."""
        return self._lines[self._code(region)]

    def _code(self, region: GmRegion) -> int:
        """The region's index in the per-region lists; the first sight of a region sets it up."""
        known = self._by_id.get(id(region))
        if known is not None and known[0] is region:  # kernels share region objects: no hashing
            return known[1]
        code = self._codes.get(region)
        if code is None:
            code = self._codes[region] = self._new_code(region)
        self._by_id[id(region)] = (region, code)  # the entry keeps `region` alive: its id stays its own
        return code

    def _new_code(self, region: GmRegion) -> int:
        """Set up a region seen for the first time: its lines, and its group of regions sharing them."""
        lines = self._compute_lines(region)
        code = len(self._lines)
        self._lines.append(lines)
        self._base.append(_NEVER)
        self._deferred.append(False)
        self._parent.append(code)
        # Join every group that shares a line with this region: this region becomes their root.
        owners = set(self._group[lines].tolist())
        owners.discard(-1)  # lines no region covered yet
        for other in sorted(owners):
            root = self._find(other)
            if root != code:
                self._parent[root] = code
                self._pending.setdefault(code, []).extend(self._pending.pop(root, ()))
        self._group[lines] = code
        # No region covered any of its lines, so none was ever touched (until the next touch).
        self._untouched = -1 if owners else code
        return code

    def _find(self, code: int) -> int:
        """The root of the group of regions that share lines with `code`'s, transitively."""
        parent = self._parent
        root = code
        while parent[root] != root:
            root = parent[root]
        while parent[code] != root:  # path compression
            parent[code], code = root, parent[code]
        return root

    def _compute_lines(self, region: GmRegion) -> np.ndarray:
        base, rows_total, cols_total, size = self._entry(region.tensor)
        if (region.row < 0 or region.col < 0 or region.last_row >= rows_total
                or region.col + region.cols > cols_total):
            raise ValueError(f"region rows {region.row}..{region.last_row} step {region.row_step}, columns "
                             f"{region.col}..{region.col + region.cols - 1} fall outside {region.tensor}'s "
                             f"matrix [{rows_total}, {cols_total}]")
        line = self._line
        start = base + (region.row * cols_total + region.col) * size  # of the first row
        stride = region.row_step * cols_total * size  # bytes from one row to the next
        width = (start % line + region.cols * size + line - 1) // line  # lines the first row covers
        if region.row_step == 1 and (region.cols == cols_total or region.rows == 1):  # one contiguous span
            lines = np.arange(start // line, (start + region.nbytes - 1) // line + 1, dtype=np.int64)
        elif stride % line == 0 and stride // line >= width:
            # Every row covers the first row's lines shifted by a whole number of lines, and no two
            # rows share one: the common 2-D tile of a line-aligned matrix.
            first, step = start // line, stride // line
            lines = np.arange(first, first + region.rows * step, step, dtype=np.int64)
            if width > 1:
                lines = (lines[:, None] + np.arange(width, dtype=np.int64)).ravel()
        else:
            rows = region.row + np.arange(region.rows, dtype=np.int64) * region.row_step
            starts = base + (rows * cols_total + region.col) * size
            first = starts // line
            count = (starts + region.cols * size - 1) // line - first + 1
            widest = int(count.max())
            if widest == int(count.min()):  # every row spans as many lines: a 2-D broadcast
                lines = (first[:, None] + np.arange(widest, dtype=np.int64)).ravel()
            else:  # concatenate the ranges first[i] .. first[i] + count[i] - 1 without a Python loop
                offsets = np.arange(count.sum(), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
                lines = np.repeat(first, count) + offsets
            # Rows go up in address, so the list is sorted; neighbours may share a line.
            lines = lines[np.concatenate(([True], lines[1:] != lines[:-1]))]
        lines.flags.writeable = False
        return lines

    def _entry(self, tensor: str) -> tuple[int, int, int, int]:
        entry = self._layout.get(tensor)
        if entry is None:
            raise KeyError(f"no GM tensor {tensor!r}; declared: {', '.join(self._layout) or 'none'}")
        return entry

    def touch(self, region: GmRegion, write: bool = False) -> Touch:
        """Touch the region's lines (in order): how many were resident just before, what it evicted.

        Line i of this transfer gets stamp counter + i. It was resident if fewer than capacity lines
        were touched since its last stamp (earlier lines of this transfer count too, so a region
        larger than L2 evicts its own first lines, as a sequential scan does under LRU).

        Stamps are written lazily. Each region remembers the counter at its last touch (`_base`),
        which bounds every one of its lines' stamps from below; when that alone proves every line
        resident, no line is looked at. Otherwise the region's group (the regions that share lines
        with it, transitively) writes its deferred stamps, oldest touch first, and the lines are
        checked one by one. Deferred stamps are newer than every written stamp of their group, so
        the result is the same as stamping every line at every touch.
        """
        if region.tensor in self._bypass:
            return _BYPASS
        code = self._code(region)
        lines = self._lines[code]
        n, counter = len(lines), self._counter
        untouched, self._untouched = self._untouched == code, -1
        if counter - self._base[code] - 1 < self._capacity_lines:
            resident = n  # its own last touch stamped every line at least that recently
        elif untouched:
            resident = 0  # and none of its lines is dirty
        else:
            self._write_stamps(self._find(code))
            # stamp - last - 1 < capacity  <=>  last - i > counter - 1 - capacity; never-touched
            # lines hold a stamp far below any threshold.
            threshold = counter - 1 - self._capacity_lines
            resident = int(np.count_nonzero(self._last_touch[lines] - self._ramp_of(n) > threshold))
        self._base[code] = counter
        self._counter = counter + n
        if not self._deferred[code]:
            self._deferred[code] = True
            root = self._find(code)
            pending = self._pending.get(root)
            if pending is None:
                self._pending[root] = [code]
            else:
                pending.append(code)
        if write:
            self._written.add(region.tensor)
            fresh = n if untouched else n - int(np.count_nonzero(self._dirty_lines[lines]))
            self._dirty_lines[lines] = True
            self._ndirty += fresh
            self._dirty_touches.append([counter, code, 0])
        elif not untouched and region.tensor in self._written and np.count_nonzero(self._dirty_lines[lines]):
            self._dirty_touches.append([counter, code, 0])  # lines still dirty, now younger
        written_back = self._evict(counter + n - 1 - self._capacity_lines) if self._ndirty else 0
        return Touch(resident / n, written_back * self._line, True)

    def _evict(self, threshold: int) -> int:
        """Retire the dirty lines whose stamp is at or below `threshold` (no longer resident): how
        many were still dirty and untouched since, and so are written back now."""
        touches, written = self._dirty_touches, 0
        while touches and touches[0][0] + touches[0][2] <= threshold:
            entry = touches[0]
            base, code, first = entry
            lines = self._lines[code]
            last = min(len(lines), threshold - base + 1)
            self._write_stamps(self._find(code))
            retired = lines[first:last]
            # A line touched again since has a newer stamp: that touch decides its fate.
            untouched = self._last_touch[retired] == base + self._ramp_of(last)[first:last]
            gone = retired[untouched & self._dirty_lines[retired]]
            if len(gone):
                self._dirty_lines[gone] = False
                self._ndirty -= len(gone)
                written += len(gone)
            if last < len(lines):
                entry[2] = last
                break
            touches.popleft()
        return written

    @property
    def dirty_bytes(self) -> int:
        """Bytes in L2 not yet written back to HBM."""
        return self._ndirty * self._line

    def _ramp_of(self, n: int) -> np.ndarray:
        if n > len(self._ramp):
            self._ramp = np.arange(2 * n, dtype=np.int64)
        return self._ramp[:n]

    def _write_stamps(self, root: int) -> None:
        """Write the deferred stamps of the group under `root`, oldest touch first (newest wins)."""
        pending = self._pending.pop(root, None)
        if not pending:
            return
        base, lines, deferred = self._base, self._lines, self._deferred
        pending.sort(key=base.__getitem__)
        for code in pending:
            ls = lines[code]
            self._last_touch[ls] = self._ramp_of(len(ls)) + base[code]
            deferred[code] = False
