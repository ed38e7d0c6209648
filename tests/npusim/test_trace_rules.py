"""The trace as viewers import it, on real runs of both paged-attention variants.

The rules come from the Trace Event Format, not from npusim.trace:
- complete events (`ph: "X"`) on one thread nest or follow one another, never partly overlap;
- a flow has one start (`s`) and one finish (`f`, here with `bp: "e"`), the finish no earlier
  than the start; each binds to the enclosing slice on its own thread. Binding, made precise the
  way an importer does it (Perfetto's JSON importer): the thread's events are read in timestamp
  order, at equal timestamps in file order; a slice opens when read and stays open until a slice
  begins at or after its end (a zero-width slice begun at its very instant nests in it instead);
  a flow event binds to the innermost open slice, which must contain its timestamp. That is at
  most one slice by construction; the rule is that it exists and is the right one (the set_flag
  for a start, the wait_flag that set released for a finish);
- a counter's samples come in time order.

Each rule is checked twice: on the numbers read as doubles and added as doubles, as the viewers
written in JavaScript (chrome://tracing, DevTools) and Python's json do, and as Perfetto reads
them (a double times 1000, truncated to integer nanoseconds, which can end a slice a nanosecond
before a flow event placed at its end; Perfetto binds such an event to the slice still open on
its thread, so that reading asks for an open slice, not for one that contains the event).
"""

import json
from collections import defaultdict

import pytest

from npusim import load_preset, simulate, trace
from programs import paged_attention as pa

CFG = load_preset("910b2")
SHAPE = pa.Shape(batch=2, num_heads=16, num_kv_heads=1, head_dim=128, block_size=128)


def as_doubles(text):
    """The file's events, times in microseconds as doubles."""
    return json.loads(text)["traceEvents"]


def as_perfetto(text):
    """The file's events with ts and dur in integer nanoseconds, as Perfetto converts them."""
    events = json.loads(text)["traceEvents"]
    for e in events:
        for key in ("ts", "dur"):
            if key in e:
                e[key] = int(e[key] * 1000.0) if isinstance(e[key], float) else e[key] * 1000
    return events


def slice_problems(events):
    """Slices on one thread that overlap without nesting, or run backwards."""
    out = []
    threads = defaultdict(list)
    for n, e in enumerate(events):
        if e["ph"] == "X":
            if e["dur"] < 0:
                out.append(f"slice {n} has a negative duration")
            threads[e["pid"], e["tid"]].append((e["ts"], -e["dur"], n))
    for key, slices in threads.items():
        open_ends = []  # ends of the slices enclosing the current one, innermost last
        for ts, neg_dur, n in sorted(slices):
            while open_ends and open_ends[-1] <= ts:
                open_ends.pop()
            if open_ends and ts - neg_dur > open_ends[-1]:
                out.append(f"slice {n} on {key} starts inside another slice and ends after it")
            open_ends.append(ts - neg_dur)
    return out


def bindings(events, contain=True):
    """Flow event index -> the index of the slice it binds to (None: no enclosing slice).

    `contain`: the open slice must contain the flow event's timestamp (else it binds nowhere).
    """
    threads = defaultdict(list)
    for n, e in enumerate(events):
        if e["ph"] in "Xsf":
            threads[e["pid"], e["tid"]].append(n)
    bound = {}
    for members in threads.values():
        stack = []  # indices of open slices, innermost last
        for n in sorted(members, key=lambda n: events[n]["ts"]):  # stable: file order at ties
            e = events[n]
            t = e["ts"]
            if e["ph"] == "X":
                while stack and _closes(events[stack[-1]], e):
                    stack.pop()
                stack.append(n)
                continue
            top = events[stack[-1]] if stack else None
            inside = top is not None and (not contain or top["ts"] <= t <= top["ts"] + top["dur"])
            bound[n] = stack[-1] if inside else None
    return bound


def _closes(open_slice, new):
    end = open_slice["ts"] + open_slice["dur"]
    return end < new["ts"] or (end == new["ts"] and not (open_slice["dur"] == 0 and new["dur"] == 0))


def flow_problems(events, contain=True):
    """Flows that are not one start and one finish, finish before they start, or bind nowhere."""
    out = []
    ends = defaultdict(dict)
    for n, e in enumerate(events):
        if e["ph"] in "sf":
            if e["ph"] in ends[e["id"]]:
                out.append(f"flow {e['id']} has two {e['ph']} events")
            ends[e["id"]][e["ph"]] = n
    for fid, pair in ends.items():
        if set(pair) != {"s", "f"}:
            out.append(f"flow {fid} has only {sorted(pair)}")
            continue
        s, f = events[pair["s"]], events[pair["f"]]
        if f.get("bp") != "e":
            out.append(f"flow {fid}'s finish does not bind to its enclosing slice")
        if f["ts"] < s["ts"]:
            out.append(f"flow {fid} finishes at {f['ts']}, before it starts at {s['ts']}")
    for n, slice_index in bindings(events, contain).items():
        if slice_index is None:
            out.append(f"flow event {n} ({events[n]['ph']} of flow {events[n]['id']}) has no enclosing slice")
    return out


def counter_problems(events):
    """Counter series whose samples go back in time."""
    last = {}
    out = []
    for n, e in enumerate(events):
        if e["ph"] == "C":
            key = (e["pid"], e["name"])
            if key in last and e["ts"] < last[key]:
                out.append(f"counter {key} goes back in time at event {n}")
            last[key] = e["ts"]
    return out


def problems(events, contain):
    return slice_problems(events) + flow_problems(events, contain) + counter_problems(events)


READINGS = {"doubles": (as_doubles, True), "perfetto": (as_perfetto, False)}


@pytest.fixture(scope="module", params=["1block", "2block"])
def run(request):
    case = pa.make_case(SHAPE, [512, 300], seed=0)
    return simulate(pa.build(case, request.param, CFG), CFG, numerics=False)


@pytest.fixture(scope="module")
def text(run, tmp_path_factory):
    path = tmp_path_factory.mktemp("trace") / "t.json"
    trace.write(path, [(None, run)])
    return path.read_text()


@pytest.mark.parametrize("reading", READINGS)
def test_the_trace_of_each_variant_keeps_the_rules(text, reading):
    read, contain = READINGS[reading]
    assert problems(read(text), contain) == []


def misbound(run, events, contain):
    """Flows whose start does not bind to a set_flag, or whose finish not to the wait it released."""
    by_task = {t.task: t for t in run.traces}
    ends = defaultdict(dict)
    for n, slice_index in bindings(events, contain).items():
        ends[events[n]["id"]][events[n]["ph"]] = events[slice_index] if slice_index is not None else None
    waits = sum(int((t.released_by >= 0).sum()) for t in run.traces)
    out = [] if len(ends) == waits else [f"{len(ends)} flows for {waits} released waits"]
    for fid, pair in ends.items():
        setter, wait = pair.get("s"), pair.get("f")
        if setter is None or wait is None or (setter["name"], wait["name"]) != ("set_flag", "wait_flag"):
            out.append(f"flow {fid} binds to {setter and setter['name']} -> {wait and wait['name']}")
        elif (setter["args"]["task"] != wait["args"]["task"]
              or by_task[wait["args"]["task"]].released_by[wait["args"]["index"]] != setter["args"]["index"]):
            out.append(f"flow {fid} joins a set_flag to a wait_flag it did not release")
    return out


@pytest.mark.parametrize("reading", READINGS)
def test_each_flow_binds_to_its_set_flag_and_the_wait_flag_it_released(run, text, reading):
    read, contain = READINGS[reading]
    assert run.instructions and misbound(run, read(text), contain) == []


def test_ties_keep_the_rules_when_flags_and_dispatch_take_no_cycles(tmp_path):
    # With no flag latency a flow's finish can share its start's instant, and with no dispatch
    # overhead a task's first instruction can start where the last one on its core ended.
    cfg = CFG.replace({"sync.flag_cycles": 0, "chip.dispatch_cycles": 0})
    case = pa.make_case(pa.Shape(3, 40, 2, 64, 64), [1, 129, 320], seed=0)
    run = simulate(pa.build(case, "2block", cfg), cfg, numerics=False)
    path = tmp_path / "t.json"
    trace.write(path, [(None, run)])
    for read, contain in READINGS.values():
        events = read(path.read_text())
        assert problems(events, contain) == [] and misbound(run, events, contain) == []


def test_both_variants_in_one_file_and_without_sync_keep_the_rules(tmp_path):
    runs = [(v, simulate(pa.build(pa.make_case(SHAPE, [512, 300], seed=0), v, CFG), CFG, numerics=False))
            for v in ("1block", "2block")]
    for sync in ("show", "hide"):
        path = tmp_path / f"{sync}.json"
        trace.write(path, runs, sync)
        for read, contain in READINGS.values():
            assert problems(read(path.read_text()), contain) == []


def _x(ts, dur, tid=1, name="s", **args):
    return {"ph": "X", "pid": 1, "tid": tid, "ts": ts, "dur": dur, "name": name, "args": args}


def _flow(ph, fid, ts, tid=1):
    event = {"ph": ph, "pid": 1, "tid": tid, "ts": ts, "id": fid, "name": "flag", "cat": "flag"}
    return {**event, "bp": "e"} if ph == "f" else event


def test_the_checker_finds_each_broken_rule():
    # The old trace's faults, by hand: a dur rounded apart from its ts, and a finish placed at the
    # wait's start, before the set_flag that released it.
    assert slice_problems([_x(1.0, 0.5), _x(1.4, 0.2)]) != []
    assert slice_problems([_x(1.0, 0.5), _x(1.5, 0.2), _x(1.1, 0.1), _x(1.5, 0.0)]) == []  # touch, nest
    backwards = [_x(5.0, 0.0, tid=2), _flow("s", 7, 5.0, tid=2), _x(1.0, 6.0, tid=3),
                 _flow("f", 7, 1.0, tid=3)]
    assert flow_problems(backwards) == ["flow 7 finishes at 1.0, before it starts at 5.0"]
    released = backwards[:3] + [_flow("f", 7, 7.0, tid=3)]
    assert flow_problems(released) == []
    # a finish after its slice closed binds nowhere; one after a slice that begins at its instant
    # binds to that slice, not to the wait that ended there
    assert flow_problems(backwards[:3] + [_flow("f", 7, 8.0, tid=3)]) != []
    late = backwards[:3] + [_x(7.0, 1.0, tid=3), _flow("f", 7, 7.0, tid=3)]
    assert bindings(late)[4] == 3
    assert bindings(released)[3] == 2
    assert flow_problems([_flow("s", 1, 0.0)]) != []
    samples = [{"ph": "C", "pid": 0, "name": "c", "ts": t, "args": {"v": 1}} for t in (2, 1)]
    assert counter_problems(samples) != []


def test_the_perfetto_reading_truncates_to_nanoseconds():
    text = json.dumps({"traceEvents": [_x(0.0015, 0.0025)]})
    (e,) = as_perfetto(text)
    assert (e["ts"], e["dur"]) == (1, 2)
