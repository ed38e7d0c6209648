"""Memory spaces, pipes and data types of the Da Vinci core, as enums."""

from __future__ import annotations

import enum
import functools

import numpy as np


class Space(enum.Enum):
    """A memory space: global memory or one of a core's on-chip buffers."""

    __hash__ = object.__hash__  # members are singletons; Enum's hash by name is slow on hot paths

    GM = "GM"
    L1 = "L1"
    L0A = "L0A"
    L0B = "L0B"
    L0C = "L0C"
    UB = "UB"


class Pipe(enum.Enum):
    """An execution pipe of a core; each runs its own instructions in order."""

    __hash__ = object.__hash__  # members are singletons; Enum's hash by name is slow on hot paths

    S = "S"  # scalar unit: issue, sync, control
    MTE1 = "MTE1"  # L1 -> L0A / L0B
    MTE2 = "MTE2"  # GM -> L1 / UB
    MTE3 = "MTE3"  # UB -> GM
    M = "M"  # cube unit (mmad)
    V = "V"  # vector unit
    FIX = "FIX"  # fixpipe: L0C -> GM (or UB on coupled cores)


class DType(enum.Enum):
    """An element type; `.np` is the numpy dtype that stores it (bf16 via ml_dtypes)."""

    __hash__ = object.__hash__  # members are singletons; Enum's hash by name is slow on hot paths

    FP16 = "fp16"
    BF16 = "bf16"
    FP32 = "fp32"
    INT8 = "int8"
    INT32 = "int32"

    @property
    def np(self) -> np.dtype:
        plain = _PLAIN_DTYPES.get(self)
        return plain if plain is not None else _numpy_dtypes()[self]

    @property
    def itemsize(self) -> int:
        return _ITEMSIZE[self]

    @property
    def is_float(self) -> bool:
        return self in (DType.FP16, DType.BF16, DType.FP32)

    def __str__(self) -> str:
        return self.value


_ITEMSIZE = {DType.FP16: 2, DType.BF16: 2, DType.FP32: 4, DType.INT8: 1, DType.INT32: 4}
_PLAIN_DTYPES = {DType.FP16: np.dtype(np.float16), DType.FP32: np.dtype(np.float32),
                 DType.INT8: np.dtype(np.int8), DType.INT32: np.dtype(np.int32)}  # numpy's own: no import


@functools.cache
def _numpy_dtypes() -> dict[DType, np.dtype]:
    """The numpy dtype of each DType, built on first use: importing ml_dtypes takes a second or two,
    which `npusim --help` and `npusim presets` should not pay."""
    import ml_dtypes

    bf16 = np.dtype(ml_dtypes.bfloat16)
    return {d: bf16 if d is DType.BF16 else _PLAIN_DTYPES[d] for d in DType}


def dtype_of(array_dtype: np.dtype) -> DType:
    """The DType stored by a numpy dtype; ValueError names the supported ones."""
    for dtype, npd in _numpy_dtypes().items():
        if npd == array_dtype:
            return dtype
    valid = ", ".join(f"{d.value} ({n})" for d, n in _numpy_dtypes().items())
    raise ValueError(f"numpy dtype {array_dtype} has no ISA dtype; valid: {valid}")
