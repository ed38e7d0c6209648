"""The sanitizer from the command line and from simulate(): findings, exit status 3, JSON, trace marks."""

import json
from pathlib import Path

import numpy as np
import pytest

from isa.asm import parse_program
from isa.sanitize import Kind
from npusim import load_preset, simulate
from npusim.cli import main

ROOT = Path(__file__).resolve().parents[2]
SCALE = (ROOT / "programs" / "vector_scale.s").read_text(encoding="utf-8")


def _without_second_tiles_v_to_mte3(text: str = SCALE) -> str:
    """vector_scale.s less the second tile's `set_flag V MTE3 1` / `wait_flag V MTE3 1`."""
    lines, dropped = [], 0
    for line in text.splitlines():
        if "V MTE3 1" in line and dropped < 2:
            dropped += 1
            continue
        lines.append(line)
    assert dropped == 2
    return "\n".join(lines) + "\n"


def test_a_race_right_by_luck_on_the_default_preset_exits_3_naming_vmuls_and_store(tmp_path, capsys):
    race = tmp_path / "race.s"
    race.write_text(_without_second_tiles_v_to_mte3())
    x = np.random.default_rng(1).standard_normal((64, 256)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    # On 910b2 this run's output is right: the race does not show in the numbers ...
    result = simulate(parse_program(race.read_text()), load_preset("910b2"), inputs={"x": x})
    np.testing.assert_array_equal(result.tensors["y"], x * np.float32(0.125))
    # ... and the sanitizer reports it anyway.
    assert main(["asm", str(race), "--sanitize", "--input", f"x={tmp_path / 'x.npy'}"]) == 3
    out = capsys.readouterr().out
    first = out.split("racecheck: read after write", 1)[1].split("fix:", 1)[0]
    assert "#11 `vmuls UB[0xC000] fp32[16,256] <- UB[0x8000] fp32[16,256], 0.125` (V)" in first
    assert "#12 `store GM:y[16:32, 0:256] fp32 <- UB[0xC000] fp32[16,256]` (MTE3)" in first
    assert "add `set_flag V MTE3 e` after #11 and `wait_flag V MTE3 e` before #12" in out
    # A slower vector unit turns the same race into NaN: the store read the unwritten buffer.
    slow = load_preset("910b2").replace({"vector.scalar.startup_cycles": 400})
    y = simulate(parse_program(race.read_text()), slow, inputs={"x": x}).tensors["y"]
    assert np.isnan(y[16:32]).all() and not np.isnan(y[:16]).any()


def test_check_exits_0_on_a_clean_kernel_3_on_findings_and_2_on_a_static_error(tmp_path, capsys):
    assert main(["check", str(ROOT / "programs" / "vector_scale.s")]) == 0
    assert "sanitizer: no findings" in capsys.readouterr().out
    race = tmp_path / "race.s"
    race.write_text(_without_second_tiles_v_to_mte3())
    assert main(["check", str(race)]) == 3
    assert main(["asm", str(race), "--check-only"]) == 3
    assert "timing:" not in capsys.readouterr().out  # nothing ran
    broken = tmp_path / "broken.s"
    broken.write_text(SCALE.replace("    set_flag MTE2 V 0\n", "", 1))  # a wait with no set: static
    assert main(["check", str(broken)]) == 2
    assert "flag (MTE2, V, 0) is set 1 time(s) but waited 2 times" in capsys.readouterr().err


def test_check_json_lists_every_finding(tmp_path, capsys):
    race = tmp_path / "race.s"
    race.write_text(_without_second_tiles_v_to_mte3())
    assert main(["check", str(race), "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["program"] == "vector_scale" and doc["preset"] == "910b2"
    kinds = {(f["kind"], f["what"], f["first"]["index"], f["second"]["index"]) for f in doc["findings"]}
    assert ("racecheck", "read after write", 11, 12) in kinds
    assert all(f["tasks"] == ["scale0"] for f in doc["findings"])


def test_run_and_compare_with_sanitize_report_clean_programs_and_exit_0(capsys):
    assert main(["run", "tile-matmul", "--sanitize", "--no-numerics"]) == 0
    assert "sanitizer: no findings" in capsys.readouterr().out
    assert main(["compare", "paged-attention", "--batch", "1", "--context-len", "300", "--sanitize",
                 "--no-numerics", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1block: sanitizer: no findings" in out and "2block: sanitizer: no findings" in out


def test_the_json_record_and_the_trace_carry_the_findings(tmp_path, capsys):
    race = tmp_path / "race.s"
    race.write_text(_without_second_tiles_v_to_mte3())
    trace = tmp_path / "t.json"
    assert main(["asm", str(race), "--sanitize", "--json", "--trace", str(trace)]) == 3
    record = json.loads(capsys.readouterr().out)
    assert {f["kind"] for f in record["sanitizer"]} == {"racecheck", "synccheck"}  # the broken chain
    assert record["sanitizer"][0]["cores"] == ["aiv0"]
    marks = [e for e in json.loads(trace.read_text())["traceEvents"] if e.get("cat") == "sanitizer"]
    assert len(marks) == len(record["sanitizer"])
    assert marks[0]["name"] == "racecheck: read after write" and marks[0]["ph"] == "i"


def test_simulate_sanitize_names_the_core_and_is_none_when_not_asked():
    program = parse_program(_without_second_tiles_v_to_mte3())
    config = load_preset("910b2")
    assert simulate(program, config, numerics=False).sanitizer is None
    found = simulate(program, config, numerics=False, sanitize=True).sanitizer
    assert any(f.kind is Kind.RACE for f in found)
    assert all(f.core == "aiv0" and f.task == "scale0" for f in found)
    clean = parse_program(SCALE)
    assert simulate(clean, config, numerics=False, sanitize=True).sanitizer == ()


def test_check_only_refuses_the_options_of_a_run(capsys):
    kernel = str(ROOT / "programs" / "tile_matmul.s")
    assert main(["asm", kernel, "--check-only", "--input", "q=q.npy", "--trace", "t.json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("npusim: error: --check-only runs nothing, so --input, --trace cannot apply")
    assert main(["asm", kernel, "--check-only"]) == 0


def test_the_json_record_carries_the_launch_and_the_end_to_end_time(capsys):
    assert main(["run", "tile-matmul", "--no-numerics", "--json", "--set", "chip.launch_cycles=1800"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["launch_cycles"] == 1800
    assert record["end_to_end_microseconds"] == pytest.approx(record["microseconds"] + 1.0)  # 1800 at 1.8 GHz
