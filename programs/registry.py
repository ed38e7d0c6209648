"""Programs the command line can run by name, each with its input generator and PyTorch reference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from isa.program import Program
from programs import tile_matmul


@dataclass(frozen=True)
class Workload:
    """A runnable program: how to build it, make its inputs, and what torch says it must compute."""

    name: str
    summary: str
    build: Callable[[], Program]
    inputs: Callable[[int], dict[str, np.ndarray]]
    reference: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    rtol: float
    atol: float


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "tile-matmul", "one 16x128 @ 128x128 bf16 cube tile (load, move, mmad, fixpipe)",
            tile_matmul.build, tile_matmul.inputs, tile_matmul.reference, rtol=1e-5, atol=1e-5,
        ),
    )
}


def get(name: str) -> Workload:
    """The workload called `name`; KeyError lists the valid names."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise KeyError(f"unknown program {name!r}; available: {', '.join(WORKLOADS)}") from None
