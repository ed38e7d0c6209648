"""The memory system: HBM sharing, L2 hits and evictions, and statistics, against closed forms."""

import math

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from isa import DType, GmRegion, Tensor
from npusim.config import load_preset
from npusim.memsys import MemorySystem, fair_rates

BASE = load_preset("910b2")
FP32 = DType.FP32
LINE = 512  # the preset's line; a [rows, 128] fp32 tensor has one line per row


def config(clock: float = 1.0, hbm: float = 160.0, l2: float = 4000.0, l2_lines: int = 1 << 16):
    """The preset at a 1 GHz clock, so that GB/s figures are bytes per cycle."""
    return BASE.replace({"clock_ghz": clock, "hbm.bandwidth_gbps": hbm, "l2.bandwidth_gbps": l2,
                         "l2.capacity_bytes": l2_lines * LINE, "l2.line_bytes": LINE})


def rows(name: str, n: int) -> Tensor:
    """A [n, 128] fp32 tensor: n lines, one per row."""
    return Tensor(name, FP32, (n, 128))


def whole(t: Tensor) -> GmRegion:
    r, c = t.matrix_shape
    return GmRegion(t.name, 0, 0, r, c, t.dtype)


def run(ms: MemorySystem, plan):
    """Start each (name, start, region, write, nbytes, cap) in its own process; log (name, cycle) at done."""
    env, log, flows = ms.env, [], {}

    def one(name, start, region, write, nbytes, cap):
        yield env.timeout(start)
        flow = flows[name] = ms.transfer(region, write, nbytes, cap)
        yield flow.done
        assert flow.end == env.now
        log.append((name, env.now))

    for item in plan:
        env.process(one(*item))
    env.run()
    return log, flows


def test_one_flow_alone_ends_at_ceil_bytes_over_its_cap():
    t = rows("x", 512)
    ms = MemorySystem(simpy.Environment(), BASE, [t])  # 1.8 GHz: HBM 888.9 B/cycle, above the caps
    log, _ = run(ms, [("a", 37, whole(t), False, 100_001, 160.0), ("b", 1000, whole(t), True, 16_000, 160.0)])
    assert log == [("a", 37 + math.ceil(100_001 / 160)), ("b", 1000 + 100)]  # 16000/160 exactly: no round-up


def test_one_flow_alone_is_held_to_hbm_when_its_cap_is_higher():
    a, b = rows("a", 4), rows("b", 4)
    ms = MemorySystem(simpy.Environment(), config(clock=1.8, hbm=100.0), [a, b])  # 55.56 B/cycle
    log, _ = run(ms, [("a", 0, whole(a), False, 1000, 160.0), ("b", 100, whole(b), False, 1001, 160.0)])
    assert log == [("a", 18), ("b", 100 + 19)]  # 1000 / (100 / 1.8) = 18 exactly; 1001 -> 18.02


def test_an_exact_quotient_does_not_round_up_to_the_next_cycle():
    t = rows("x", 32)
    ms = MemorySystem(simpy.Environment(), config(clock=1.8, hbm=300.0), [t])
    assert 10_500 / ms.hbm_bytes_per_cycle > 63  # 63.00000000000001 in floats; 63 exactly in reals
    log, _ = run(ms, [("a", 0, whole(t), False, 10_500, 1000.0)])
    assert log == [("a", 63)]


def test_equal_flows_over_hbm_share_it_and_end_together():
    ts = [rows(f"x{i}", 8) for i in range(4)]
    ms = MemorySystem(simpy.Environment(), config(hbm=2.5 * 64), ts)
    log, _ = run(ms, [(t.name, 0, whole(t), False, 1001, 64.0) for t in ts])
    assert log == [(t.name, math.ceil(4 * 1001 / 160)) for t in ts]  # 26, not 16 as alone
    assert ms.timeline == [(0, 160.0), (26, 0.0)]


def test_flows_below_saturation_each_run_at_their_cap():
    ts = [rows(f"x{i}", 8) for i in range(2)]
    ms = MemorySystem(simpy.Environment(), config(hbm=2.5 * 64), ts)
    log, flows = run(ms, [(t.name, 0, whole(t), False, 1001, 64.0) for t in ts])
    assert log == [("x0", 16), ("x1", 16)]
    assert ms.timeline == [(0, 128.0), (16, 0.0)]


def test_a_flow_starting_mid_way_slows_the_running_one():
    a, b = rows("a", 16), rows("b", 4)
    ms = MemorySystem(simpy.Environment(), config(clock=2.0, hbm=200.0), [a, b])  # HBM 100 B/cycle
    log, _ = run(ms, [("a", 0, whole(a), False, 8000, 80.0), ("b", 50, whole(b), False, 2000, 80.0)])
    # a alone at 80 until 50 (4000 left); both at 50 until b's 2000 are done at 90 (a: 2000 left);
    # a alone at 80 again: 25 more cycles. Alone, a would have ended at 100.
    assert log == [("b", 90), ("a", 115)]
    assert ms.timeline == [(0, 80.0), (50, 100.0), (90, 80.0), (115, 0.0)]
    assert ms.peak_hbm_bytes_per_cycle() == 100.0
    assert ms.gbps(ms.peak_hbm_bytes_per_cycle()) == 200.0
    assert ms.average_hbm_bytes_per_cycle(0, 115) == pytest.approx(10_000 / 115)
    assert ms.average_hbm_bytes_per_cycle(40, 60) == pytest.approx((80 * 10 + 100 * 10) / 20)
    assert ms.average_hbm_bytes_per_cycle(0, 230) == pytest.approx(10_000 / 230)  # idle after 115


def test_completions_in_one_cycle_follow_start_order():
    a, b = rows("a", 4), rows("b", 4)
    ms = MemorySystem(simpy.Environment(), config(), [a, b])
    # b starts first but ends later in exact time (15.8 vs 15.6): both land on cycle 16, b first.
    log, _ = run(ms, [("b", 0, whole(b), False, 1010, 64.0), ("a", 0, whole(a), False, 1000, 64.0)])
    assert log == [("b", 16), ("a", 16)]


def test_writes_go_into_l2_and_a_read_after_them_hits_at_l2s_rate():
    t = rows("x", 8)
    ms = MemorySystem(simpy.Environment(), config(hbm=160.0, l2=40.0), [t])
    log, flows = run(ms, [("w", 0, whole(t), True, 4096, 64.0), ("r", 200, whole(t), False, 4096, 64.0),
                          ("w2", 400, whole(t), True, 4096, 64.0)])
    assert flows["r"].hit and flows["r"].hit_fraction == 1.0
    # Write-back: both writes and the read move at L2's 40 B/cycle and cost HBM nothing.
    step = math.ceil(4096 / 40)  # 103
    assert log == [("w", step), ("r", 200 + step), ("w2", 400 + step)]
    assert ms.timeline == [(0, 0.0)]
    s = ms.stats()
    assert (s["hbm_read_bytes"], s["l2_hit_bytes"], s["hbm_write_bytes"]) == (0, 4096, 0)
    assert (s["l2_write_bytes"], s["l2_dirty_bytes"]) == (8192, 8 * LINE)
    assert s["l2_hit_rate"] == 1.0


def test_two_writes_share_l2_bandwidth():
    t = rows("x", 8)
    ms = MemorySystem(simpy.Environment(), config(hbm=160.0, l2=40.0), [t])
    log, _ = run(ms, [("w", 0, whole(t), True, 4096, 64.0), ("r", 64, whole(t), False, 4096, 64.0)])
    # w alone at 40 B/cycle for 64 cycles (2560 B), then both at 20: w's last 1536 B take 76.8 more.
    assert log[0] == ("w", 64 + math.ceil(1536 / 20))


def test_an_evicted_dirty_line_is_written_back_by_the_transfer_that_evicts_it():
    w, r = rows("w", 4), rows("r", 4)  # 4 lines each; L2 holds 6 lines
    ms = MemorySystem(simpy.Environment(), config(hbm=32.0, l2=4000.0, l2_lines=6), [w, r])
    log, flows = run(ms, [("w", 0, whole(w), True, 2048, 64.0), ("r", 100, whole(r), False, 2048, 64.0)])
    # r's 4 lines push out w's first 2: dirty, so r also moves their 1024 B to HBM, and its own
    # 2048 missed bytes come from HBM too: 3072 HBM bytes per 2048 it moves, at 32 B/cycle.
    assert log == [("w", math.ceil(2048 / 64)), ("r", 100 + math.ceil(3072 / 32))]
    assert flows["r"].on_hbm == pytest.approx(1.5)
    s = ms.stats()
    assert (s["writeback_bytes"], s["hbm_write_bytes"], s["l2_dirty_bytes"]) == (1024, 1024, 2 * LINE)


def test_a_dirty_line_touched_again_is_written_back_once_when_it_finally_leaves():
    w, r = rows("w", 2), rows("r", 3)  # L2 holds 4 lines
    ms = MemorySystem(simpy.Environment(), config(l2_lines=4), [w, r])
    run(ms, [("w", 0, whole(w), True, 1024, 64.0), ("w_read", 100, whole(w), False, 1024, 64.0),
             ("r1", 200, GmRegion("r", 0, 0, 2, 128, FP32), False, 1024, 64.0),
             ("r2", 300, whole(r), False, 1536, 64.0)])
    # Stamps: w 0-1, w_read 2-3 (w's lines, still dirty), r1 4-5, r2 6-8. A line stays while fewer than
    # 4 touches follow it (re-touches count: the model errs towards misses), so r1 retires nothing of
    # w (its lines were touched again at 2-3) and r2, at counter 9, retires stamps <= 4: both of w's
    # lines, written back once each.
    s = ms.stats()
    assert (s["writeback_bytes"], s["l2_dirty_bytes"]) == (2 * LINE, 0)


def test_a_tensor_that_bypasses_l2_never_hits_and_writes_straight_to_hbm():
    kv, out = Tensor("kv", FP32, (4, 128), l2=False), rows("out", 4)
    ms = MemorySystem(simpy.Environment(), config(hbm=32.0, l2=4000.0), [kv, out])
    _, flows = run(ms, [("r1", 0, whole(kv), False, 2048, 64.0), ("r2", 100, whole(kv), False, 2048, 64.0),
                        ("w", 200, whole(kv), True, 2048, 64.0)])
    assert not flows["r2"].hit and flows["r2"].hit_fraction == 0.0
    s = ms.stats()
    assert (s["hbm_read_bytes"], s["hbm_write_bytes"], s["l2_write_bytes"]) == (4096, 2048, 0)
    # The what-if: with the hints ignored, the second read hits.
    no_hints = config(hbm=32.0, l2=4000.0).replace({"l2.hints": False})
    ms = MemorySystem(simpy.Environment(), no_hints, [kv, out])
    _, flows = run(ms, [("r1", 0, whole(kv), False, 2048, 64.0), ("r2", 100, whole(kv), False, 2048, 64.0)])
    assert flows["r2"].hit


def test_a_read_first_time_misses():
    t = rows("x", 8)
    ms = MemorySystem(simpy.Environment(), config(hbm=160.0, l2=40.0), [t])
    log, flows = run(ms, [("r", 0, whole(t), False, 4096, 64.0)])
    assert not flows["r"].hit and log == [("r", 64)]
    assert ms.stats()["l2_hit_rate"] == 0.0


def test_a_partial_hit_splits_the_rate_between_l2_and_hbm():
    t = rows("x", 4)
    ms = MemorySystem(simpy.Environment(), config(hbm=20.0, l2=1000.0), [t])
    log, flows = run(ms, [("w", 0, GmRegion("x", 0, 0, 2, 128, FP32), True, 1024, 64.0),
                          ("r", 100, whole(t), False, 2048, 64.0)])
    assert flows["r"].hit_fraction == 0.5 and not flows["r"].hit
    # The write goes into L2 at its cap; the read takes half of its 40 B/cycle from HBM's 20.
    assert log == [("w", math.ceil(1024 / 64)), ("r", 100 + math.ceil(2048 / 40))]
    assert ms.timeline[-2:] == [(100, 20.0), (152, 0.0)]
    assert (ms.hbm_read_bytes, ms.l2_hit_bytes) == (1024, 1024)


@pytest.mark.parametrize(("lines", "hit"), [(8, True), (9, False)])
def test_a_region_larger_than_l2_evicts_itself(lines, hit):
    t = rows("x", lines)
    ms = MemorySystem(simpy.Environment(), config(l2_lines=8), [t])
    _, flows = run(ms, [("r1", 0, whole(t), False, lines * LINE, 64.0),
                        ("r2", 1000, whole(t), False, lines * LINE, 64.0)])
    assert flows["r2"].hit is hit
    assert flows["r2"].hit_fraction == (1.0 if hit else 0.0)  # LRU on a cyclic scan: all or nothing


@pytest.mark.parametrize(("b_lines", "hit"), [(4, True), (5, False)])
def test_other_traffic_evicts_a_region(b_lines, hit):
    a, b = rows("a", 4), rows("b", b_lines)
    ms = MemorySystem(simpy.Environment(), config(l2_lines=8), [a, b])
    _, flows = run(ms, [("a1", 0, whole(a), False, 2048, 64.0), ("b", 100, whole(b), False, 512, 64.0),
                        ("a2", 200, whole(a), False, 2048, 64.0)])
    assert flows["a2"].hit is hit


def test_strided_regions_count_only_their_own_lines():
    pad, x = Tensor("pad", DType.FP16, (3,)), Tensor("x", FP32, (8, 256))  # x: two lines per row
    ms = MemorySystem(simpy.Environment(), config(), [pad, x])
    assert (ms.l2.base("pad"), ms.l2.base("x")) == (0, LINE)  # aligned to a line
    even_left = GmRegion("x", 0, 0, 4, 128, FP32, row_step=2)
    even_right = GmRegion("x", 0, 128, 4, 128, FP32, row_step=2)
    odd_left = GmRegion("x", 1, 0, 4, 128, FP32, row_step=2)
    straddling = GmRegion("x", 0, 64, 4, 128, FP32, row_step=2)  # bytes 256..767 of each row
    np.testing.assert_array_equal(ms.l2.lines_of(even_left), [1, 5, 9, 13])
    np.testing.assert_array_equal(ms.l2.lines_of(even_right), [2, 6, 10, 14])
    np.testing.assert_array_equal(ms.l2.lines_of(odd_left), [3, 7, 11, 15])
    np.testing.assert_array_equal(ms.l2.lines_of(straddling), [1, 2, 5, 6, 9, 10, 13, 14])
    np.testing.assert_array_equal(ms.l2.lines_of(GmRegion("x", 2, 0, 3, 256, FP32)), [5, 6, 7, 8, 9, 10])
    np.testing.assert_array_equal(ms.l2.lines_of(GmRegion("x", 0, 0, 3, 128, FP32)), [1, 3, 5])  # part rows
    _, flows = run(ms, [("a", 0, even_left, False, 2048, 64.0), ("b", 100, even_right, False, 2048, 64.0),
                        ("c", 200, odd_left, False, 2048, 64.0), ("d", 300, even_left, False, 2048, 64.0),
                        ("e", 400, straddling, False, 2048, 64.0)])
    assert [flows[k].hit_fraction for k in "abcde"] == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_rows_sharing_a_line_count_it_once():
    x = Tensor("x", FP32, (8, 64))  # two rows per line
    ms = MemorySystem(simpy.Environment(), config(l2_lines=2), [x])
    half_rows = GmRegion("x", 0, 0, 4, 32, FP32)
    np.testing.assert_array_equal(ms.l2.lines_of(half_rows), [0, 1])
    _, flows = run(ms, [("a", 0, half_rows, False, 1024, 64.0), ("b", 100, half_rows, False, 1024, 64.0)])
    assert flows["b"].hit  # two lines touched, not four: they fit in an L2 of two lines


def test_stats_add_up():
    a, b = rows("a", 4), rows("b", 4)
    ms = MemorySystem(simpy.Environment(), config(), [a, b])
    run(ms, [("w", 0, whole(a), True, 2048, 64.0), ("r1", 100, whole(a), False, 2048, 64.0),
             ("r2", 100, GmRegion("b", 0, 0, 1, 128, FP32), False, 512, 64.0),
             ("r3", 200, GmRegion("b", 0, 0, 2, 128, FP32), False, 1024, 64.0)])
    s = ms.stats()
    assert (s["read_bytes"], s["write_bytes"]) == (2048 + 512 + 1024, 2048)
    assert (s["l2_hit_bytes"], s["hbm_read_bytes"], s["hbm_write_bytes"]) == (2048 + 512, 512 + 512, 0)
    assert s["l2_write_bytes"] == 2048  # write-back: still in L2
    assert s["hbm_read_bytes"] + s["l2_hit_bytes"] == s["read_bytes"]
    assert s["l2_hit_rate"] == pytest.approx(2560 / 3584)
    assert (s["transfers"], s["hit_transfers"]) == (4, 1)


def test_fair_rates_fill_progressively_across_hbm_and_l2():
    big = 1e9
    # Alone, a half-hit flow and a full hit share L2's 100 equally (HBM carries only 33 of 50).
    assert fair_rates([big, big], [0.5, 0.0], 50.0, 100.0) == pytest.approx([200 / 3, 200 / 3])
    # A miss saturates HBM with the half-hit flow at 33.3; the full hit takes the L2 left over.
    rates = fair_rates([big, big, big], [1.0, 0.5, 0.0], 50.0, 100.0)
    assert rates == pytest.approx([100 / 3, 100 / 3, 250 / 3])
    assert fair_rates([10.0, big], [1.0, 1.0], 50.0, 100.0) == pytest.approx([10.0, 40.0])  # cap, then rest


def test_bad_requests_fail_with_the_valid_values():
    ms = MemorySystem(simpy.Environment(), config(), [rows("x", 4)])
    with pytest.raises(KeyError, match="declared: x"):
        ms.transfer(GmRegion("y", 0, 0, 1, 128, FP32), False, 512, 64.0)
    with pytest.raises(ValueError, match=r"outside x's matrix \[4, 128\]"):
        ms.transfer(GmRegion("x", 3, 0, 2, 128, FP32), False, 512, 64.0)
    # Below the start too: a negative row or column would otherwise index another tensor's lines.
    with pytest.raises(ValueError, match=r"rows -1\.\.0 step 1, columns 0\.\.127 fall outside x's"):
        ms.transfer(GmRegion("x", -1, 0, 2, 128, FP32), False, 1024, 64.0)
    with pytest.raises(ValueError, match=r"columns -4\.\.123 fall outside x's"):
        ms.transfer(GmRegion("x", 0, -4, 1, 128, FP32), False, 512, 64.0)
    with pytest.raises(ValueError, match="cap > 0"):
        ms.transfer(GmRegion("x", 0, 0, 1, 128, FP32), False, 512, 0.0)


def naive_lines(ms: MemorySystem, region: GmRegion, t: Tensor) -> list[int]:
    """Every line any byte of the region's rows falls in, one byte at a time."""
    cols_total = t.matrix_shape[1]
    size, base = t.dtype.itemsize, ms.l2.base(t.name)
    found = set()
    for r in range(region.rows):
        row = region.row + r * region.row_step
        first = base + (row * cols_total + region.col) * size
        found.update(b // LINE for b in range(first, first + region.cols * size))
    return sorted(found)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_l2_residency_and_write_back_equal_stamping_every_line_at_every_touch(data):
    """The lazy stamps, the region shortcuts and the queue of dirty touches give the same hits and
    write-backs as the plain per-line model."""
    pad = Tensor("pad", DType.FP16, (data.draw(st.integers(1, 300)),))  # shifts x off line alignment
    dtype = data.draw(st.sampled_from([FP32, DType.FP16]))
    x = Tensor("x", dtype, (24, data.draw(st.sampled_from([64, 96, 128, 256, 384]))))
    capacity = data.draw(st.integers(2, 40))
    ms = MemorySystem(simpy.Environment(), config(l2_lines=capacity), [pad, x])
    rows_total, cols_total = x.matrix_shape

    @st.composite
    def regions(draw):
        step = draw(st.integers(1, 3))
        row = draw(st.integers(0, rows_total - 1))
        nrows = draw(st.integers(1, (rows_total - 1 - row) // step + 1))
        col = draw(st.integers(0, cols_total - 1))
        return GmRegion("x", row, col, nrows, draw(st.integers(1, cols_total - col)), x.dtype, row_step=step)

    pool = data.draw(st.lists(regions(), min_size=1, max_size=6))
    # (region, is it a write, a region whose lines are asked for first: sets it up untouched)
    touches = st.tuples(st.integers(0, len(pool) - 1), st.booleans(), st.integers(0, len(pool) - 1))
    order = data.draw(st.lists(touches, min_size=1, max_size=40))
    stamps: dict[int, int] = {}
    dirty: set[int] = set()
    counter = 0
    for i, write, asked in order:
        region = pool[i]
        lines = naive_lines(ms, region, x)
        np.testing.assert_array_equal(ms.l2.lines_of(region), lines)
        ms.l2.lines_of(pool[asked])
        resident = sum(counter + k - stamps[line] - 1 < capacity
                       for k, line in enumerate(lines) if line in stamps)
        for k, line in enumerate(lines):
            stamps[line] = counter + k
        counter += len(lines)
        if write:
            dirty |= set(lines)
        # Write-back: every dirty line no longer resident after this touch leaves L2 now.
        gone = {line for line in dirty if counter - stamps[line] - 1 >= capacity}
        dirty -= gone
        touch = ms.l2.touch(region, write)
        assert touch.hit_fraction == resident / len(lines)
        assert touch.writeback_bytes == len(gone) * LINE
        assert ms.l2.dirty_bytes == len(dirty) * LINE


def test_a_run_reports_what_l2_kept_and_what_it_wrote_back():
    from isa.asm import parse_program
    from npusim import simulate

    program = parse_program("""
        .program keep
        .tensor x fp32[16,64] input
        .tensor y fp32[16,64] output
        .kernel k
            load UB[0x0000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
            set_flag MTE2 MTE3 0
            wait_flag MTE2 MTE3 0
            store GM:y[0:16, 0:64] fp32 <- UB[0x0000] fp32[16,64]
    """)
    memory = simulate(program, load_preset("910b2"), numerics=False).memory
    # 4096 B read from HBM; the 4096 B store stays in L2 (8 dirty lines), nothing evicted.
    assert (memory.hbm_read_bytes, memory.hbm_write_bytes) == (4096, 0)
    assert (memory.l2_write_bytes, memory.writeback_bytes, memory.l2_dirty_bytes) == (4096, 0, 8 * LINE)
