"""The values a program's input tensors get when none are given: drawn from a seed, the same everywhere.

`npusim asm FILE.s --seed S` and `npusim run tile-matmul --seed S` draw through this one function,
so a kernel and its text twin run on the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from isa.program import Program, Role


def random_inputs(program: Program, seed: int, skip: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Standard-normal values (integers in -8..7 for int dtypes) for each input tensor not in `skip`.

    Tensors are drawn in declaration order from one generator seeded with `seed`; float values are
    drawn in fp32 and rounded to the tensor's dtype (round to nearest even, as the ISA rounds).
    """
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
