"""The golden timing summaries in traces/golden.json still hold: any drift is a deliberate commit."""

import importlib.util
import json
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parent.parent / "traces" / "golden.py"
spec = importlib.util.spec_from_file_location("traces_golden", PATH)
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)
STORED = json.loads(golden.GOLDEN.read_text())


@pytest.mark.parametrize("name", sorted(golden.CASES))
def test_no_timing_drift(name):
    assert name in STORED, f"{name} is missing from traces/golden.json: run python traces/golden.py"
    now = golden.summarize(golden.CASES[name]())
    assert golden.differences({name: STORED[name]}, {name: now}) == []


def test_every_stored_case_is_still_produced():
    assert sorted(STORED) == sorted(golden.CASES)


def test_differences_name_the_field_that_moved():
    base = {"cycles": 100, "busy": {"M": 5}, "tasks": 1, "instructions": 4, "hbm_bytes": 10}
    moved = {**base, "cycles": 101}
    assert golden.differences({"x": base}, {"x": moved}) == ["x: cycles 100 -> 101"]
    assert golden.differences({"x": base}, {}) == ["x: no longer produced"]
