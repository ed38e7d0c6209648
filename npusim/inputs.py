"""Inputs for a program's GM tensors: read from .npy files or drawn at random from a seed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from isa.errors import IsaError
from isa.program import Program, Role
from isa.types import DType


def random_inputs(program: Program, seed: int, skip: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Standard-normal values (small integers for int dtypes) for each input tensor not in `skip`."""
    rng = np.random.default_rng(seed)
    skipped = set(skip)
    out: dict[str, np.ndarray] = {}
    for t in program.tensors_of(Role.INPUT):
        if t.name in skipped:
            continue
        if t.dtype.is_float:
            out[t.name] = rng.standard_normal(t.shape, dtype=np.float32).astype(t.dtype.np)
        else:
            out[t.name] = rng.integers(-8, 8, size=t.shape).astype(t.dtype.np)
    return out


def load_inputs(program: Program, specs: Sequence[str]) -> dict[str, np.ndarray]:
    """Read `NAME=FILE.npy` pairs for declared tensors; float files are rounded to the tensor's dtype.

    Shape and dtype are checked when the program's GM is built from them. Raises IsaError, naming
    the `--input` it came from, for a malformed pair, an undeclared tensor, or a file that cannot
    be read as .npy.
    """
    out: dict[str, np.ndarray] = {}
    declared = {t.name: t for t in program.tensors}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise IsaError(f"--input {spec!r} must look like NAME=FILE.npy")
        if name not in declared:
            raise IsaError(f"--input {name}: no such tensor; declared: {', '.join(sorted(declared))}")
        out[name] = _as_declared(_read(spec, path), declared[name].dtype)
    return out


def _read(spec: str, path: str) -> np.ndarray:
    """The array in a .npy file; IsaError naming the option if the file cannot be read as one."""
    try:
        value = np.load(path, allow_pickle=False)
    except OSError as err:
        raise IsaError(f"--input {spec}: cannot read it: {err.strerror or err}") from None
    except (ValueError, EOFError) as err:  # not .npy, truncated, or pickled objects
        raise IsaError(f"--input {spec}: not a .npy file ({err})") from None
    if not isinstance(value, np.ndarray):  # an .npz archive loads as a mapping of arrays
        raise IsaError(f"--input {spec}: an .npz archive; give one array per tensor as a .npy file")
    return value


def _as_declared(value: np.ndarray, dtype: DType) -> np.ndarray:
    """Undo what .npy files do to bf16 (it is saved as raw 2-byte voids) and round other floats."""
    if value.dtype.kind == "V" and value.dtype.itemsize == dtype.itemsize:
        return value.view(dtype.np)
    if value.dtype.kind == "f" and dtype.is_float and value.dtype != dtype.np:
        return value.astype(np.float32).astype(dtype.np)  # round to nearest even, as the ISA does
    return value
