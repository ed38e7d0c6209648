"""Output options of run, compare and asm: every path refused before the run, and what they write.

A refused path costs nothing: the build, the sanitizer and the simulation are replaced by functions
that fail the test if called, so a check that ran after them shows up as that failure.
"""

import csv
import json
import re

import pytest

import npusim.cli.asm
import npusim.cli.runner
import npusim.plots
from npusim import inputs
from npusim.cli import main
from programs import tile_matmul

ASM = str(tile_matmul.ASM_PATH)
PA = ["paged-attention", "--batch", "1", "--head-dim", "64", "--block-size", "64", "--context-len", "100"]
COMMANDS = {"run": ["run", "tile-matmul"], "compare": ["compare", *PA], "asm": ["asm", ASM]}


def _never(*args, **kwargs):
    raise AssertionError("the run started before its output paths were checked")


@pytest.fixture
def no_run(monkeypatch):
    for name in ("build", "sanitize", "simulate"):
        monkeypatch.setattr(npusim.cli.runner, name, _never)


def _one_line(capsys, *words):
    """The error is one `npusim: error:` line naming each of `words`; returns it."""
    captured = capsys.readouterr()
    assert captured.err.startswith("npusim: error: ") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    for word in words:
        assert word in captured.err
    return captured.err


def _bad_paths(tmp):
    """(option, a path it must refuse): a wrong extension, a folder, a missing folder, a file."""
    (tmp / "folder.png").mkdir()
    (tmp / "a_file").write_text("")
    return [("--plot", tmp / "out.txt"), ("--plot", tmp / "folder.png"), ("--roofline", tmp / "no" / "r.png"),
            ("--roofline", tmp / "r"), ("--stats", tmp / "a_file"), ("--stats", tmp / "a_file" / "sub"),
            ("--report", tmp / "page.txt"), ("--report", tmp / "no" / "page.html"),
            ("--trace", tmp / "folder.png"), ("--trace", tmp / "no" / "t.json")]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_output_path_is_refused_before_the_run(command, tmp_path, no_run, capsys):
    for option, path in _bad_paths(tmp_path):
        assert main([*COMMANDS[command], option, str(path)]) == 2, (option, path)
        _one_line(capsys, f"{option} {path}:")


@pytest.mark.parametrize("command", ["run", "asm"])
def test_dump_into_a_file_is_refused_before_the_run(command, tmp_path, no_run, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main([*COMMANDS[command], "--dump", str(blocker)]) == 2
    _one_line(capsys, f"--dump {blocker}: is a file; give a directory")


@pytest.mark.parametrize("command", ["run", "asm"])
@pytest.mark.parametrize(("given", "valid"), [(["--core", "aic0"], "--timeline or --plot"),
                                              (["--task", "tile_matmul"], "--timeline")])
def test_core_and_task_need_a_view_that_shows_them(command, given, valid, no_run, capsys):
    assert main([*COMMANDS[command], *given]) == 2
    _one_line(capsys, f"{given[0]} {given[1]}: only {valid} shows one", f"drop {given[0]}")


def test_a_repeated_variant_is_refused(no_run, capsys):
    assert main(["compare", *PA, "--variants", "2block,1block,2block"]) == 2
    _one_line(capsys, "--variants", "2block given twice", "1block, 2block")


def test_more_cores_than_the_chip_has_is_refused(capsys):
    assert main(["run", "matmul", "--cores", "100"]) == 2
    _one_line(capsys, "matmul: --cores 100: the chip has 24 cube cores")  # 910b2: chip.cube_cores = 24
    assert main(["run", "matmul", "--cores", "9", "--preset", "310p"]) == 2
    _one_line(capsys, "--cores 9: the chip has 8 cube cores")  # 310p.toml: chip.cube_cores = 8


def test_an_error_names_the_program_once(capsys):
    assert main(["run", "matmul", "--k", "0"]) == 2
    assert _one_line(capsys) == "npusim: error: matmul: --k must be at least 1, got 0\n"


def test_the_matmul_header_names_the_cores_it_used(capsys):
    """--cores 0 means all of them; the header says how many ran a task, as the timing line counts."""
    for argv, used in (([], None), (["--m", "64", "--n", "64", "--k", "64"], 1), (["--cores", "3"], None)):
        assert main(["run", "matmul", "--no-numerics", "--quiet", *argv]) == 0
        out = capsys.readouterr().out
        cores = int(re.search(r"cores=(\d+)", out.splitlines()[0]).group(1))
        ran = int(re.search(r"task\(s\) on (\d+) core\(s\)", out).group(1))
        assert cores == ran and cores >= 1 and (used is None or cores == used)
        assert ran <= (3 if "--cores" in argv else 24)


def test_an_output_tensor_given_as_input_is_refused_before_the_run(tmp_path, no_run, capsys):
    assert main(["asm", ASM, "--input", f"out={tmp_path / 'out.npy'}"]) == 2
    _one_line(capsys, "--input out: tensor out is output")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_program_larger_than_host_memory_is_refused_before_the_run(command, monkeypatch, capsys):
    monkeypatch.setattr(inputs, "physical_memory", lambda: 1024)  # 1 KiB: less than tile-matmul's GM
    monkeypatch.setattr(npusim.cli.runner, "simulate", _never)
    assert main(COMMANDS[command]) == 2
    _one_line(capsys, "of host memory", "physical memory")


def test_asm_without_numerics_draws_no_inputs(monkeypatch, capsys):
    monkeypatch.setattr(npusim.cli.asm, "random_inputs", _never)
    assert main(["asm", ASM, "--no-numerics", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "numerics: off (--no-numerics)" in out and "first values" not in out


def test_asm_refuses_inputs_it_would_not_read(tmp_path, no_run, capsys):
    assert main(["asm", ASM, "--no-numerics", "--input", f"q={tmp_path / 'q.npy'}"]) == 2
    _one_line(capsys, "--input", "--no-numerics")


def _titles(monkeypatch):
    """Every figure's suptitle and axes titles, as saved."""
    saved = []
    def save(fig, path):
        saved.append([fig.get_suptitle(), *(ax.get_title() for ax in fig.axes)])

    monkeypatch.setattr(npusim.plots, "save", save)
    return saved


@pytest.mark.parametrize("command", ["run", "asm"])
def test_header_and_figures_name_the_preset_file_and_the_overrides(command, monkeypatch, tmp_path, capsys):
    preset = "npusim/presets/910b3.toml"
    saved = _titles(monkeypatch)
    argv = [*COMMANDS[command], "--no-numerics", "--quiet", "--preset", preset, "--set", "clock_ghz=1.5",
            "--plot", str(tmp_path / "p.png"), "--roofline", str(tmp_path / "r.png")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    said = f"preset {preset} (910b3) with clock_ghz=1.5"
    assert f"{said}; static checks passed" in out
    assert len(saved) == 2 and said in saved[0][0] and any(said in t for t in saved[1])


def test_compare_title_and_figures_name_the_overrides(monkeypatch, tmp_path, capsys):
    saved = _titles(monkeypatch)
    argv = ["compare", *PA, "--no-numerics", "--quiet", "--set", "clock_ghz=1.5",
            "--plot", str(tmp_path / "p.png"), "--roofline", str(tmp_path / "r.png")]
    assert main(argv) == 0
    assert "on preset 910b2 with clock_ghz=1.5" in capsys.readouterr().out.splitlines()[0]
    assert "with clock_ghz=1.5" in saved[0][0]
    assert any("1block, 2block on preset 910b2 with clock_ghz=1.5" in title for title in saved[1])


def test_compare_stats_write_a_directory_per_variant(tmp_path, capsys):
    """Each variant's instructions.csv has a row per instruction the JSON record counts, and its busy
    column sums to the record's busy cycles per pipe."""
    assert main(["compare", *PA, "--no-numerics", "--quiet", "--json", "--stats", str(tmp_path / "s")]) == 0
    records = json.loads(capsys.readouterr().out)["runs"]
    for record in records:
        with open(tmp_path / "s" / record["variant"] / "instructions.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == record["instructions"]
        for pipe, busy in record["busy_cycles"].items():
            assert sum(int(r["busy"]) for r in rows if r["pipe"] == pipe) == busy


def test_run_report_is_one_page_with_the_numerics(tmp_path, capsys):
    page = tmp_path / "r.html"
    assert main(["run", "tile-matmul", "--quiet", "--set", "clock_ghz=1.5", "--report", str(page)]) == 0
    assert f"report: {page}" in capsys.readouterr().out
    html = page.read_text()
    assert "clock_ghz=1.5" in html and "numerics against torch fp32" in html and "<img" in html
    assert "http://" not in html and "https://" not in html  # self-contained: nothing fetched


def test_an_assembly_kernel_gets_every_view(tmp_path, capsys):
    """`asm` writes the tables, the roofline and the report like `run`: the tables hold the kernel's
    12 instructions and its busy cycles as the JSON record counts them (tile_matmul_by_hand works
    those cycles out by hand), the roofline is a PNG, the page embeds its figures and shows the
    kinds of the kernel."""
    stats_dir, page, roof = tmp_path / "s", tmp_path / "r.html", tmp_path / "roof.png"
    argv = ["asm", ASM, "--quiet", "--json", "--stats", str(stats_dir), "--report", str(page),
            "--roofline", str(roof)]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    with open(stats_dir / "instructions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == record["instructions"] == 12
    assert {p: sum(int(r["busy"]) for r in rows if r["pipe"] == p) for p in record["busy_cycles"]} \
        == record["busy_cycles"]
    with open(stats_dir / "kinds.csv", newline="") as f:
        kinds = {(r["mnemonic"], r["pipe"]): int(r["count"]) for r in csv.DictReader(f)}
    assert kinds[("mmad", "M")] == 1 and kinds[("load", "MTE2")] == 2
    assert roof.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = page.read_text()
    assert html.count("data:image/png;base64,") >= 2 and "mmad" in html and "tile_matmul" in html
