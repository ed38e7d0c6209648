"""The values a program's input tensors get when none are given: drawn from a seed, the same everywhere.

`npusim asm FILE.s --seed S` and `npusim run tile-matmul --seed S` draw through this one function,
so a kernel and its text twin run on the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from isa.program import Program, Role

SEED_LIMIT = 2**63  # seeds run from 0 below this: numpy's generators take no negative seed


def parse_seed(text: str) -> int:
    """A `--seed` value: a whole number from 0 to 2**63 - 1; else a ValueError saying so."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"a seed is a whole number from 0 to 2**63 - 1, got {text!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise ValueError(f"a seed is a whole number from 0 to 2**63 - 1, got {text}")
    return value


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
