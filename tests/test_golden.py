"""The golden timing summaries in traces/golden.json still hold: any drift is a deliberate commit."""

import importlib.util
import json
from math import ceil
from pathlib import Path

import pytest

from npusim.config import available_presets
from tests import tile_matmul_by_hand as hand

PATH = Path(__file__).resolve().parent.parent / "traces" / "golden.py"
spec = importlib.util.spec_from_file_location("traces_golden", PATH)
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)
STORED = json.loads(golden.GOLDEN.read_text())
RUNS = golden.runs()


@pytest.mark.parametrize("name", sorted(RUNS))
def test_no_timing_drift(name):
    assert name in STORED, f"{name} is missing from traces/golden.json: run python traces/golden.py"
    now = golden.summarize(*RUNS[name])
    assert golden.differences({name: STORED[name]}, {name: now}) == []


def test_every_stored_case_is_still_produced():
    assert sorted(STORED) == sorted(RUNS)


def test_every_shipped_preset_has_golden_runs_and_the_default_keeps_its_names():
    assert {preset for _, preset in RUNS.values()} == set(available_presets()) == {"910b2", "910b3", "310p"}
    assert golden.run_name("tile_matmul", "910b2") == "tile_matmul"
    assert golden.run_name("tile_matmul", "310p") == "310p/tile_matmul"
    assert all(case in golden.CASES and preset in available_presets() for case, preset in golden.SKIP)


def test_tile_matmul_golden_runs_are_the_cycles_worked_by_hand():
    # 910b3 has 910b2's per-core figures; 310p moves the loads and the fixpipe at 114 B/cycle and
    # keeps a 200-cycle MTE2 latency (tests/tile_matmul_by_hand.py works both out).
    assert STORED["tile_matmul"]["cycles"] == STORED["910b3/tile_matmul"]["cycles"] == hand.CYCLES
    assert STORED["310p/tile_matmul"]["cycles"] == hand.CYCLES_310P
    assert STORED["310p/tile_matmul"]["busy"]["MTE2"] == ceil(4096 / 114) + ceil(32768 / 114)
    assert STORED["310p/tile_matmul"]["busy"] == hand.BUSY_310P


def test_differences_name_the_field_that_moved():
    base = {"cycles": 100, "busy": {"M": 5}, "tasks": 1, "instructions": 4, "hbm_bytes": 10}
    moved = {**base, "cycles": 101}
    assert golden.differences({"x": base}, {"x": moved}) == ["x: cycles 100 -> 101"]
    assert golden.differences({"x": base}, {}) == ["x: no longer produced"]
