"""The memory system's bookkeeping against the plain model it replaces, to the last bit.

`PlainMemory` keeps the active flows in arrays grown by `np.append`, brings every flow up to date
at every start and fills rates afresh by raising each unfrozen flow's rate in place: the simple
implementation. The memory system's slot columns, its skipped updates within a cycle, its packed
progressive filling and its stored rates of mixes seen before must give the same completion
cycles, the same completion order and the same HBM timeline, float for float.
"""

import math

import numpy as np
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from isa import DType, GmRegion, Tensor
from npusim.config import load_preset
from npusim.memsys import _DONE_CYCLES, _EPS_CYCLES, _SATURATED, Flow, GmTiming, MemorySystem, _fill

LINE = 512


def plain_fill(cap, hbm_use, l2_use, hbm, l2):
    """Progressive filling with a rate per flow raised in place, one resource at a time."""
    rate = np.zeros(len(cap))
    free = np.ones(len(cap), dtype=bool)
    hbm_left, l2_left = hbm, l2
    while free.any():
        step = float((cap - rate)[free].min())
        hbm_demand, l2_demand = float(hbm_use[free].sum()), float(l2_use[free].sum())
        hbm_bound = hbm_left / hbm_demand if hbm_demand > 0 else math.inf
        l2_bound = l2_left / l2_demand if l2_demand > 0 else math.inf
        step = min(step, hbm_bound, l2_bound)
        rate[free] += step
        hbm_left -= step * hbm_demand
        l2_left -= step * l2_demand
        frozen = cap - rate <= _SATURATED * cap
        if hbm_demand > 0 and (hbm_bound <= step or hbm_left <= _SATURATED * hbm):
            frozen |= hbm_use > 0
        if l2_demand > 0 and (l2_bound <= step or l2_left <= _SATURATED * l2):
            frozen |= l2_use > 0
        free &= ~frozen
    return rate


class PlainMemory(MemorySystem):
    """The memory system with the plain bookkeeping: arrays appended to, every start advancing."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.flows = []
        self.cap = self.on_hbm = self.on_l2 = self.left = self.rate = np.empty(0)

    def transfer(self, region, write, nbytes, cap):
        self._advance()
        flow = Flow(self.env, region, write, nbytes, cap, self._account(region, write, nbytes))
        self.flows.append(flow)
        self.cap = np.append(self.cap, flow.cap)
        self.on_hbm = np.append(self.on_hbm, flow.on_hbm)
        self.on_l2 = np.append(self.on_l2, flow.on_l2)
        self.left = np.append(self.left, flow.nbytes)
        self.rate = np.append(self.rate, 0.0)
        self._update_soon()
        return flow

    def _advance(self):
        now = self.env.now
        elapsed, self._updated = now - self._updated, now
        if not self.flows:
            return
        left = self.left - self.rate * elapsed
        finished = left <= self.rate * _DONE_CYCLES
        for i in np.flatnonzero(finished).tolist():
            flow = self.flows[i]
            flow.end = now
            occupied = now + flow.after[0]
            flow.timing = GmTiming(None, occupied, occupied + flow.after[1])
            flow.done.succeed(flow)
            self.last_done = now
        keep = ~finished
        self.flows = [f for f, k in zip(self.flows, keep.tolist(), strict=True) if k]
        self.left, self.cap, self.rate = left[keep], self.cap[keep], self.rate[keep]
        self.on_hbm, self.on_l2 = self.on_hbm[keep], self.on_l2[keep]

    def _update(self):
        cap, on_hbm, on_l2 = self.cap, self.on_hbm, self.on_l2
        if float(cap @ on_hbm) <= self.hbm_bytes_per_cycle and float(cap @ on_l2) <= self.l2_bytes_per_cycle:
            self.rate = cap
        else:
            self.rate = plain_fill(cap, on_hbm, on_l2, self.hbm_bytes_per_cycle, self.l2_bytes_per_cycle)
        self._record(float(self.rate @ on_hbm))
        if not self.flows:
            self._version += 1
            self._wake_at = None
            return
        now = self.env.now
        wake = now + math.ceil(float((self.left / self.rate).min()) - _EPS_CYCLES)
        if wake == self._wake_at:
            return
        self._version += 1
        self._wake_at = wake
        self.env.timeout(wake - now, value=self._version).callbacks.append(self._on_timeout)


def bits(a) -> bytes:
    return np.asarray(a, dtype=np.float64).tobytes()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_packed_filling_gives_the_rates_of_filling_in_place(data):
    n = data.draw(st.integers(1, 40))
    caps = st.sampled_from([32.0, 64.0, 128.0, 100.0 / 3, 1e9]) | st.floats(0.5, 300.0)
    uses = st.sampled_from([0.0, 1.0, 0.5, 0.25, 1.5, 2.0]) | st.floats(0.0, 2.0)
    cap = np.array(data.draw(st.lists(caps, min_size=n, max_size=n)))
    hbm_use = np.array(data.draw(st.lists(uses, min_size=n, max_size=n)))
    l2_use = np.array(data.draw(st.lists(uses, min_size=n, max_size=n)))
    hbm = data.draw(st.sampled_from([888.8888888888889, 160.0, 50.0]) | st.floats(1.0, 2000.0))
    l2 = data.draw(st.sampled_from([4000.0 / 1.8, 100.0, 40.0]) | st.floats(1.0, 5000.0))
    expected = plain_fill(cap, hbm_use, l2_use, hbm, l2)
    assert bits(_fill(cap, hbm_use, l2_use, hbm, l2)) == bits(expected)


class LoggingEnvironment(simpy.Environment):
    """An environment that notes every event it schedules: the engine's tie-breaks follow that order."""

    def __init__(self):
        super().__init__()
        self.scheduled = []

    def schedule(self, event, priority=simpy.core.NORMAL, delay=0):
        self.scheduled.append((self.now, delay, priority, type(event).__name__))
        super().schedule(event, priority, delay)


def run(ms, plan, tensors):
    """Start each (start, tensor index, rows, write, nbytes, cap) in its own process: the log of
    (plan index, completion cycle) in completion order, the HBM timeline, and every event scheduled."""
    env, log = ms.env, []

    def one(i, start, t, nrows, write, nbytes, cap):
        yield env.timeout(start)
        tensor = tensors[t]
        flow = ms.transfer(GmRegion(tensor.name, 0, 0, nrows, 128, DType.FP32), write, nbytes, cap)
        yield flow.done
        log.append((i, env.now, flow.end))

    for i, item in enumerate(plan):
        env.process(one(i, *item))
    env.run()
    return log, ms.hbm_timeline(), ms.last_done, env.scheduled


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_slot_columns_and_skipped_updates_keep_every_cycle_of_the_plain_model(data):
    """Bursts of starts in one cycle, zero-byte transfers, hits and misses, saturated HBM and L2."""
    hbm, l2 = data.draw(st.sampled_from([(32.0, 4000.0), (160.0, 40.0), (100.0, 100.0), (300.0, 250.0)]))
    config = load_preset("910b2").replace({
        "clock_ghz": data.draw(st.sampled_from([1.0, 1.8])), "hbm.bandwidth_gbps": hbm,
        "l2.bandwidth_gbps": l2, "l2.capacity_bytes": data.draw(st.sampled_from([8, 64])) * LINE,
        "l2.line_bytes": LINE})
    tensors = [Tensor(f"t{i}", DType.FP32, (16, 128)) for i in range(4)]
    item = st.tuples(st.sampled_from([0, 0, 0, 5, 17, 40]) | st.integers(0, 200),  # start: bursts at 0
                     st.integers(0, 3), st.integers(1, 16), st.booleans(),
                     st.sampled_from([0, 512, 4096, 1001]) | st.integers(0, 20_000),
                     st.sampled_from([64.0, 32.0, 100.0 / 3]) | st.floats(1.0, 200.0))
    plan = data.draw(st.lists(item, min_size=1, max_size=30))
    fast = run(MemorySystem(LoggingEnvironment(), config, tensors), plan, tensors)
    plain = run(PlainMemory(LoggingEnvironment(), config, tensors), plan, tensors)
    assert fast == plain


def test_stored_rates_are_per_mix_of_caps_hbm_and_l2_use():
    """Mixes that differ only in L2 use (a write that evicts dirty lines and a half-hit read can
    both put half a byte on HBM) get their own rates, and the same mix in another order its own."""
    config = load_preset("910b2").replace({"clock_ghz": 1.0, "hbm.bandwidth_gbps": 60.0,
                                           "l2.bandwidth_gbps": 50.0})
    ms = MemorySystem(simpy.Environment(), config, [Tensor("x", DType.FP32, (4, 128))])
    mixes = [([64.0, 64.0, 32.0], [0.5, 1.0, 0.0], [1.0, 0.0, 1.0]),
             ([64.0, 64.0, 32.0], [0.5, 1.0, 0.0], [0.5, 0.0, 1.0]),
             ([32.0, 64.0, 64.0], [0.0, 1.0, 0.5], [1.0, 0.0, 0.5])]
    for _ in range(2):  # the second time round, from the stored rates
        for mix in mixes:
            live = np.array([*mix, [0.0] * 3, [0.0] * 3])
            expected = plain_fill(*live[:3], ms.hbm_bytes_per_cycle, ms.l2_bytes_per_cycle)
            assert bits(ms._fair(live)) == bits(expected)
    assert len({bits(ms._fair(np.array([*mix, [0.0] * 3, [0.0] * 3]))) for mix in mixes}) == 3
