"""The chip's memory system: all GM timing. Every GM access shares HBM with the others and may hit in L2.

The cost model says what a transfer moves and on which DMA path (`npusim.costs.Transfer`); this
module says when: `MemorySystem.start` gives the cycle the DMA engine is free again and the cycle
the data has landed (`GmTiming`), and nothing else in the simulator times GM.

- Bytes: a transfer moves its bytes at most at its path's rate (`cap`, bytes per cycle); at any
  moment each active transfer (a `Flow`) gets a max-min fair rate given two shared resources, HBM
  and L2 (bandwidth_gbps / clock_ghz bytes per cycle each). A read with hit fraction h (`npusim.l2`)
  puts h of its rate on L2 and 1 - h on HBM; a write puts all of it on L2 (write-back), and a
  transfer whose touch evicts dirty lines also puts their bytes on HBM. A tensor that bypasses L2
  (its cache hint) reads and writes HBM only.
- Then the path's per-row cost for a region whose rows are not contiguous in GM: the engine is
  busy until `occupied` = last byte + ceil(rows x row_cycles).
- Then the latency: the path's latency_cycles, or l2.hit_latency_cycles for a read whose every line
  was resident: the data has landed at `done` = occupied + latency.

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
from typing import NamedTuple

import numpy as np
import simpy

from isa.program import Tensor
from isa.regions import GmRegion
from npusim.config import HardwareConfig
from npusim.costs import GmPath, Transfer, cycles, path_rate
from npusim.l2 import L2Lines

_EPS_CYCLES = 1e-9  # as npusim.costs: an exact quotient must not round up to the next cycle
_DONE_CYCLES = 1e-6  # a flow with less time than this left is done: float residue of rate x time
_SATURATED = 1e-12  # relative slack below which a resource or a cap counts as full
_FAIR_SEEN_MAX = 4096  # mixes of flows whose fair rates are kept (a bound on memory, not on speed)


class GmTiming(NamedTuple):
    """When a GM transfer that starts now frees its DMA engine and when its data has landed.

    With `pending` None, both cycles are known at the start (no other flow can slow this one).
    Otherwise they depend on traffic still to come: `pending` succeeds with the Flow when the last
    byte has moved, and `flow.timing` then holds the known GmTiming.
    """

    pending: simpy.Event | None
    occupied: int
    done: int


class Use(NamedTuple):
    """What one transfer asks of the shared resources, per byte it moves."""

    hit_fraction: float  # of its lines resident in L2 when it started
    on_hbm: float  # HBM bytes: missed reads, bypassed writes, and dirty lines it evicted (may exceed 1)
    on_l2: float  # L2 bytes: hits, and writes into L2


class Flow:
    """One GM transfer: its completion event, whether it hit in L2, and when it ended.

    While it is in flight, its rate and the bytes it has left live in the MemorySystem's arrays.
    """

    __slots__ = ("region", "write", "nbytes", "cap", "hit", "hit_fraction", "done", "end", "on_hbm", "on_l2",
                 "after", "timing")

    def __init__(self, env: simpy.Environment, region: GmRegion, write: bool, nbytes: float, cap: float,
                 use: Use) -> None:
        self.region, self.write, self.nbytes, self.cap = region, write, float(nbytes), float(cap)
        self.hit = use.hit_fraction == 1.0 and not write  # every line of the region was resident
        self.hit_fraction = use.hit_fraction  # resident lines / lines of the region
        self.on_hbm, self.on_l2 = use.on_hbm, use.on_l2  # HBM and L2 bytes per byte it moves
        self.done: simpy.Event = env.event()  # succeeds, with the flow, when the last byte arrives
        self.end: float | None = None
        self.after: tuple[int, int] = (0, 0)  # cycles of per-row cost, then of latency, after the bytes
        self.timing: GmTiming | None = None  # once ended: when the DMA engine is free, the data landed


class _Active:
    """The flows in flight, in start order, and their numbers as the first `n` columns of one array.

    Rows of `data`: cap, HBM bytes and L2 bytes per byte moved, bytes left, rate. A start writes one
    column (the array doubles when full); an end moves the survivors forward, keeping their order:
    flows that end in the same cycle complete in start order, and the float sums over the rows
    run in that order too, so the cycles do not depend on how the slots are kept.
    """

    __slots__ = ("flows", "n", "data", "live")

    def __init__(self, size: int = 64) -> None:
        self.flows: list[Flow] = []
        self.n = 0
        self.data = np.empty((5, size))
        self.live = self.data[:, :0]  # the first `n` columns (a view: writing to it updates the flows)

    def add(self, flow: Flow) -> None:
        """Append `flow` with rate 0: the next rate update, in this same cycle, sets it."""
        n = self.n
        if n == self.data.shape[1]:
            grown = np.empty((5, 2 * n))
            grown[:, :n] = self.data
            self.data = grown
        self.data[:, n] = (flow.cap, flow.on_hbm, flow.on_l2, flow.nbytes, 0.0)
        self.flows.append(flow)
        self.n = n + 1
        self.live = self.data[:, :n + 1]

    def drop(self, ended: list[int], finished: np.ndarray) -> None:
        """Remove the flows at `ended` (ascending; `finished` marks them over the live columns);
        the rest keep their order."""
        n, data = self.n, self.data
        if len(ended) == 1:  # the common case when flows end one by one: shift the tail left
            i = ended[0]
            data[:, i:n - 1] = data[:, i + 1:n]
        else:
            data[:, :n - len(ended)] = data[:, :n][:, ~finished]
        for i in reversed(ended):
            del self.flows[i]
        self.n = n - len(ended)
        self.live = data[:, :self.n]


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
        self.l2 = L2Lines(config, tensors)
        self._paths = {path: path_rate(path, config) for path in GmPath}
        self._hit_latency = config.l2.hit_latency_cycles
        self._active = _Active()  # in start order: ties and iteration are deterministic
        self._updated = env.now  # when the bytes each flow has left were last brought up to date
        self._checked = True  # no flow can have ended since `_advance` last looked, unless time passes
        self._fair_seen: dict[bytes, np.ndarray] = {}  # mixes of flows -> their fair rates
        self._version = 0  # of the live timeout; an older one firing is ignored
        self._wake_at: float | None = None
        self._update_due = False  # a recomputation of the rates is scheduled for the current cycle
        self.read_bytes = self.write_bytes = 0.0
        self.hbm_read_bytes = self.hbm_write_bytes = self.l2_hit_bytes = 0.0
        self.l2_write_bytes = self.writeback_bytes = 0.0  # writes kept in L2; dirty lines evicted to HBM
        self.transfers = self.hits = 0
        self.last_done: float = env.now
        self.timeline: list[tuple[float, float]] = [(env.now, 0.0)]  # (cycle, HBM bytes per cycle)
        # A write-back adds at most the evicting transfer's own lines to HBM: where dirty lines may be
        # evicted (more GM than L2 holds), a flow may ask HBM for up to twice its rate.
        hbm_demand = peak_demand * (2.0 if self.l2.gm_bytes > config.l2.capacity_bytes else 1.0)
        self.uncontended = (hbm_demand <= self.hbm_bytes_per_cycle
                            and peak_demand <= self.l2_bytes_per_cycle)
        self._changes: list[tuple[float, float]] = []  # uncontended: (cycle, HBM rate change)

    # --- transfers ------------------------------------------------------------------------------

    def transfer(self, region: GmRegion, write: bool, nbytes: float, cap: float) -> Flow:
        """Start moving `nbytes` for `region` now, at most `cap` bytes per cycle; wait on `.done`.

        `nbytes` is what the DMA engine moves (it may exceed the region's bytes: whole bursts).
        Raises ValueError for a negative size, a non-positive cap or a region outside its tensor.
        """
        if nbytes < 0 or cap <= 0:
            raise ValueError(f"a transfer needs nbytes >= 0 and cap > 0 bytes per cycle, "
                             f"got {nbytes} and {cap}")
        flow = Flow(self.env, region, write, nbytes, cap, self._account(region, write, nbytes))
        if self.uncontended:
            cycles = self._at_cap(nbytes, cap, flow.on_hbm)
            flow.end = self.env.now + cycles
            flow.done = self.env.timeout(cycles, value=flow)
            return flow
        self._advance()
        self._active.add(flow)  # at rate 0 until the update: no time passes before it
        if not flow.nbytes:
            self._checked = False  # nothing to move: it ends at the next look, at rate 0
        self._update_soon()
        return flow

    def start(self, transfer: Transfer) -> GmTiming:
        """Start a DMA transfer now: when its engine is free again and its data has landed.

        The timing engine's hot path. When no flow can slow another (`uncontended`), the cycles are
        known at once and no Flow and no event are made.
        """
        cap, row_cycles, latency = self._paths[transfer.path]
        overhead = cycles(transfer.rows * row_cycles) if transfer.rows else 0
        write = transfer.path.write
        if not self.uncontended:
            flow = self.transfer(transfer.region, write, transfer.moved, cap)
            flow.after = (overhead, latency if write or not flow.hit else self._hit_latency)
            return GmTiming(flow.done, -1, -1)
        use = self._account(transfer.region, write, transfer.moved)
        moved = self._at_cap(transfer.moved, cap, use.on_hbm)
        occupied = self.env.now + moved + overhead
        hit = use.hit_fraction == 1.0 and not write
        return GmTiming(None, occupied, occupied + (self._hit_latency if hit else latency))

    def _account(self, region: GmRegion, write: bool, nbytes: float) -> Use:
        """Touch the region's lines in L2 and count its bytes: what it asks of HBM and L2."""
        touch = self.l2.touch(region, write)
        self.transfers += 1
        wb = touch.writeback_bytes
        self.hbm_write_bytes += wb
        self.writeback_bytes += wb
        extra = wb / nbytes if nbytes else 0.0
        if write:
            self.write_bytes += nbytes
            if not touch.cached:
                self.hbm_write_bytes += nbytes
                return Use(0.0, 1.0, 0.0)
            self.l2_write_bytes += nbytes
            return Use(touch.hit_fraction, extra, 1.0)
        fraction = touch.hit_fraction
        if fraction == 1.0:
            self.hits += 1
        self.read_bytes += nbytes
        self.hbm_read_bytes += nbytes * (1.0 - fraction)
        self.l2_hit_bytes += nbytes * fraction
        return Use(fraction, 1.0 - fraction + extra, fraction)

    def _at_cap(self, nbytes: float, cap: float, on_hbm: float) -> int:
        """Cycles of a transfer that runs at its cap throughout; notes its HBM rate for the timeline."""
        cycles = max(0, math.ceil(nbytes / cap - _EPS_CYCLES))
        now = self.env.now
        if now + cycles > self.last_done:
            self.last_done = now + cycles
        if on_hbm:
            rate = cap * on_hbm
            self._changes += ((now, rate), (now + cycles, -rate))
        return cycles

    def _advance(self) -> None:
        """Bring every active flow's progress up to now and complete those whose last byte arrived.

        With no time passed and the rates those it last checked, nothing can have ended: the
        starts of one cycle (dozens when cores start together) then cost nothing here.
        """
        now = self.env.now
        elapsed = now - self._updated
        self._updated = now
        active = self._active
        if not active.n or (not elapsed and self._checked):
            return
        self._checked = True
        _, _, _, left, rate = active.live
        if elapsed:
            left -= rate * elapsed
        finished = left <= rate * _DONE_CYCLES
        ended = finished.nonzero()[0].tolist()
        if not ended:
            return
        flows = active.flows
        for i in ended:  # in start order
            flow = flows[i]
            flow.end = now
            occupied = now + flow.after[0]
            flow.timing = GmTiming(None, occupied, occupied + flow.after[1])
            flow.done.succeed(flow)
        self.last_done = now
        active.drop(ended, finished)

    def _update_soon(self) -> None:
        """Recompute the rates once, later in this cycle, however many flows start in it.

        No time passes before it runs, so the rates are those after the cycle's last start, as if
        recomputed after each; cores started together start their transfers in the same cycle, and
        recomputing once for all of them is the difference between one update and dozens.
        """
        if not self._update_due:
            self._update_due = True
            self.env.timeout(0).callbacks.append(self._due)

    def _due(self, event: simpy.Event) -> None:
        self._update_due = False
        self._update()

    def _update(self) -> None:
        """Recompute the rates of the active flows and keep one timeout at the earliest completion."""
        active = self._active
        live = active.live
        cap, on_hbm, on_l2, left, rate = live
        if float(cap @ on_hbm) <= self.hbm_bytes_per_cycle and float(cap @ on_l2) <= self.l2_bytes_per_cycle:
            rate[:] = cap  # nothing saturates (the common case): every flow at its own cap
        else:
            rate[:] = self._fair(live)
        self._checked = False
        self._record(float(rate @ on_hbm))
        if not active.n:
            self._version += 1
            self._wake_at = None
            return
        now = self.env.now
        wake = now + math.ceil(float(np.minimum.reduce(left / rate)) - _EPS_CYCLES)
        if wake == self._wake_at:  # the live timeout already fires then
            return
        self._version += 1
        self._wake_at = wake
        self.env.timeout(wake - now, value=self._version).callbacks.append(self._on_timeout)

    def _fair(self, live: np.ndarray) -> np.ndarray:
        """The max-min fair rates of the live flows (`_Active` columns).

        A saturated steady state repeats the same mix of flows in the same order (a 2-block
        paged-attention run has ~370 distinct mixes in ~7300 fillings): the rates of a mix seen
        before are its stored result, bit for bit.
        """
        key = live[:3].tobytes()  # caps, HBM and L2 use, in start order
        rates = self._fair_seen.get(key)
        if rates is None:
            if len(self._fair_seen) >= _FAIR_SEEN_MAX:
                self._fair_seen.clear()
            cap, on_hbm, on_l2 = live[:3]
            rates = _fill(cap, on_hbm, on_l2, self.hbm_bytes_per_cycle, self.l2_bytes_per_cycle)
            self._fair_seen[key] = rates
        return rates

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
            "l2_write_bytes": self.l2_write_bytes,
            "writeback_bytes": self.writeback_bytes,
            "l2_dirty_bytes": self.l2.dirty_bytes,
            "l2_hit_rate": self.l2_hit_bytes / self.read_bytes if self.read_bytes else 0.0,
            "peak_hbm_bytes_per_cycle": self.peak_hbm_bytes_per_cycle(),
            "peak_hbm_gbps": self.gbps(self.peak_hbm_bytes_per_cycle()),
        }


def fair_rates(caps: Sequence[float], on_hbm: Sequence[float], hbm: float, l2: float,
               on_l2: Sequence[float] | None = None) -> list[float]:
    """Max-min fair rates for flows that each use `on_hbm` HBM bytes and `on_l2` L2 bytes per byte
    they move (`on_l2` defaults to the rest of each byte: 1 - on_hbm).

    Progressive filling: raise every unfrozen flow's rate together; a flow freezes at its cap, and
    every unfrozen flow using a resource freezes when that resource saturates.
    """
    if len(caps) == 0:
        return []
    hbm_use = np.asarray(on_hbm, dtype=np.float64)
    l2_use = 1.0 - hbm_use if on_l2 is None else np.asarray(on_l2, dtype=np.float64)
    return _fill(np.asarray(caps, dtype=np.float64), hbm_use, l2_use, hbm, l2).tolist()


def _fill(cap: np.ndarray, hbm_use: np.ndarray, l2_use: np.ndarray, hbm: float, l2: float) -> np.ndarray:
    """`fair_rates` on arrays: the memory system's hot path, two resources spelled out.

    Every unfrozen flow has the same rate (`level`), so each round works on the unfrozen flows
    alone, packed in their order: the same float operations as raising each one's rate in place.
    """
    rate = np.zeros(len(cap))
    index = np.arange(len(cap))  # of the unfrozen flows; `cap`, `hbm_use`, `l2_use` keep only theirs
    level, hbm_left, l2_left = 0.0, hbm, l2
    while len(index):
        step = float(np.minimum.reduce(cap)) - level  # the least headroom below a cap
        hbm_demand, l2_demand = float(np.add.reduce(hbm_use)), float(np.add.reduce(l2_use))
        hbm_bound = hbm_left / hbm_demand if hbm_demand > 0 else math.inf
        l2_bound = l2_left / l2_demand if l2_demand > 0 else math.inf
        step = min(step, hbm_bound, l2_bound)
        level += step
        hbm_left -= step * hbm_demand
        l2_left -= step * l2_demand
        frozen = cap - level <= _SATURATED * cap
        # `bound <= step`: the resource bound the step, so it is full and progress is sure
        if hbm_demand > 0 and (hbm_bound <= step or hbm_left <= _SATURATED * hbm):
            frozen |= hbm_use > 0
        if l2_demand > 0 and (l2_bound <= step or l2_left <= _SATURATED * l2):
            frozen |= l2_use > 0
        rate[index[frozen]] = level
        keep = ~frozen
        index, cap, hbm_use, l2_use = index[keep], cap[keep], hbm_use[keep], l2_use[keep]
    return rate
