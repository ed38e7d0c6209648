"""isa's layers: the data modules do not import their printer, and instructions still print.

DESIGN.md: `isa` imports neither `npusim` nor `programs`, and none of `isa`'s data modules imports
its printer (`isa.asm`). `isa.asm` installs `str(instruction)` and the `isa` package imports it, so
an instruction prints as its assembly line whichever module was imported first.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    tree = ast.parse(path.read_text())
    names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    return names | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}


DATA_MODULES = ("types", "regions", "instructions", "program", "limits", "errors")


@pytest.mark.parametrize("module", DATA_MODULES)
def test_no_data_module_imports_its_printer(module):
    """DESIGN.md: none of isa's data modules imports its printer (isa.asm), not even inside a function."""
    assert "isa.asm" not in _imports(ROOT / "isa" / f"{module}.py")


def test_an_instruction_prints_as_assembly_whatever_was_imported_first():
    """str(instruction) is its assembly line even when only isa.instructions was imported."""
    code = ("from isa.instructions import SetFlag; from isa.types import Pipe; "
            "print(SetFlag(Pipe.M, Pipe.FIX, 3))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout == "set_flag M FIX 3\n"


@pytest.mark.parametrize("path", sorted((ROOT / "isa").glob("*.py")), ids=lambda p: p.name)
def test_isa_imports_neither_npusim_nor_programs(path):
    assert not {m for m in _imports(path) if m.split(".")[0] in ("npusim", "programs")}
