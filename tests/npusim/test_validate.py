"""`npusim validate`: the suite's data, its arithmetic and the command's mechanics.

Nothing here depends on how well the model is calibrated: figures are worked by hand from the
sources, replays are fed hand-made records or compared between two configs, and the command is
checked for its fields and exit status. The command runs `--quick` (no 3072^3 or 6144^3 GEMM).
"""

import json

import pytest

from isa.types import Pipe
from npusim import load_preset
from npusim.cli import main
from npusim.results import Record
from npusim.validation import Measurement, Outcome, ValidationError, mean_abs_error, run, select, suite_rows
from npusim.validation.replay import Alone, Gemm, LineFit, Span

ROWS = suite_rows()
BY_NAME = {m.name: m for m in ROWS}


def _outcome(published: float, simulated: float, tolerance: float = 0.25) -> Outcome:
    replay = Alone(".kernel k\n    vexp     UB[0x0000] fp32[1,8] <- UB[0x0000] fp32[1,8]", Span.OCCUPANCY)
    return Outcome(Measurement("row", "vector", published, "cycles", tolerance, "by hand", replay), simulated)


# --- the data -----------------------------------------------------------------------------------

def test_the_suite_has_enough_distinct_rows_each_with_a_source_unit_and_tolerance():
    assert len(ROWS) >= 20
    assert len(BY_NAME) == len(ROWS), "row names are unique"
    for m in ROWS:
        assert m.source.strip() and m.unit.strip(), m.name
        assert m.published > 0, m.name
        assert 0 < m.tolerance <= 0.25, m.name
        assert m.replay.how, m.name


def test_every_source_names_a_repository_or_document_and_a_path():
    repos = ("xiaobingling93-pixel/Ascend-mskpp", "zouzias/pto-isa-mirror", "hicann/asc-devkit")
    for m in ROWS:
        assert any(repo in m.source for repo in repos), m.name
        assert any(path in m.source for path in (".cpp", ".csv", ".hpp", "README")), m.name


def test_pto_isa_fits_are_slope_times_rows_times_cols_plus_bias():
    # formula_params.csv "TROWMAX,fp32,128,0.0625,48": 0.0625 x 16 x 128 + 48 = 128 + 48
    assert BY_NAME["TROWMAX (vrowmax) fp32 [16,128]"].published == pytest.approx(176)
    # "TROWMAX,fp32,8,0.875,46": 0.875 x 64 x 8 + 46 = 448 + 46
    assert BY_NAME["TROWMAX (vrowmax) fp32 [64,8]"].published == pytest.approx(494)
    # "TMULS,fp32,128,0.0169,17.5": 0.0169 x 2048 + 17.5 = 34.6112 + 17.5
    assert BY_NAME["TMULS (vmuls) fp32 [16,128]"].published == pytest.approx(52.1112)


def test_other_published_figures_worked_by_hand():
    # msKPP GM_TO_L1_910b1, 1 KiB: totalCycles 176977 for 1024 transfers
    assert BY_NAME["GM -> L1 load 1 KiB, one transfer"].published == pytest.approx(172.829, abs=1e-3)
    # pto-isa cube: 6 + 2 (fp32) x 8 x ceil(64 / 8) x 8
    assert BY_NAME["mmad fp32 [128,64] x [64,128]"].published == 1030
    assert BY_NAME["mmad fp16 [16,16] x [16,16]"].published == 7
    # msKPP UB_TO_GM_910b1 at 76 KiB: 110.1518373 GiB/s x 2^30 / 1.8e9
    assert BY_NAME["UB -> GM rate, 76 KiB store"].published == pytest.approx(65.708, abs=1e-3)
    assert BY_NAME["GEMM fp16 6144^3 on 24 cube cores, time"].published == pytest.approx(1506)


# --- the arithmetic -----------------------------------------------------------------------------

def test_ratio_error_and_tolerance():
    on_the_bound = _outcome(200, 250)
    assert on_the_bound.ratio == 1.25 and on_the_bound.error == pytest.approx(0.25)
    assert on_the_bound.ok
    assert not _outcome(200, 251).ok
    assert _outcome(200, 150).ok and not _outcome(200, 149).ok
    assert not _outcome(7, 8, tolerance=0.05).ok  # 8 / 7 = 1.143


def test_mean_absolute_error():
    outcomes = [_outcome(100, 110), _outcome(200, 150), _outcome(50, 50)]  # errors 0.10, 0.25, 0
    assert mean_abs_error(outcomes) == pytest.approx(0.35 / 3)
    assert mean_abs_error([]) == 0.0


def test_line_fit_reads_rate_and_latency_off_two_records():
    small, large = ".kernel a\n    x", ".kernel b\n    y"  # never parsed: the records are given
    memo = {("alone", small): Record(0, Pipe.MTE1, "", 0, 5, 37, 65, 8192, 0),  # 28 + 8192 / 256
            ("alone", large): Record(0, Pipe.MTE1, "", 0, 5, 261, 289, 65536, 0)}  # 28 + 65536 / 256
    config = load_preset("910b2")
    assert LineFit(small, large, "rate").figure(config, memo) == 256
    assert LineFit(small, large, "latency").figure(config, memo) == 28


def test_alone_reads_occupancy_completion_and_rates_off_the_record():
    text = ".kernel a\n    x"
    memo = {("alone", text): Record(0, Pipe.MTE2, "", 0, 10, 110, 310, 1000, 0)}
    config = load_preset("910b2")
    assert Alone(text, Span.OCCUPANCY).figure(config, memo) == 100
    assert Alone(text, Span.COMPLETION).figure(config, memo) == 300
    assert Alone(text, Span.OCCUPANCY, rate=True).figure(config, memo) == 10
    assert Alone(text, Span.COMPLETION, rate=True).figure(config, memo) == pytest.approx(1000 / 300)


def test_a_load_row_replays_one_transfer_at_the_path_rate():
    """Halving the GM -> L1 rate adds 64 KiB / rate cycles to the 64 KiB load, whatever its latency."""
    row = [BY_NAME["GM -> L1 load 64 KiB, one transfer"]]
    base = load_preset("910b2")
    fast, slow = (run(row, base.replace({"mte2.gm_to_l1_bytes_per_cycle": r}))[0].simulated for r in (64, 32))
    assert slow - fast == 65536 / 32 - 65536 / 64


def test_a_gemm_row_counts_the_kernel_launch_as_the_profiler_does():
    """The time adds chip.launch_cycles; a busy share is over the cycles with the launch."""
    base = load_preset("910b2")
    quiet, launched = (base.replace({"chip.launch_cycles": n}) for n in (0, 18000))  # 18000 cycles = 10 us
    time, share = Gemm(256, 4, "us"), Gemm(256, 4, "M")
    bare, bare_share = time.figure(quiet, {}), share.figure(quiet, {})
    assert time.figure(launched, {}) == pytest.approx(bare + 10.0)
    cycles = bare * 1800  # the kernel's own cycles at 1.8 GHz
    assert share.figure(launched, {}) == pytest.approx(bare_share * cycles / (cycles + 18000))


SLOW = ("3072^3", "6144^3")  # the GEMM sizes that take ten seconds or more


def test_select_quick_and_only():
    quick, left_out = select(ROWS, quick=True)
    assert [m.name for m in left_out] == [m.name for m in ROWS if any(n in m.name for n in SLOW)]
    assert any("1536" in m.name for m in quick)
    only, _ = select(ROWS, only=["gm -> l1", "VROWMAX"])
    assert len(only) == 6 + 4 and all("GM -> L1" in m.name or "vrowmax" in m.name for m in only)
    with pytest.raises(ValidationError, match="no row's name contains 'nothing'"):
        select(ROWS, only=["nothing"])


# --- the command --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def quick_json():
    """One `npusim validate --quick --json` run: (status, rows from stdout, text from stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["validate", "--quick", "--json"])
    return status, json.loads(out.getvalue()), err.getvalue()


def test_json_rows_carry_the_figures_and_their_judgement(quick_json):
    status, rows, _ = quick_json
    assert [r["name"] for r in rows] == [m.name for m in ROWS if not any(n in m.name for n in SLOW)]
    for r in rows:
        assert {"name", "source", "published", "simulated", "unit", "ratio", "tolerance", "ok"} <= set(r)
        assert r["source"] == BY_NAME[r["name"]].source
        assert r["published"] == BY_NAME[r["name"]].published
        assert r["simulated"] > 0
        assert r["ratio"] == pytest.approx(r["simulated"] / r["published"])
        assert r["ok"] == (abs(r["ratio"] - 1) <= r["tolerance"] + 1e-12)
    assert status == (0 if all(r["ok"] for r in rows) else 1)


def test_text_report_has_every_row_and_the_mean_absolute_error(quick_json):
    _, rows, text = quick_json
    for r in rows:
        assert r["name"] in text
    mae = sum(abs(r["ratio"] - 1) for r in rows) / len(rows)
    assert f"mean absolute error |simulated / published - 1|: {100 * mae:.1f}% over {len(rows)} rows" in text
    outside = sum(not r["ok"] for r in rows)
    assert f"{outside} of {len(rows)} rows outside their tolerance; 6 rows left out (--quick: slow)" in text
    assert text.count("PASS") + text.count("FAIL") == len(rows)


def test_a_row_forced_outside_its_tolerance_exits_1(capsys):
    assert main(["validate", "--only", "GM -> L1", "--set", "mte2.gm_to_l1_bytes_per_cycle=10"]) == 1
    out = capsys.readouterr().out
    assert out.count("FAIL") >= 1
    assert "6 of 6 rows outside their tolerance" in out  # 512 KiB at 10 B/cycle: 15x the published time


def test_rows_within_tolerance_exit_0(capsys):
    # The asc-devkit rate is the line's slope: exactly the preset's rate, whatever the latency.
    assert main(["validate", "--only", "L1 -> L0A rate", "--set", "mte1.l1_to_l0a_bytes_per_cycle=256"]) == 0
    assert "0 of 2 rows outside their tolerance" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--only", "no such row"], "no row's name contains 'no such row'"),
    (["--set", "mte2.no_such_key=1"], "unknown config key 'mte2.no_such_key'"),
    (["--preset", "no_such_preset"], "unknown preset 'no_such_preset'"),
    (["--only", "GM -> L1", "--set", "buffers.l1_bytes=1024"], "does not fit preset 910b2"),
])
def test_user_mistakes_are_one_line_and_exit_2(capsys, argv, message):
    assert main(["validate", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("npusim: error:") and message in captured.err
    assert captured.err.count("\n") == 1
