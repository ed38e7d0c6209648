"""The Chrome trace: valid by the Trace Event format's rules, and saying what the run did."""

import json
from collections import Counter, defaultdict

import pytest

from isa import SetFlag, WaitFlag
from npusim import load_preset, simulate, timeline, trace
from programs import paged_attention as pa
from programs import tile_matmul

CFG = load_preset("910b2")
REQUIRED = {"X": {"name", "ph", "pid", "tid", "ts", "dur", "args"}, "M": {"name", "ph", "pid", "args"},
            "C": {"name", "ph", "pid", "ts", "args"}, "s": {"name", "ph", "pid", "tid", "ts", "id"},
            "f": {"name", "ph", "pid", "tid", "ts", "id", "bp"}}


@pytest.fixture(scope="module")
def paged():
    case = pa.make_case(pa.Shape(2, 16, 1, 64, 64), [150, 70])
    return simulate(pa.build(case, "2block"), CFG, numerics=False)


def validate(doc):
    """The format's rules: required fields per phase, non-negative durations, flows in pairs that
    bind to a slice on their own thread, names for every process and thread that has events."""
    events = doc["traceEvents"]
    assert isinstance(events, list) and events
    slices = defaultdict(list)
    named_pids, named_threads = set(), set()
    flows = defaultdict(dict)
    for e in events:
        assert e["ph"] in REQUIRED, e
        missing = REQUIRED[e["ph"]] - set(e)
        assert not missing, (missing, e)
        if e["ph"] == "X":
            assert e["dur"] >= 0 and e["ts"] >= 0
            slices[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
        elif e["ph"] == "M":
            if e["name"] == "process_name":
                named_pids.add(e["pid"])
            if e["name"] == "thread_name":
                named_threads.add((e["pid"], e["tid"]))
        elif e["ph"] == "C":
            assert all(isinstance(v, int | float) for v in e["args"].values())
        else:
            assert e["ph"] not in flows[e["id"]], f"flow {e['id']} has two {e['ph']} events"
            flows[e["id"]][e["ph"]] = e
    for key in slices:
        assert key[0] in named_pids and key in named_threads, key
    for fid, ends in flows.items():
        assert set(ends) == {"s", "f"}, f"flow {fid} is not a pair: {sorted(ends)}"
        for e in ends.values():  # each end lies within a slice on its thread (binding)
            assert any(a <= e["ts"] <= b for a, b in slices[(e["pid"], e["tid"])]), e
    return events


def test_trace_is_valid_and_has_one_slice_per_instruction(paged, tmp_path):
    path = tmp_path / "t.json"
    count = trace.write(path, [(None, paged)])
    doc = json.loads(path.read_text())
    events = validate(doc)
    assert len(events) == count
    instr_slices = [e for e in events if e["ph"] == "X" and e["cat"] != "task"]
    assert len(instr_slices) == paged.instructions
    tasks = [e for e in events if e["ph"] == "X" and e["cat"] == "task"]
    assert sorted(e["name"] for e in tasks) == sorted(t.name for t in paged.program.tasks)
    waits = sum(isinstance(i, WaitFlag) for t in paged.traces for i in t.kernel.instructions)
    assert Counter(e["ph"] for e in events)["s"] == waits  # one arrow per wait_flag
    assert doc["otherData"]["runs"] == [{"label": None, "program": "paged_attention_2block",
                                         "cycles": paged.cycles}]


def test_slices_carry_cycles_and_times_at_the_clock(paged):
    per_us = CFG.clock_ghz * 1000
    by_task = {t.task: t for t in paged.traces}
    for e in trace.events(paged):
        if e["ph"] != "X" or e["cat"] == "task":
            continue
        t, i = by_task[e["args"]["task"]], e["args"]["index"]
        assert e["args"]["start_cycle"] == t.start[i] and e["args"]["end_cycle"] == t.end[i]
        assert e["ts"] == pytest.approx(t.start[i] / per_us, abs=1e-6)
        # cycles: start to completion, as the timeline's table; the slice spans the pipe's share
        assert e["args"]["cycles"] == t.end[i] - t.start[i]
        assert e["dur"] == pytest.approx(e["args"]["pipe_cycles"] / per_us, abs=2e-6)
        assert e["args"]["text"] == str(t.kernel.instructions[i])
        if t.bytes[i]:
            assert e["args"]["bytes"] == t.bytes[i]


def test_flow_arrows_run_from_the_set_that_released_each_wait(paged):
    # Each flow event follows the slice it binds to; the arrow runs from the set_flag's start to
    # the cycle its wait_flag ended, which the engine's records give as max(wait start, set end).
    per_us = CFG.clock_ghz * 1000
    by_task = {t.task: t for t in paged.traces}
    events = trace.events(paged)
    ends = {}
    for before, e in zip(events, events[1:], strict=False):
        if e["ph"] in "sf":
            assert (before["ph"], before["pid"], before["tid"]) == ("X", e["pid"], e["tid"])
            ends[e["id"], e["ph"]] = (before, e)
    flows = {fid for fid, _ in ends}
    assert flows and len(ends) == 2 * len(flows)
    for fid in flows:
        (setter, s), (wait, f) = ends[fid, "s"], ends[fid, "f"]
        assert (setter["name"], wait["name"]) == ("set_flag", "wait_flag")
        t = by_task[wait["args"]["task"]]
        assert setter["args"]["task"] == t.task
        assert t.released_by[wait["args"]["index"]] == setter["args"]["index"]
        released = max(t.start[wait["args"]["index"]], t.end[setter["args"]["index"]])
        assert s["ts"] == setter["ts"] and f["ts"] == wait["ts"] + wait["dur"] >= s["ts"]
        assert f["ts"] == pytest.approx(released / per_us, abs=1e-6)


def test_hiding_sync_drops_flag_slices_and_arrows(paged):
    shown, hidden = trace.events(paged), trace.events(paged, sync="hide")
    validate({"traceEvents": hidden})
    sync = sum(isinstance(i, SetFlag | WaitFlag) or i.mnemonic == "barrier"
               for t in paged.traces for i in t.kernel.instructions)
    count = Counter(e["ph"] for e in shown)
    hidden_count = Counter(e["ph"] for e in hidden)
    assert hidden_count["X"] == count["X"] - sync and hidden_count["s"] == hidden_count["f"] == 0
    assert not any(e.get("cat") == "sync" for e in hidden)


def test_counters_show_hbm_bandwidth_and_queue_occupancy(paged):
    events = trace.events(paged)
    hbm = [e for e in events if e["ph"] == "C" and e["name"] == "HBM GB/s"]
    assert max(e["args"]["GB/s"] for e in hbm) == pytest.approx(paged.memory.peak_gbps)
    queued = [e for e in events if e["ph"] == "C" and e["name"] == "queued instructions"]
    assert queued and all(v >= 0 for e in queued for v in e["args"].values())
    assert max(v for e in queued for v in e["args"].values()) >= 1
    # every queue drains: the last sample of each core is all zeros
    last = {}
    for e in queued:
        last[e["pid"]] = e["args"]
    assert all(v == 0 for args in last.values() for v in args.values())


def test_several_runs_get_separate_labelled_processes():
    one = simulate(tile_matmul.build(), CFG, numerics=False)
    doc = trace.document([("a", one), ("b", one)])
    validate(doc)
    names = [e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "process_name"]
    assert names == ["a: memory system", "a: aic0", "b: memory system", "b: aic0"]
    with pytest.raises(ValueError, match="trace sync mode 'off'; valid: show, hide"):
        trace.events(one, sync="off")


def test_the_timeline_table_and_the_trace_give_each_instruction_the_same_cycles(paged):
    # set_flag especially: it frees its pipe at once (a slice of no width) but its flag is
    # visible only `cycles` later, once the pipe's earlier work has landed.
    task = paged.traces[0]
    rows = timeline.instruction_table(task)[1:]
    table = {int(row.split()[0]): [int(v) for v in row.split()[2:6]] for row in rows}
    slices = [e for e in trace.events(paged) if e["ph"] == "X" and e.get("args", {}).get("task") == task.task]
    assert len(slices) == len(task) == len(table)
    sets = 0
    for e in slices:
        a = e["args"]
        issue, start, end, cycles = table[a["index"]]
        assert (a["issue_cycle"], a["start_cycle"], a["end_cycle"]) == (issue, start, end)
        assert a["cycles"] == cycles
        assert cycles == task.end[a["index"]] - task.start[a["index"]]
        if e["name"] == "set_flag":
            sets += 1
            assert e["dur"] == a["pipe_cycles"] == 0 and cycles >= CFG.sync.flag_cycles
    assert sets
