"""npusim: when each instruction of an Ascend-class NPU kernel happens and what it costs.

The names below load on first use (PEP 562), so that `import npusim.cli` is quick: the command
line answers a Ctrl-C during its imports itself, and `npusim --help` loads only what it shows.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from npusim.config import HardwareConfig, load_preset
    from npusim.results import KernelTrace, Record, Result
    from npusim.simulate import DeadlockError, simulate

_HOMES = {"HardwareConfig": "npusim.config", "load_preset": "npusim.config", "KernelTrace": "npusim.results",
          "Record": "npusim.results", "Result": "npusim.results", "DeadlockError": "npusim.simulate",
          "simulate": "npusim.simulate"}

__all__ = ["DeadlockError", "HardwareConfig", "KernelTrace", "Record", "Result", "load_preset", "simulate"]


class _Package(types.ModuleType):
    """This package, keeping its exported names when a submodule of the same name is imported.

    Importing `npusim.simulate` (the module) binds the package's `simulate` to it; loaded eagerly,
    the package then rebound the name to the function, and lazily it must refuse the binding so
    `from npusim import simulate` is the function whatever was imported first.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _HOMES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    """The exported names too, before first use (tab completion, dir())."""
    return sorted({*globals(), *__all__})


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'npusim' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)  # __all__ names exactly _HOMES' keys
    globals()[name] = value  # once loaded, an ordinary attribute
    return value
