"""The simple tiled GEMM, kept to teach: one output tile at a time, A and B reloaded at every k-step.

For each output tile the kernel walks K in steps of `tk`: MTE2 loads the A and B slices into one of
two L1 buffers while MTE1 moves the previous slices into one of two L0A/L0B buffers and the cube
accumulates into one of two L0C tiles; FIX writes a finished tile out while the cube starts the
next. Every buffer has a "free" flag that its consumer sets back to its producer; the kernel is
written with each pre-set once at the start and drained at the end, so every step looks the same,
and `programs.flags.trim` then drops those pre-sets and drains, which order nothing.

What it teaches is what it lacks: each L1 slice feeds one k-step only, so every 128-deep step pays
two DMAs (their latency and per-row costs) for 512 cube cycles, and on 24 cores the GEMM is bound by
MTE2 with the cube about half idle. `programs/gemm_panels.py` is the shipped kernel (256-deep K
panels kept in L1 and reused by four k-steps, 128 x 256 output tiles); `npusim compare matmul`
runs the two side by side.

Tile sizes come from the target's buffers (`tile_sizes`): the largest square output tile whose two
fp32 accumulators fit L0C, and the deepest k-step whose two A and two B slices fit L0A, L0B and L1;
each a power-of-two multiple of the cube's fractal. On the 910B that is 128 x 128 tiles, k-step 128.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from isa import (
    CoreKind,
    DType,
    Fixpipe,
    GmRegion,
    Instruction,
    Kernel,
    Load,
    Mmad,
    Move,
    Pipe,
    SetFlag,
    Space,
    Tile,
    WaitFlag,
)
from programs.flags import trim
from programs.target import Hardware, align_up, largest_doubling

TILE = 128  # tm = tn = tk with no target: what `tile_sizes` gives for the 910B's 64 KiB L0A/L0B, 128 KiB L0C


def tile_sizes(dtype: DType, config: Hardware | None = None) -> tuple[int, int, int]:
    """(tm, tn, tk) for `config`'s cube core (None: the 910B's, TILE each).

    tm = tn: the largest power-of-two multiple of the fractal (m0, n0) whose two fp32 accumulators
    fit L0C; tk: the largest power-of-two multiple of k0 whose two A [tm, tk] and two B [tk, tn]
    slices fit L0A, L0B and L1, each slice starting on its buffer's alignment.
    """
    if config is None:
        return TILE, TILE, TILE
    limits = config.core_limits(CoreKind.CUBE)
    cap, align, esz = limits.capacity, limits.alignment, dtype.itemsize
    side = largest_doubling(math.lcm(config.cube.m0, config.cube.n0),
                            lambda t: 2 * _strides(t, t, 1, esz, align)[4] <= cap[Space.L0C])

    def k_fits(tk: int) -> bool:  # two of each buffer: double-buffered
        _, l1, l0a, l0b, _ = _strides(side, side, tk, esz, align)
        return 2 * l1 <= cap[Space.L1] and 2 * l0a <= cap[Space.L0A] and 2 * l0b <= cap[Space.L0B]

    return side, side, largest_doubling(max(1, config.cube.k0_bytes // esz), k_fits)


def _strides(tm: int, tn: int, tk: int, esz: int,
             align: Mapping[Space, int] | None) -> tuple[int, int, int, int, int]:
    """Where B starts after A in an L1 buffer, and each double buffer's second half in L1, L0A, L0B, L0C.

    Each rounded up to its buffer's `align`ment (None: not rounded).
    """
    def up(nbytes: int, space: Space) -> int:
        return align_up(nbytes, align[space]) if align else nbytes

    a_bytes, b_bytes, c_bytes = tm * tk * esz, tk * tn * esz, tm * tn * 4  # C accumulates in fp32
    a_l1 = up(a_bytes, Space.L1)
    return (a_l1, up(a_l1 + b_bytes, Space.L1),
            up(a_bytes, Space.L0A), up(b_bytes, Space.L0B), up(c_bytes, Space.L0C))


def output_tiles(m: int, n: int, tm: int = TILE, tn: int = TILE) -> list[tuple[int, int]]:
    """The (row, col) origin of every output tile of an [m, n] result, row-major."""
    return [(r, c) for r in range(0, m, tm) for c in range(0, n, tn)]


def per_tile_kernel(name: str, tiles: Iterable[tuple[int, int]], m: int, n: int, k: int, dtype: DType,
                tm: int = TILE, tn: int = TILE, tk: int = TILE,
                align: Mapping[Space, int] | None = None) -> Kernel:
    """The instructions that compute the given output tiles of C = A @ B on one cube core.

    Every buffer's second half, and B after A in L1, start on that buffer's `align`ment (None: 1).
    """
    a_l1, l1_step, a_l0, b_l0, l0c_bytes = _strides(tm, tn, tk, dtype.itemsize, align)
    l1_a = [0, l1_step]  # L1 buffer i holds A then B
    body: list[Instruction] = []
    pool: dict[Instruction, Instruction] = {}

    def emit(instr: Instruction) -> None:
        # Equal instructions share one object: a long kernel repeats a few dozen distinct moves,
        # mmads and flags, so this keeps its memory small and lets lookups hit by identity.
        body.append(pool.setdefault(instr, instr))

    def flag(src: Pipe, dst: Pipe, event: int, set_: bool) -> None:
        emit(SetFlag(src, dst, event) if set_ else WaitFlag(src, dst, event))

    frees = [(Pipe.MTE1, Pipe.MTE2), (Pipe.M, Pipe.MTE1), (Pipe.FIX, Pipe.M)]
    for src, dst in frees:  # every buffer starts free
        for b in (0, 1):
            flag(src, dst, b, True)
    step = 0
    for t, (r0, c0) in enumerate(tiles):
        rows, cols = min(tm, m - r0), min(tn, n - c0)
        acc = t % 2
        out = Tile(Space.L0C, acc * l0c_bytes, DType.FP32, (rows, cols))
        for kk, k0 in enumerate(range(0, k, tk)):
            depth = min(tk, k - k0)
            b = step % 2
            step += 1
            a1 = Tile(Space.L1, l1_a[b], dtype, (rows, depth))
            b1 = Tile(Space.L1, l1_a[b] + a_l1, dtype, (depth, cols))
            a0 = Tile(Space.L0A, b * a_l0, dtype, (rows, depth))
            b0 = Tile(Space.L0B, b * b_l0, dtype, (depth, cols))
            flag(Pipe.MTE1, Pipe.MTE2, b, False)  # L1 buffer b is free
            emit(Load(a1, GmRegion("a", r0, k0, rows, depth, dtype)))
            emit(Load(b1, GmRegion("b", k0, c0, depth, cols, dtype)))
            flag(Pipe.MTE2, Pipe.MTE1, b, True)
            flag(Pipe.MTE2, Pipe.MTE1, b, False)
            flag(Pipe.M, Pipe.MTE1, b, False)  # L0 buffers b are free
            emit(Move(a0, a1))
            emit(Move(b0, b1))
            flag(Pipe.MTE1, Pipe.MTE2, b, True)
            flag(Pipe.MTE1, Pipe.M, b, True)
            flag(Pipe.MTE1, Pipe.M, b, False)
            if kk == 0:
                flag(Pipe.FIX, Pipe.M, acc, False)  # accumulator acc was written out
            emit(Mmad(out, a0, b0, accumulate=kk > 0))
            flag(Pipe.M, Pipe.MTE1, b, True)
        flag(Pipe.M, Pipe.FIX, acc, True)
        flag(Pipe.M, Pipe.FIX, acc, False)
        emit(Fixpipe(GmRegion("c", r0, c0, rows, cols, DType.FP32), out))
        flag(Pipe.FIX, Pipe.M, acc, True)
    for src, dst in frees:  # consume the last "free" of every buffer so no flag is left set
        for b in (0, 1):
            flag(src, dst, b, False)
    return Kernel(name, trim(body))  # less the pre-sets and drains, which order nothing


def sized_kernel(name: str, tiles: Iterable[tuple[int, int]], m: int, n: int, k: int, dtype: DType,
                 config: Hardware | None) -> Kernel:
    """per_tile_kernel with the tile sizes and alignments of `config`'s cube core (None: the 910B's)."""
    align = config.core_limits(CoreKind.CUBE).alignment if config is not None else None
    return per_tile_kernel(name, tiles, m, n, k, dtype, *tile_sizes(dtype, config), align=align)
