"""Every view lists pipes in one order, data-flow order: S, MTE2, MTE1, M, FIX, V, MTE3.

Checked on a run whose pipes would come out in another order if a view followed the Pipe enum's
declaration order (S, MTE1, MTE2, MTE3, M, V, FIX) or a dict's insertion order.
"""

import re

from npusim import load_preset, simulate, timeline, trace
from npusim.outputs import record
from npusim.report import summary
from programs import registry

DATAFLOW = ["S", "MTE2", "MTE1", "M", "FIX", "V", "MTE3"]
CONFIG = load_preset("910b2")


def _run():
    """Paged attention, 2-block, one small request: a cube core and a vector core, every pipe busy."""
    values = {"variant": "2block", "batch": 1, "head_dim": 64, "block_size": 64, "context_len": 200}
    program = registry.get("paged-attention").instance(values, CONFIG.chip.cube_cores, CONFIG).program
    return simulate(program, CONFIG, numerics=False)


def _in_dataflow_order(names):
    return [p for p in DATAFLOW if p in names] == list(names)


def test_summary_json_timeline_and_trace_follow_one_order():
    result = _run()
    listed = re.findall(r"^  (S|MTE2|MTE1|M|FIX|V|MTE3) +\d+ +[\d.]+%$", summary(result), re.M)
    assert listed == ["MTE2", "MTE1", "M", "FIX", "V", "MTE3"]  # every pipe but S is busy here
    rec = record(result, "pa", {}, {}, None)
    assert list(rec["busy_cycles"]) == listed and list(rec["busy_percent"]) == listed
    lanes = [line.split()[0] for line in timeline.lanes(result.traces[:1], 0, result.cycles, 40, False)]
    assert _in_dataflow_order([lane for lane in lanes if lane in DATAFLOW])
    events = trace.events(result)
    per_process: dict[int, list[tuple[int, str]]] = {}
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    for e in events:
        if e.get("ph") == "M" and e.get("name") == "thread_sort_index" and (e["pid"], e["tid"]) in names:
            per_process.setdefault(e["pid"], []).append((e["args"]["sort_index"], names[e["pid"], e["tid"]]))
    assert per_process
    for threads in per_process.values():
        pipes = [name.split()[0] for _, name in sorted(threads) if name.split()[0] in DATAFLOW]
        assert len(pipes) >= 3 and _in_dataflow_order(pipes)
