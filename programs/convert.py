"""Conversions between torch tensors and the numpy arrays the simulator holds (bf16 included).

torch is imported inside each function, not at the top: the programs import this module to build
their kernels, and `npusim --help` or `npusim presets` should not pay torch's seconds of start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from isa.types import DType

if TYPE_CHECKING:
    import torch


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A numpy copy of a CPU tensor; bf16 becomes ml_dtypes.bfloat16 with the same bits."""
    import torch  # lazily: see the module docstring

    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bf16; ml_dtypes' bfloat16 has the same bit layout
        return t.view(torch.int16).numpy().view(DType.BF16.np).copy()
    return t.numpy().copy()


def to_torch(a: np.ndarray) -> torch.Tensor:
    """A torch copy of a numpy array; ml_dtypes.bfloat16 becomes torch.bfloat16 with the same bits."""
    import torch  # lazily: see the module docstring

    if a.dtype == DType.BF16.np:
        return torch.from_numpy(np.ascontiguousarray(a).view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(a).copy())
