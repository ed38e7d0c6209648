"""Inputs for a program's GM tensors: read from .npy files or drawn at random from a seed, and
whether the machine has the memory to run the program at all.

Every check here runs before anything is allocated: a `--input` file's header is read and checked
(a .npy file, a plain numeric dtype, the tensor's shape) before its data is, and a program whose
GM would not fit in the machine's memory is refused before a run draws or zeroes it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np

from isa.draw import random_inputs
from isa.errors import IsaError
from isa.program import Program, Role, Tensor
from isa.types import DType
from npusim import l2
from npusim.config import HardwareConfig

__all__ = ["check_host_memory", "load_inputs", "physical_memory", "random_inputs"]

_GIB = 1 << 30


# --- host memory ----------------------------------------------------------------------------------

def physical_memory() -> int | None:
    """The machine's physical memory in bytes (None where the OS does not say)."""
    if not hasattr(os, "sysconf"):
        return None
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _tensor(t: Tensor) -> str:
    return f"{t.name} {t.dtype.value}{list(t.shape)} of {t.nbytes} bytes ({t.nbytes / _GIB:.1f} GiB)"


def check_host_memory(program: Program, config: HardwareConfig, numerics: bool,
                      limit: int | None = None) -> None:
    """IsaError if a run of `program` needs more host memory than `limit` (default: the machine's
    physical memory), naming the largest tensor, the sizes and the limit.

    A timing-only run holds the L2 model's state, which grows with GM (`l2.host_bytes`); a run with
    numerics also holds every GM tensor, and each input twice: as drawn or read, and GM's own copy.
    """
    limit = physical_memory() if limit is None else limit
    if limit is None or not program.tensors:
        return
    largest = max(program.tensors, key=lambda t: t.nbytes)
    timing = l2.host_bytes(config, program.tensors)
    have = (f"its largest tensor is {_tensor(largest)}, and this machine has {limit / _GIB:.1f} GiB "
            f"({limit} bytes) of physical memory")
    if timing > limit:
        raise IsaError(f"program {program.name} needs {_size(timing)} of host memory even to time it (the "
                       f"L2 model keeps {l2.HOST_BYTES_PER_LINE} bytes per {config.l2.line_bytes}-byte "
                       f"line of GM); {have}; declare smaller tensors")
    if not numerics:
        return
    gm = sum(t.nbytes for t in program.tensors) + sum(t.nbytes for t in program.tensors_of(Role.INPUT))
    if timing + gm > limit:
        raise IsaError(f"program {program.name} needs {_size(timing + gm)} of host memory for a run with "
                       f"numerics (every GM tensor, each input twice, and the timing model's state); "
                       f"{have}; --no-numerics times the program without allocating any tensor")


def _size(nbytes: int) -> str:
    return f"{nbytes / _GIB:.1f} GiB ({nbytes} bytes)"


# --- .npy files -----------------------------------------------------------------------------------

_MAGIC = b"\x93NUMPY"
_HEADER_BYTES = {1: 2, 2: 4, 3: 4}  # format version -> size of the header-length field
_PLAIN = {np.dtype(t).str: np.dtype(t) for t in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64)}
_RAW_2_BYTES = ("<V2", "|V2")  # how a bf16 (ml_dtypes) array is saved: as raw 2-byte voids
_DIMS = r"\(\s*((?:\d{1,19}\s*,\s*)*(?:\d{1,19})?)\s*\)"  # a tuple of int64s, as numpy writes it
_ENTRY = rf"'\w+'\s*:\s*(?:'[^']*'|True|False|{_DIMS}|\[[^{{}}]*\])"  # [...]: a structured descr
_DICT = re.compile(rf"\{{\s*(?:{_ENTRY}\s*,\s*)*{_ENTRY}\s*,?\s*\}}\s*")  # the dict literal numpy reads
_KEY = re.compile(r"'(\w+)'\s*:")
_DESCR = re.compile(r"'descr'\s*:\s*'([^']*)'")
_SHAPE = re.compile(rf"'shape'\s*:\s*{_DIMS}")


def _header(f: BinaryIO, where: str) -> tuple[str, tuple[int, ...], int]:
    """The dtype text, shape and data offset of a .npy file, checked before numpy reads it."""
    magic = f.read(8)
    if magic[:2] == b"PK":
        raise IsaError(f"{where}: an .npz archive, not a .npy file; give one array per tensor (np.save)")
    if len(magic) < 8 or magic[:6] != _MAGIC or magic[6] not in _HEADER_BYTES:
        raise IsaError(f"{where}: not a .npy file (it does not start with numpy's magic bytes "
                       f"\\x93NUMPY and a format version 1 to 3); write it with np.save")
    size_bytes = _HEADER_BYTES[magic[6]]
    length = int.from_bytes(f.read(size_bytes), "little")
    text = f.read(length).decode("latin-1")
    descr, shape = _DESCR.search(text), _SHAPE.search(text)
    keys = sorted(_KEY.findall(text))
    if not _DICT.fullmatch(text) or keys != ["descr", "fortran_order", "shape"] or shape is None:
        raise IsaError(f"{where}: not a .npy file (its header is not numpy's); write it with np.save")
    if descr is None or (descr.group(1) not in _PLAIN and descr.group(1) not in _RAW_2_BYTES):
        raise IsaError(f"{where}: holds Python objects or a structured or non-native dtype, not plain "
                       f"numbers; npusim reads {', '.join(sorted(d.name for d in _PLAIN.values()))} "
                       f"and bf16 arrays")
    dims = tuple(int(d) for d in shape.group(1).replace(",", " ").split())
    return descr.group(1), dims, 8 + size_bytes + length


def _check_npy(f: BinaryIO, where: str, tensor: Tensor) -> None:
    """IsaError unless the open file is a .npy array numpy can read whole as `tensor`'s value."""
    descr, shape, offset = _header(f, where)
    raw = descr in _RAW_2_BYTES
    file_dtype = "bf16" if raw else str(_PLAIN[descr])
    fits = (raw and tensor.dtype is DType.BF16) or (not raw and (
        _PLAIN[descr] == tensor.dtype.np or (tensor.dtype.is_float and _PLAIN[descr].kind == "f")))
    if not fits or shape != tensor.shape:
        floats = f" (or any float dtype, rounded to {tensor.dtype.value})" if tensor.dtype.is_float else ""
        raise IsaError(f"{where}: expected dtype {tensor.dtype.value}{floats} and shape "
                       f"{list(tensor.shape)}, got dtype {file_dtype} and shape {list(shape)}")
    data = math.prod(shape) * (2 if raw else _PLAIN[descr].itemsize)
    have = os.fstat(f.fileno()).st_size - offset
    if have < data:
        raise IsaError(f"{where}: truncated: its header describes {data} bytes of data, it holds {have}")


def load_inputs(program: Program, specs: Sequence[str]) -> dict[str, np.ndarray]:
    """Read `NAME=FILE.npy` pairs for input tensors; float files are rounded to the tensor's dtype.

    Raises IsaError, naming the `--input` it came from, for a malformed pair, a tensor that is not
    an input or is given twice, or a file that is not a .npy array of the tensor's shape and of its
    dtype (any float dtype, for a float tensor). Files are never unpickled.
    """
    out: dict[str, np.ndarray] = {}
    declared = {t.name: t for t in program.tensors}
    inputs = ", ".join(t.name for t in program.tensors_of(Role.INPUT)) or "none"
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise IsaError(f"--input {spec!r} must look like NAME=FILE.npy")
        if name not in declared:
            raise IsaError(f"--input {name}: no such tensor; inputs: {inputs}")
        if declared[name].role is not Role.INPUT:
            raise IsaError(f"--input {name}: tensor {name} is {declared[name].role.value} (the program "
                           f"writes it), not input; inputs: {inputs}")
        if name in out:
            raise IsaError(f"--input {name}: given twice; give each input once")
        out[name] = _as_declared(_read(f"--input {spec}", path, declared[name]), declared[name].dtype)
    return out


def _read(where: str, path: str, tensor: Tensor) -> np.ndarray:
    """The array in a .npy file, checked first; IsaError naming the option if it is not the tensor's."""
    if os.path.exists(path) and not os.path.isfile(path):  # a folder, a device, a pipe
        raise IsaError(f"{where}: not a regular file")
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; only opening names the user's path
    except OSError as err:
        raise IsaError(f"{where}: cannot read it: {err.strerror or err}") from None
    with f:
        _check_npy(f, where, tensor)
        f.seek(0)
        return np.load(f, allow_pickle=False)


def _as_declared(value: np.ndarray, dtype: DType) -> np.ndarray:
    """Undo what .npy files do to bf16 (it is saved as raw 2-byte voids) and round other floats."""
    if value.dtype.kind == "V" and value.dtype.itemsize == dtype.itemsize:
        return value.view(dtype.np)
    if value.dtype.kind == "f" and dtype.is_float and value.dtype != dtype.np:
        return value.astype(dtype.np)  # once, to nearest even, as the ISA rounds (not through fp32: twice)
    return value
