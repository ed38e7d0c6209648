"""Start-up (issue 14): commands that only parse arguments or list things load no torch.

torch takes seconds to import, matplotlib and ml_dtypes about a second each, pandas half of one;
`npusim --help` used to pay the first three. Each command runs in a fresh interpreter, because in
this one pytest has imported torch long ago; the child reports its exit code and which of the
heavy modules it loaded.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "matplotlib", "ml_dtypes", "pandas")

CHILD = """
import json, sys
from npusim.cli import main
try:
    code = main({argv!r})
except SystemExit as stop:  # --help leaves through argparse
    code = stop.code
print("\\n" + json.dumps({{"code": code, "loaded": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def run_fresh(argv: list[str]) -> tuple[int, list[str], str]:
    """(exit code, heavy modules loaded, stdout) of `npusim <argv>` in a new interpreter."""
    code = CHILD.format(argv=argv, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    report = json.loads(done.stdout.splitlines()[-1])
    return report["code"], report["loaded"], done.stdout


LISTING = [["--help"], ["run", "--help"], ["run", "paged-attention", "--help"], ["presets"],
           ["presets", "--keys"], ["programs"]]


@pytest.mark.parametrize("argv", LISTING, ids=" ".join)
def test_parsing_and_listing_load_nothing_heavy(argv):
    code, loaded, _ = run_fresh(argv)
    assert code in (0, None)
    assert loaded == []


def test_check_loads_no_torch_and_no_matplotlib():
    """A static check needs numpy's dtypes (ml_dtypes for bf16) but neither references nor figures."""
    code, loaded, out = run_fresh(["check", "programs/tile_matmul.s"])
    assert code == 0, out
    assert "torch" not in loaded and "matplotlib" not in loaded


def test_a_run_still_computes_its_torch_reference():
    """torch now loads inside the reference; the run must still draw inputs and compare with it."""
    code, loaded, out = run_fresh(["run", "tile-matmul"])
    assert code == 0, out
    assert "out fp32[16, 128]" in out and ": match" in out
    assert "torch" in loaded


def test_a_timing_only_paged_attention_run_loads_no_torch_and_no_ml_dtypes():
    """It builds from the block table alone, drawn as torch would draw it but by numpy
    (`paged_attention.torch_randperm`), and simulates without inputs or references; bf16 tiles and
    tensors need only their item size, which `DType` knows without the bf16 numpy type."""
    code, loaded, out = run_fresh(["run", "paged-attention", "--batch", "2", "--context-lens", "300,129",
                                   "--no-numerics", "--quiet"])
    assert code == 0, out
    assert "torch" not in loaded and "ml_dtypes" not in loaded
    assert "pandas" not in loaded  # the summary's busiest kinds come from numpy; frames only on request


LAZY_NAMES = """
import sys
{first}
import npusim
from npusim import DeadlockError, HardwareConfig, Result, load_preset, simulate
assert callable(simulate) and simulate.__module__ == "npusim.simulate", simulate
assert npusim.simulate is simulate and isinstance(DeadlockError, type)
assert HardwareConfig.__name__ == "HardwareConfig"
assert "npusim.simulate" in sys.modules and Result.__module__ == "npusim.results" and callable(load_preset)
assert set(npusim.__all__) <= set(dir(npusim))
print("ok")
"""


@pytest.mark.parametrize("first", ["", "import npusim.simulate", "from npusim.simulate import simulate as s",
                                   "import npusim.cli.app"])
def test_the_package_names_load_on_first_use_as_what_they_name(first):
    """npusim's names load lazily (the command line's imports stay light); a submodule named like one
    of them (npusim.simulate) imported first must not take the name's place."""
    done = subprocess.run([sys.executable, "-c", LAZY_NAMES.format(first=first)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout == "ok\n", done.stderr
