"""Ctrl-C: every command ends with one line `npusim: interrupted` and exit status 130, never a traceback.

The interrupt is raised from a function each command calls at a different stage (building the
program, simulating, writing an output, listing), by a real SIGINT to a running process, and during
the torch import of a fresh interpreter.
"""

import importlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import npusim.cli.asm
import npusim.cli.check
import npusim.cli.common
import npusim.cli.listing
import npusim.cli.runner
from npusim import sweep, trace
from npusim.cli import main
from programs import registry, tile_matmul

ROOT = Path(__file__).resolve().parents[2]
PA = ["paged-attention", "--batch", "1", "--head-dim", "64", "--block-size", "64", "--context-len", "100"]


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("argv", "module", "name"),
    [
        (["run", *PA], registry.Workload, "instance"),  # building the instance
        (["run", "tile-matmul"], npusim.cli.runner, "simulate"),  # inside the engine
        (["run", "tile-matmul", "--trace", "TMP/t.json"], trace, "write"),  # writing an output
        (["compare", *PA], npusim.cli.runner, "simulate"),
        (["asm", str(tile_matmul.ASM_PATH)], npusim.cli.asm, "load_inputs"),
        (["check", str(tile_matmul.ASM_PATH)], npusim.cli.check, "sanitize"),
        (["presets"], npusim.cli.listing, "load_preset"),
        (["sweep", *PA, "--vary", "variant=1block,2block", "--no-cache", "--out", "TMP/s.csv"],
         npusim.cli.common, "load_preset"),  # reading the study's preset
        (["validate", "--quick", "--only", "mmad"], importlib.import_module("npusim.validation.command"),
         "run_suite"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_an_interrupt_anywhere_is_one_line_and_status_130(argv, module, name, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(module, name, _interrupt)
    assert main([a.replace("TMP", str(tmp_path)) for a in argv]) == 130
    err = capsys.readouterr().err
    assert err == "npusim: interrupted\n"


def test_an_interrupt_while_a_sweep_writes_its_table(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sweep, "write_csv", _interrupt)
    argv = ["sweep", "tile-matmul", "--vary", "seed=1", "--jobs", "1", "--no-cache", "--quiet",
            "--out", str(tmp_path / "t.csv")]
    assert main(argv) == 130
    assert capsys.readouterr().err == "npusim: interrupted\n"


def test_a_real_ctrl_c_during_a_run(tmp_path):
    """SIGINT a second after the header: the run is then drawing inputs, in torch, or in the engine
    (batch 32 with numerics leaves many seconds of work on any machine), wherever it lands the process
    ends the same way."""
    command = [sys.executable, "-u", "-m", "npusim.cli", "run", "paged-attention", "--batch", "32", "--quiet"]
    # Ctrl-C's default action even where this test runs with SIGINT ignored (a background job inherits that)
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines = [child.stdout.readline(), child.stdout.readline()]
        assert "static checks passed" in lines[1], lines
        time.sleep(1.0)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, f"status {child.returncode}\n{out}{err}"
    assert err == "npusim: interrupted\n"
    assert "timing:" not in out  # it stopped before the summary


CTRL_C_ON_IMPORT = """
import json, sys

class CtrlCOnImport:  # a Ctrl-C landing where `module` is first imported
    def __init__(self, module):
        self.module = module

    def find_spec(self, name, path=None, target=None):
        if name == self.module:
            raise KeyboardInterrupt
        return None
"""

TORCH_INTERRUPTED = CTRL_C_ON_IMPORT + """
from npusim.cli import main
sys.meta_path.insert(0, CtrlCOnImport("torch"))
sys.exit(main(["run", "tile-matmul"]))
"""


def test_an_interrupt_during_the_torch_import():
    """A fresh interpreter (this one has torch loaded already) whose `import torch` is interrupted."""
    done = subprocess.run([sys.executable, "-c", TORCH_INTERRUPTED], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 130, done.stdout + done.stderr
    assert done.stderr == "npusim: interrupted\n"
    assert "static checks passed" in done.stdout  # it got as far as the reference


STARTUP_INTERRUPTED = CTRL_C_ON_IMPORT + """
from npusim.cli import main
light = [m for m in ("numpy", "simpy", "isa") if m in sys.modules]
sys.meta_path.insert(0, CtrlCOnImport("numpy"))
code = main(["presets"])
print(json.dumps({"code": code, "loaded_by_the_entry_point": light}))
"""


def test_an_interrupt_while_the_commands_load():
    """The console script's own import loads none of the commands' modules: an interrupt while they
    load (the first half second of every command) lands inside `main` and is answered there."""
    done = subprocess.run([sys.executable, "-c", STARTUP_INTERRUPTED], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.stderr == "npusim: interrupted\n"
    assert done.stdout.strip() == '{"code": 130, "loaded_by_the_entry_point": []}'
