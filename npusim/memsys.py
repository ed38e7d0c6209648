"""The chip's memory system: every GM access shares HBM with all the others and may hit in L2.

GM is one byte address space: each tensor starts at a base address aligned to an L2 line, in
declaration order. A transfer moves bytes between a core and GM at most at its own path rate
(`cap`, bytes per cycle); at any moment each active transfer (a `Flow`) gets a max-min fair rate
given two shared resources, HBM and L2 (bandwidth_gbps / clock_ghz bytes per cycle each). A read
with hit fraction h puts h of its rate on L2 and 1 - h on HBM; a write puts all of it on HBM.

L2 approximates LRU by touch distance: a global counter advances by one for every line a transfer
touches, and each line remembers the counter value when it was last touched. A line is resident
while fewer than capacity_bytes / line_bytes lines were touched after it. That is exact LRU when no
line is touched twice in between; re-touches count again, so the model errs towards misses. Reads
and writes both allocate their lines, so data written by one task and soon read by another comes
from L2 (write-through: the write itself still costs HBM bandwidth). Residency is decided when a
transfer starts, for all its lines at once.

Rates change only when a flow starts or ends: one pending SimPy timeout marks the earliest
completion. A flow's last byte arrives at the ceiling of its exact float time (less 1e-9, as in
`npusim.costs`); until then it keeps its share, so one flow alone ends exactly at
ceil(nbytes / min(cap, HBM)) cycles after it started. SimPy cannot cancel a timeout: a superseded
one still pops (and is ignored), so when a start speeds another flow up (an HBM-bound flow starting
leaves more L2 to a hit), `env.now` can pass the last completion; `last_done` is the true end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import simpy

from isa.program import Tensor
from isa.regions import GmRegion
from npusim.config import HardwareConfig

_EPS_CYCLES = 1e-9  # as npusim.costs: an exact quotient must not round up to the next cycle
_DONE_CYCLES = 1e-6  # a flow with less time than this left is done: float residue of rate x time
_NEVER = -(1 << 62)  # the stamp of a line never touched: never resident
_SATURATED = 1e-12  # relative slack below which a resource or a cap counts as full


class Flow:
    """One GM transfer: its completion event, whether it hit in L2, when it started and ended.

    While it is in flight, its rate and the bytes it has left live in the MemorySystem's arrays.
    """

    __slots__ = ("region", "write", "nbytes", "cap", "hit", "hit_fraction", "done", "start", "end",
                 "hbm_share")

    def __init__(self, env: simpy.Environment, region: GmRegion, write: bool, nbytes: float, cap: float,
                 hit_fraction: float) -> None:
        self.region, self.write, self.nbytes, self.cap = region, write, float(nbytes), float(cap)
        self.hit = hit_fraction == 1.0  # every line of the region was resident
        self.hit_fraction = hit_fraction  # resident lines / lines of the region
        self.hbm_share = 1.0 if write else 1.0 - hit_fraction  # of its rate; the rest is served by L2
        self.done: simpy.Event = env.event()  # succeeds, with the flow, when the last byte arrives
        self.start: float = env.now
        self.end: float | None = None


class MemorySystem:
    """Chip-level HBM and L2 shared by every core's GM transfers, with bandwidth statistics."""

    def __init__(self, env: simpy.Environment, config: HardwareConfig, tensors: Sequence[Tensor],
                 peak_demand: float = math.inf) -> None:
        """`peak_demand`: the most bytes per cycle the cores that can be busy at once could ask for.

        When it fits both HBM and L2, no flow can ever be slowed by another, so each transfer runs
        at its cap with no rate bookkeeping: the same times, far cheaper (a one-core program).
        """
        self.env, self.config = env, config
        self.hbm_bytes_per_cycle = config.hbm.bandwidth_gbps / config.clock_ghz
        self.l2_bytes_per_cycle = config.l2.bandwidth_gbps / config.clock_ghz
        line = config.l2.line_bytes
        self._line = line
        self._capacity_lines = config.l2.capacity_bytes / line
        self._layout: dict[str, tuple[int, Tensor]] = {}
        address = 0
        for t in tensors:
            self._layout[t.name] = (address, t)
            address += -(-t.nbytes // line) * line  # the next tensor starts on a fresh line
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
        self._dirty: list[bool] = []
        # Regions that share a line form a group (union-find, `_parent`); `_group` holds, per line,
        # a region that covers it; `_pending`, per group root, the regions with unwritten stamps.
        self._parent: list[int] = []
        self._group = np.full(len(self._last_touch), -1, dtype=np.int64)
        self._pending: dict[int, list[int]] = {}
        self._flows: list[Flow] = []  # active, in start order: ties and iteration are deterministic
        # The active flows' state as arrays, in the order of `_flows`: many flows share HBM at once,
        # and each start or end updates all of them.
        self._cap = self._share = self._left = self._rate = np.empty(0)
        self._updated = env.now  # when `_left` (bytes each flow has left) was last brought up to date
        self._version = 0  # of the live timeout; an older one firing is ignored
        self._wake_at: float | None = None
        self.read_bytes = self.write_bytes = 0.0
        self.hbm_read_bytes = self.hbm_write_bytes = self.l2_hit_bytes = 0.0
        self.transfers = self.hits = 0
        self.last_done: float = env.now
        self.timeline: list[tuple[float, float]] = [(env.now, 0.0)]  # (cycle, HBM bytes per cycle)
        self.uncontended = peak_demand <= min(self.hbm_bytes_per_cycle, self.l2_bytes_per_cycle)
        self._changes: list[tuple[float, float]] = []  # uncontended: (cycle, HBM rate change)

    # --- addresses and L2 lines -----------------------------------------------------------------

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
            lines = self._compute_lines(region)
            code = self._codes[region] = len(self._lines)
            self._lines.append(lines)
            self._base.append(_NEVER)
            self._dirty.append(False)
            self._parent.append(code)
            # Join every group that shares a line with this region: this region becomes their root.
            owners = self._group[lines]
            for other in (np.unique(owners[owners >= 0]).tolist() if owners.max() >= 0 else ()):
                root = self._find(other)
                if root != code:
                    self._parent[root] = code
                    self._pending.setdefault(code, []).extend(self._pending.pop(root, ()))
            self._group[lines] = code
        self._by_id[id(region)] = (region, code)  # the entry keeps `region` alive: its id stays its own
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
        base, tensor = self._entry(region.tensor)
        rows_total, cols_total = tensor.matrix_shape
        if region.last_row >= rows_total or region.col + region.cols > cols_total:
            raise ValueError(f"region rows {region.row}..{region.last_row} step {region.row_step}, columns "
                             f"{region.col}..{region.col + region.cols - 1} fall outside {region.tensor}'s "
                             f"matrix [{rows_total}, {cols_total}]")
        size, line = tensor.dtype.itemsize, self._line
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

    def _entry(self, tensor: str) -> tuple[int, Tensor]:
        entry = self._layout.get(tensor)
        if entry is None:
            raise KeyError(f"no GM tensor {tensor!r}; declared: {', '.join(self._layout) or 'none'}")
        return entry

    def _touch(self, region: GmRegion) -> float:
        """Touch the region's lines (in order) and return the fraction that was resident just before.

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
        code = self._code(region)
        lines = self._lines[code]
        n, counter = len(lines), self._counter
        if counter - self._base[code] - 1 < self._capacity_lines:
            resident = n  # its own last touch stamped every line at least that recently
        else:
            self._write_stamps(self._find(code))
            # stamp - last - 1 < capacity  <=>  last - i > counter - 1 - capacity; never-touched
            # lines hold a stamp far below any threshold.
            threshold = counter - 1 - self._capacity_lines
            resident = int(np.count_nonzero(self._last_touch[lines] - self._ramp_of(n) > threshold))
        self._base[code] = counter
        self._counter = counter + n
        if not self._dirty[code]:
            self._dirty[code] = True
            root = self._find(code)
            pending = self._pending.get(root)
            if pending is None:
                self._pending[root] = [code]
            else:
                pending.append(code)
        return resident / n

    def _ramp_of(self, n: int) -> np.ndarray:
        if n > len(self._ramp):
            self._ramp = np.arange(2 * n, dtype=np.int64)
        return self._ramp[:n]

    def _write_stamps(self, root: int) -> None:
        """Write the deferred stamps of the group under `root`, oldest touch first (newest wins)."""
        pending = self._pending.pop(root, None)
        if not pending:
            return
        base, lines, dirty = self._base, self._lines, self._dirty
        pending.sort(key=base.__getitem__)
        for code in pending:
            ls = lines[code]
            self._last_touch[ls] = self._ramp_of(len(ls)) + base[code]
            dirty[code] = False

    # --- transfers ------------------------------------------------------------------------------

    def transfer(self, region: GmRegion, write: bool, nbytes: float, cap: float) -> Flow:
        """Start moving `nbytes` for `region` now, at most `cap` bytes per cycle; wait on `.done`.

        `nbytes` is what the DMA engine moves (it may exceed the region's bytes: whole bursts).
        Raises ValueError for a negative size, a non-positive cap or a region outside its tensor.
        """
        if nbytes < 0 or cap <= 0:
            raise ValueError(f"a transfer needs nbytes >= 0 and cap > 0 bytes per cycle, "
                             f"got {nbytes} and {cap}")
        fraction = self._account(region, write, nbytes)
        flow = Flow(self.env, region, write, nbytes, cap, fraction)
        if self.uncontended:
            cycles = self._at_cap(nbytes, cap, flow.hbm_share)
            flow.end = self.env.now + cycles
            flow.done = self.env.timeout(cycles, value=flow)
            return flow
        self._advance()
        self._flows.append(flow)
        self._cap = np.append(self._cap, flow.cap)
        self._share = np.append(self._share, flow.hbm_share)
        self._left = np.append(self._left, flow.nbytes)
        self._update()
        return flow

    def start(self, region: GmRegion, write: bool, nbytes: int, cap: float) -> tuple[simpy.Event | int, bool]:
        """`transfer` for the timing engine's hot path: (when the bytes are moved, whether L2 hit).

        The first is an event to wait on, or, when no flow can slow another (`uncontended`), the
        number of cycles the bytes take from now: no Flow and no event are made, so the caller can
        wait for them and what follows with one timeout.
        """
        if not self.uncontended:
            flow = self.transfer(region, write, nbytes, cap)
            return flow.done, flow.hit
        fraction = self._account(region, write, nbytes)
        return self._at_cap(nbytes, cap, 1.0 if write else 1.0 - fraction), fraction == 1.0

    def _account(self, region: GmRegion, write: bool, nbytes: float) -> float:
        """Touch the region's lines and count its bytes; returns the fraction that hit in L2."""
        fraction = self._touch(region)
        self.transfers += 1
        if fraction == 1.0:
            self.hits += 1
        if write:
            self.write_bytes += nbytes
            self.hbm_write_bytes += nbytes
        else:
            self.read_bytes += nbytes
            self.hbm_read_bytes += nbytes * (1.0 - fraction)
            self.l2_hit_bytes += nbytes * fraction
        return fraction

    def _at_cap(self, nbytes: float, cap: float, hbm_share: float) -> int:
        """Cycles of a transfer that runs at its cap throughout; notes its HBM rate for the timeline."""
        cycles = max(0, math.ceil(nbytes / cap - _EPS_CYCLES))
        now = self.env.now
        if now + cycles > self.last_done:
            self.last_done = now + cycles
        if hbm_share:
            rate = cap * hbm_share
            self._changes += ((now, rate), (now + cycles, -rate))
        return cycles

    def _advance(self) -> None:
        """Bring every active flow's progress up to now and complete those whose last byte arrived."""
        now = self.env.now
        elapsed = now - self._updated
        self._updated = now
        if not self._flows:
            return
        left = self._left - self._rate * elapsed
        finished = left <= self._rate * _DONE_CYCLES
        if finished.any():
            for i in np.flatnonzero(finished).tolist():  # in start order
                flow = self._flows[i]
                flow.end = now
                flow.done.succeed(flow)
            self.last_done = now
            keep = ~finished
            self._flows = [f for f, k in zip(self._flows, keep.tolist(), strict=True) if k]
            left, self._cap, self._share = left[keep], self._cap[keep], self._share[keep]
        self._left = left

    def _update(self) -> None:
        """Recompute the rates of the active flows and keep one timeout at the earliest completion."""
        flows, cap, share = self._flows, self._cap, self._share
        on_hbm, on_l2 = float(cap @ share), float(cap @ (1.0 - share))
        if on_hbm <= self.hbm_bytes_per_cycle and on_l2 <= self.l2_bytes_per_cycle:
            rate = cap  # nothing saturates (the common case): every flow at its own cap
        else:
            rate = np.asarray(fair_rates(cap, share, self.hbm_bytes_per_cycle, self.l2_bytes_per_cycle))
        self._rate = rate
        self._record(float(rate @ share))
        if not flows:
            self._version += 1
            self._wake_at = None
            return
        now = self.env.now
        wake = now + math.ceil(float((self._left / rate).min()) - _EPS_CYCLES)
        if wake == self._wake_at:  # the live timeout already fires then
            return
        self._version += 1
        self._wake_at = wake
        self.env.timeout(wake - now, value=self._version).callbacks.append(self._on_timeout)

    def _on_timeout(self, event: simpy.Event) -> None:
        if event.value != self._version:  # superseded by a start that moved the earliest completion
            return
        self._wake_at = None
        self._advance()
        self._update()

    def _record(self, hbm_rate: float) -> None:
        now, timeline = self.env.now, self.timeline
        if timeline[-1][1] == hbm_rate:
            return
        if timeline[-1][0] == now:  # several changes in one cycle: only the last one lasts
            timeline.pop()
            if timeline and timeline[-1][1] == hbm_rate:
                return
        timeline.append((now, hbm_rate))

    # --- statistics -----------------------------------------------------------------------------

    def _settle_timeline(self) -> None:
        """Fold the rate changes of uncontended transfers into `timeline` (sum of rates over time)."""
        if not self._changes:
            return
        changes, self._changes = sorted(self._changes), []
        rate = self.timeline[-1][1]
        for at, delta in changes:
            rate += delta
            if abs(rate) < 1e-9:
                rate = 0.0
            if self.timeline[-1][0] == at:
                self.timeline.pop()
            if not self.timeline or self.timeline[-1][1] != rate:
                self.timeline.append((at, rate))

    def average_hbm_bytes_per_cycle(self, start: float, end: float) -> float:
        """Mean HBM bytes per cycle over [start, end), from the rate timeline."""
        if end <= start:
            raise ValueError(f"an average needs start < end, got {start} and {end}")
        self._settle_timeline()
        total = 0.0
        for (t0, rate), (t1, _) in pairwise([*self.timeline, (math.inf, 0.0)]):
            lo, hi = max(t0, start), min(t1, end)
            if hi > lo:
                total += rate * (hi - lo)
        return total / (end - start)

    def peak_hbm_bytes_per_cycle(self) -> float:
        """The highest total HBM rate at any moment."""
        self._settle_timeline()
        return max(rate for _, rate in self.timeline)

    def hbm_timeline(self) -> list[tuple[float, float]]:
        """(cycle, HBM bytes per cycle) at each change of the total HBM rate."""
        self._settle_timeline()
        return self.timeline

    def gbps(self, bytes_per_cycle: float) -> float:
        """Bytes per cycle in GB/s at this chip's clock."""
        return bytes_per_cycle * self.config.clock_ghz

    def stats(self) -> dict[str, float]:
        """Totals so far: bytes by source, L2 hit rate (hit bytes / read bytes), peak HBM rate."""
        return {
            "transfers": self.transfers,
            "hit_transfers": self.hits,
            "read_bytes": self.read_bytes,
            "write_bytes": self.write_bytes,
            "hbm_read_bytes": self.hbm_read_bytes,
            "hbm_write_bytes": self.hbm_write_bytes,
            "l2_hit_bytes": self.l2_hit_bytes,
            "l2_hit_rate": self.l2_hit_bytes / self.read_bytes if self.read_bytes else 0.0,
            "peak_hbm_bytes_per_cycle": self.peak_hbm_bytes_per_cycle(),
            "peak_hbm_gbps": self.gbps(self.peak_hbm_bytes_per_cycle()),
        }


def fair_rates(caps: Sequence[float], hbm_shares: Sequence[float], hbm: float, l2: float) -> list[float]:
    """Max-min fair rates for flows that each put `hbm_share` of their rate on HBM and the rest on L2.

    Progressive filling: raise every unfrozen flow's rate together; a flow freezes at its cap, and
    every unfrozen flow using a resource freezes when that resource saturates.
    """
    n = len(caps)
    if n == 0:
        return []
    cap = np.asarray(caps, dtype=np.float64)
    on_hbm = np.asarray(hbm_shares, dtype=np.float64)
    on_l2 = 1.0 - on_hbm
    rate = np.zeros(n)
    free = np.ones(n, dtype=bool)
    left = {"hbm": hbm, "l2": l2}
    use = {"hbm": on_hbm, "l2": on_l2}
    size = dict(left)
    while free.any():
        step = float((cap - rate)[free].min())
        demand = {k: float(u[free].sum()) for k, u in use.items()}
        bound = {k: left[k] / demand[k] for k in left if demand[k] > 0}
        step = min([step, *bound.values()])
        rate[free] += step
        for k in left:
            left[k] -= step * demand[k]
        frozen = cap - rate <= _SATURATED * cap
        for k, b in bound.items():
            if b <= step or left[k] <= _SATURATED * size[k]:  # `b <= step`: it bound, so progress is sure
                frozen |= use[k] > 0
        free &= ~frozen
    return rate.tolist()
