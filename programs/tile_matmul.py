"""The smallest complete kernel: one 16x128 @ 128x128 bf16 cube tile, with its flags.

`build()` writes it as a Python list; `tile_matmul.s` beside this file is the same kernel as text
(a test keeps the two equal).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from isa import (
    DType,
    Fixpipe,
    GmRegion,
    Kernel,
    Load,
    Mmad,
    Move,
    Pipe,
    Program,
    Role,
    SetFlag,
    Space,
    Tensor,
    Tile,
    WaitFlag,
)
from isa.draw import random_inputs
from programs.convert import to_torch

M, K, N = 16, 128, 128
ASM_PATH = Path(__file__).with_name("tile_matmul.s")


def build() -> Program:
    """out[M,N] fp32 = q[M,K] @ k[K,N] for bf16 q and k, as one kernel."""
    bf16, fp32 = DType.BF16, DType.FP32
    q_l1 = Tile(Space.L1, 0x0000, bf16, (M, K))
    k_l1 = Tile(Space.L1, q_l1.end, bf16, (K, N))
    q_l0 = Tile(Space.L0A, 0, bf16, (M, K))
    k_l0 = Tile(Space.L0B, 0, bf16, (K, N))
    acc = Tile(Space.L0C, 0, fp32, (M, N))
    body = (
        Load(q_l1, GmRegion("q", 0, 0, M, K, bf16)),
        Load(k_l1, GmRegion("k", 0, 0, K, N, bf16)),
        SetFlag(Pipe.MTE2, Pipe.MTE1, 0),
        WaitFlag(Pipe.MTE2, Pipe.MTE1, 0),
        Move(q_l0, q_l1),
        Move(k_l0, k_l1),
        SetFlag(Pipe.MTE1, Pipe.M, 0),
        WaitFlag(Pipe.MTE1, Pipe.M, 0),
        Mmad(acc, q_l0, k_l0, accumulate=False),
        SetFlag(Pipe.M, Pipe.FIX, 0),
        WaitFlag(Pipe.M, Pipe.FIX, 0),
        Fixpipe(GmRegion("out", 0, 0, M, N, fp32), acc),
    )
    tensors = (
        Tensor("q", bf16, (M, K), Role.INPUT),
        Tensor("k", bf16, (K, N), Role.INPUT),
        Tensor("out", fp32, (M, N), Role.OUTPUT),
    )
    return Program.single(Kernel("tile_matmul", body), tensors)


def inputs(seed: int = 0) -> dict[str, np.ndarray]:
    """Random bf16 q and k from `seed`: the values `npusim asm tile_matmul.s --seed SEED` draws."""
    return random_inputs(build(), seed)


def reference(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What torch computes: (q.float() @ k.float()) in fp32."""
    q, k = (to_torch(values[name]) for name in ("q", "k"))
    return {"out": (q.float() @ k.float()).numpy()}

