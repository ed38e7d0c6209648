"""The command line: the Quick start command works, and user mistakes get one clear line."""

import json
import re

import numpy as np
import pytest
import torch

from npusim.cli import main
from programs import tile_matmul
from tests import tile_matmul_by_hand as hand


def exact_product(values):
    """q @ k in float64 by torch: exact up to float64 rounding, the oracle for the fp32 output."""
    q, k = (torch.from_numpy(values[name].astype(np.float64)) for name in ("q", "k"))
    return (q @ k).numpy()


def test_run_example_prints_a_match(capsys):
    assert main(["run", "tile-matmul"]) == 0
    out = capsys.readouterr().out
    assert "static checks passed (1 task(s), 12 instructions)" in out
    assert f"timing: {hand.CYCLES} cycles = {hand.CYCLES / 1.8e3:.3f} us at 1.8 GHz" in out
    busy = dict(words[:2] for words in map(str.split, out.splitlines()) if words and words[0] in hand.BUSY)
    assert busy == {pipe: str(cycles) for pipe, cycles in hand.BUSY.items()}  # the busy-cycles table
    assert "out fp32[16, 128]" in out and ": match" in out


def test_asm_runs_a_file_with_given_inputs(tmp_path, capsys):
    values = tile_matmul.inputs(5)
    for name, value in values.items():
        np.save(tmp_path / f"{name}.npy", value)
    args = ["asm", str(tile_matmul.ASM_PATH), "--input", f"q={tmp_path / 'q.npy'}",
            "--input", f"k={tmp_path / 'k.npy'}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "inputs all given" in out
    shown = re.search(r"out fp32\[16, 128\]: first values \[([^]]*)\]", out).group(1).split(",")
    expected = exact_product(values).reshape(-1)[: len(shown)]
    np.testing.assert_allclose([float(v) for v in shown], expected, rtol=0, atol=1e-4)  # 4 decimals shown


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "nope"], "run: argument PROGRAM: invalid choice: 'nope' (choose from 'paged-attention', "
                          "'matmul', 'tile-matmul')"),
        (["compare", "tile-matmul"], "compare: argument PROGRAM: invalid choice: 'tile-matmul' (choose from "
                                     "'paged-attention', 'matmul')"),
        (["run", "paged-attention", "--variant", "3block"], "argument --variant: invalid choice: '3block'"),
        (["compare", "paged-attention", "--variants", "1block,4block"],
         "argument --variants: unknown variant 4block; valid: 1block, 2block"),
        (["run", "paged-attention", "--context-lens", "1,x"],
         "argument --context-lens: expected comma-separated integers, got '1,x'"),
        (["run", "paged-attention", "--batch", "2", "--context-lens", "5,0"],
         "paged-attention: request 1 has context length 0"),
        (["run", "paged-attention", "--num-heads", "12", "--num-kv-heads", "8"],
         "num_heads 12 is not a multiple of num_kv_heads 8"),
        (["run", "paged-attention", "--batch", "1", "--context-len", "300", "--head-dim", "256"],
         "does not fit preset 910b2: kernel qk_matmul_2b, instruction 8 `move     L0B[0x0000] bf16[256,256]"),
        (["run", "matmul", "--m", "0"], "error: matmul: --m must be at least 1, got 0\n"),
        (["run", "matmul", "--dtype", "fp32"], "argument --dtype: invalid choice: 'fp32'"),
        (["run", "tile-matmul", "--bogus"], "unrecognized arguments: --bogus"),
        (["run", "tile-matmul", "--preset", "nope"], "unknown preset 'nope'"),
        (["run", "tile-matmul", "--set", "buffers.l0b_bytes=16384"], "L0B holds 16384 bytes"),
        (["run", "tile-matmul", "--set", "buffers.nope=1"], "unknown config key 'buffers.nope'"),
        (["asm", "missing.s"], "missing.s"),
        (["asm", str(tile_matmul.ASM_PATH), "--input", "zz=x.npy"], "--input zz: no such tensor"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("npusim: error: ") and message in err
    assert "Traceback" not in err


def test_a_binary_file_is_reported_not_a_traceback(tmp_path, capsys):
    src = tmp_path / "bin.s"
    src.write_bytes(b"\xff\xfe\x00")
    assert main(["asm", str(src)]) == 2
    assert "not a UTF-8 text file" in capsys.readouterr().err


def test_malformed_assembly_points_at_line_and_column(tmp_path, capsys):
    src = tmp_path / "bad.s"
    src.write_text(".kernel k\n    vdup UB[0x0] fp32[16,8] <- \n")
    assert main(["asm", str(src)]) == 2
    assert f"{src}:2:" in capsys.readouterr().err


def test_presets_and_programs_list_one_line_each(capsys):
    assert main(["presets"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert any(line.startswith("910b2 ") for line in listing) and len(listing) == 3
    assert main(["programs"]) == 0
    assert "tile-matmul" in capsys.readouterr().out


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "example:" in capsys.readouterr().out


def test_presets_keys_lists_every_key_with_its_value(capsys):
    assert main(["presets", "--keys", "--preset", "910b3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "chip.cube_cores = 20" in lines and "mte2.gm_to_l1_bytes_per_cycle = 160.0" in lines
    assert len(lines) == len(__import__("npusim.config").config.keys())


def test_run_paged_attention_checks_both_references(capsys):
    argv = ["run", "paged-attention", "--variant", "1block", "--batch", "2", "--num-heads", "20",
            "--head-dim", "64", "--block-size", "64", "--context-lens", "70,5"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "(variant=1block, batch=2, num_heads=20, num_kv_heads=1, head_dim=64, block_size=64, " \
           "context_lens=70,5, seed=0)" in out
    assert "numerics against online-softmax golden (1block steps, bf16 P)" in out
    assert "numerics against plain fp32 attention" in out
    assert out.count(": match") == 2 and "MISMATCH" not in out


def test_run_matmul_with_options_and_timing_only(capsys):
    assert main(["run", "matmul", "--m", "130", "--n", "200", "--k", "64", "--dtype", "fp16",
                 "--cores", "2"]) == 0
    out = capsys.readouterr().out
    assert "static checks passed (2 task(s)" in out and "c fp32[130, 200]" in out and ": match" in out
    assert main(["run", "matmul", "--m", "256", "--n", "256", "--k", "128", "--no-numerics",
                 "--set", "hbm.bandwidth_gbps=800"]) == 0
    out = capsys.readouterr().out
    assert "numerics: off" in out and "2 task(s) on 2 core(s)" in out  # one task per 128x256 output tile
    peak = float(re.search(r"([0-9.]+) GB/s at peak", out).group(1))
    assert 0 < peak <= 800  # the --set HBM bandwidth bounds it


def test_compare_prints_a_row_per_variant_with_the_speedup(capsys):
    argv = ["compare", "paged-attention", "--batch", "2", "--head-dim", "64", "--block-size", "64",
            "--context-len", "300"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("paged-attention (batch=2, num_heads=16") and "on preset 910b2" in lines[0]
    assert lines[1].split()[:5] == ["variant", "cycles", "us", "speedup", "tasks"]
    one, two = (line.split() for line in lines[3:5])
    assert one[0] == "1block" and one[3] == "1.00x" and two[0] == "2block"
    cycles1, cycles2 = (int(row[1].replace(",", "")) for row in (one, two))
    assert two[3] == f"{cycles1 / cycles2:.2f}x"
    # 5 blocks each: 1-block 4 steps then 1, 2-block 2 pairs then a 1-block tail; a task walks up to 4
    # steps, so each request is two chunks of qk, softmax, pv and update in both variants
    assert (one[4], two[4]) == (str(2 * 2 * 4), str(2 * 2 * 4))
    assert one[-1] == two[-1] == "match"


def test_the_full_output_command(tmp_path, capsys):
    """`run paged-attention --variant 2block --timeline --trace --plot --json`, checked in content."""
    from matplotlib.image import imread

    trace_path, plot_path = tmp_path / "t.json", tmp_path / "u.png"
    argv = ["run", "paged-attention", "--variant", "2block", "--batch", "2", "--head-dim", "64",
            "--block-size", "64", "--context-lens", "150,70", "--timeline", "--trace", str(trace_path),
            "--plot", str(plot_path), "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)  # stdout is the JSON object alone
    assert record["program"] == "paged-attention" and record["variant"] == "2block"
    assert record["parameters"]["context_lens"] == [150, 70] and record["preset"] == "910b2"
    assert record["numerics"]["match"] and len(record["numerics"]["comparisons"]) == 2
    assert {"compute_percent", "memory_percent", "limiter", "explanation"} <= set(record["bounds"])
    assert record["tasks"] == 11 and record["cycles"] > 0
    assert "chip: 11 tasks on" in captured.err and "speed of light:" in captured.err  # text on stderr
    doc = json.loads(trace_path.read_text())
    assert doc["otherData"]["runs"][0]["cycles"] == record["cycles"]
    slices = [e for e in doc["traceEvents"] if e["ph"] == "X" and e.get("cat") != "task"]
    assert len(slices) == record["instructions"]
    assert imread(plot_path).shape[:2] == (1600, 1400)  # 14 x 16 inches at 100 dpi: four panels


def test_compare_writes_a_two_variant_trace_and_a_chart(tmp_path, capsys):
    argv = ["compare", "paged-attention", "--batch", "1", "--head-dim", "64", "--block-size", "64",
            "--context-len", "300", "--no-numerics", "--trace", str(tmp_path / "c.json"),
            "--trace-sync", "hide",
            "--plot", str(tmp_path / "c.png"), "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["variant"] for r in doc["runs"]] == ["1block", "2block"] and doc["baseline"] == "1block"
    assert doc["runs"][0]["speedup"] == 1.0
    assert doc["runs"][1]["speedup"] == doc["runs"][0]["cycles"] / doc["runs"][1]["cycles"]
    trace = json.loads((tmp_path / "c.json").read_text())
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"}
    assert {"1block: memory system", "2block: memory system", "1block: aic0", "2block: aic0"} <= names
    assert not any(e.get("cat") == "sync" for e in trace["traceEvents"])


def test_dump_writes_tensors_and_summary(tmp_path, capsys):
    assert main(["run", "tile-matmul", "--dump", str(tmp_path / "d")]) == 0
    assert f"dump: 3 tensors and summary.json in {tmp_path / 'd'}" in capsys.readouterr().out
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    out = np.load(tmp_path / "d" / "out.npy")
    np.testing.assert_allclose(out, exact_product(tile_matmul.inputs(0)), rtol=1e-5, atol=1e-5)
    assert summary["tensors"]["out"]["shape"] == [16, 128] and summary["numerics"]["match"]
    # a dump is valid input again: bf16 tensors come back exactly
    assert main(["asm", str(tile_matmul.ASM_PATH), "--input", f"q={tmp_path / 'd' / 'q.npy'}",
                 "--input", f"k={tmp_path / 'd' / 'k.npy'}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cycles"] == summary["cycles"] == hand.CYCLES


def test_timeline_of_one_task_of_many(capsys):
    argv = ["run", "paged-attention", "--batch", "1", "--head-dim", "64", "--block-size", "64",
            "--context-len", "100", "--timeline", "--task", "sm_r0h0s0", "--color", "never"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "task sm_r0h0s0 on aiv" in out and "vrowmax" in out and "\033[" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "tile-matmul", "--timeline", "--task", "nope"],
         "--task 'nope': the program has no such task; tasks: tile_matmul"),
        (["run", "tile-matmul", "--timeline", "--core", "aic7"], "--core 'aic7': no task ran on that core in "
                                                                 "this run; cores that ran tasks: aic0"),
        (["run", "tile-matmul", "--plot", "u.png", "--core", "aic99"],
         "--core 'aic99': 910b2 has no such core; cores: aic0 .. aiv47"),
        (["run", "tile-matmul", "--timeline", "--core", "aic0", "--task", "tile_matmul"],
         "give --core (a core over the whole run) or --task (one task), not both"),
        (["compare", "paged-attention", "--trace", "/nonexistent/dir/t.json"],
         "--trace /nonexistent/dir/t.json: folder /nonexistent/dir does not exist"),
        (["run", "tile-matmul", "--no-numerics", "--dump", "d"], "--dump needs the GM tensors"),
        (["run", "tile-matmul", "--plot", "/nonexistent/dir/u.png"],
         "folder /nonexistent/dir does not exist"),
        (["run", "tile-matmul", "--trace-sync", "off"], "argument --trace-sync: invalid choice: 'off'"),
        (["run", "tile-matmul", "--color", "blue"], "argument --color: invalid choice: 'blue'"),
        (["asm", "missing.s"], "missing.s"),
    ],
)
def test_output_option_mistakes_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("npusim: error: ") and message in err and err.count("\n") == 1
