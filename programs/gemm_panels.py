"""The shipped GEMM kernel: K panels kept in L1 and sliced into k-steps, cores in a grid.

Tiled as pto-isa's gemm_performance kernel (kernels/manual/a2a3/gemm_performance: README "Tiling
Parameters" and gemm_performance_kernel.cpp). The cores form a grid over the output, each owning a
contiguous block of [tm, tn] output tiles ([baseM, baseN] = [128, 256] on the 910B). Per tile, K is
walked in k-steps of tk (baseK = 64); every `steps` k-steps (stepKa = stepKb = 4) MTE2 loads a K panel
of A [tm, 256] and of B [256, tn] into one of two L1 buffers, and MTE1 cuts each k-step's [tm, 64]
and [64, tn] slices out of the panel into one of two L0A/L0B slots. The cube accumulates all of K in
the one L0C tile (a [128, 256] fp32 tile fills the 910B's 128 KiB), which FIX writes out before the
cube starts the next tile. So each DMA feeds four k-steps instead of one, and a tile twice as wide as
the per-tile kernel's reads 3/4 of its GM bytes per output element (`programs/gemm_per_tile.py`).

A panels sit k-major in L1 (loaded transposed, as the chip's fractal layout keeps a column block
together), so a k-step's slice of either panel is one contiguous tile; MTE1 transposes A back on
its way to L0A. When a slice's bytes are not a multiple of L1's alignment (a partial tile on a
512 B-aligned L1), each slice is loaded on its own into an aligned slot.

Every buffer has a "free" flag that its consumer sets back to its producer: (MTE1 -> MTE2, p) for
L1 panel buffer p, (M -> MTE1, s) for L0A/L0B slot s, (FIX -> M, 0) for the accumulator. The kernel
is written with each pre-set once at the start and drained at the end, as a loop would be, and
`programs.flags.trim` then drops those pre-sets and drains, which order nothing in straight-line code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Blocking:
    """The panel kernel's sizes: output tile [tm, tn], k-step tk, K panel of `steps` k-steps."""

    tm: int
    tn: int
    tk: int
    steps: int

    @property
    def panel(self) -> int:
        """Depth of a K panel: the K one pair of loads brings into L1."""
        return self.tk * self.steps


# With no target: the 910B's, pto-isa's [baseM, baseN, baseK] = [128, 256, 64] and stepKa = stepKb = 4.
# `blocking(dtype, load_preset("910b2"))` derives the same (tests/programs/test_matmul.py).
PUBLISHED = Blocking(128, 256, 64, 4)

Align = Mapping[Space, int] | None


def _up(nbytes: int, space: Space, align: Align) -> int:
    return align_up(nbytes, align[space]) if align else nbytes


@dataclass(frozen=True)
class Layout:
    """Where the kernel's buffers sit: bytes per L1 panel buffer, B's offset in it, L0A/L0B slots."""

    l1_buffer: int  # L1 holds two: A panel then B panel in each
    b_offset: int
    l0a_slot: int
    l0b_slot: int
    acc: int  # one fp32 [tm, tn] accumulator in L0C

    @classmethod
    def of(cls, b: Blocking, esz: int, align: Align) -> Layout:
        """Each slice and slot rounded up to its buffer's `align`ment (None: not rounded)."""
        a_panel = b.steps * _up(b.tm * b.tk * esz, Space.L1, align)
        b_panel = b.steps * _up(b.tk * b.tn * esz, Space.L1, align)
        return cls(_up(a_panel + b_panel, Space.L1, align), a_panel, _up(b.tm * b.tk * esz, Space.L0A, align),
                   _up(b.tk * b.tn * esz, Space.L0B, align), _up(b.tm * b.tn * 4, Space.L0C, align))


def blocking(dtype: DType, config: Hardware | None = None) -> Blocking:
    """The panel kernel's sizes for `config`'s cube core (None: the 910B's, PUBLISHED).

    tm: the largest power-of-two multiple of the fractal (m0, n0) whose square fp32 accumulator
    fits L0C; tn: tm doubled while one [tm, tn] accumulator still fits L0C (the published kernel keeps
    one accumulator and widens N: 512-byte rows of fp32 output). tk: the largest power-of-two
    multiple of k0 whose two A [tm, tk] and two B [tk, tn] slices fit L0A and L0B. steps: the most
    k-steps (a power of two) whose two A and two B panels fit L1.
    """
    if config is None:
        return PUBLISHED
    limits = config.core_limits(CoreKind.CUBE)
    cap, align, esz = limits.capacity, limits.alignment, dtype.itemsize

    def fits(b: Blocking) -> bool:
        lay = Layout.of(b, esz, align)
        return (lay.acc <= cap[Space.L0C] and 2 * lay.l0a_slot <= cap[Space.L0A]
                and 2 * lay.l0b_slot <= cap[Space.L0B] and 2 * lay.l1_buffer <= cap[Space.L1])

    k0 = max(1, config.cube.k0_bytes // esz)
    tm = largest_doubling(math.lcm(config.cube.m0, config.cube.n0), lambda t: fits(Blocking(t, t, k0, 1)))
    tn = largest_doubling(tm, lambda t: fits(Blocking(tm, t, k0, 1)))
    tk = largest_doubling(k0, lambda t: fits(Blocking(tm, tn, t, 1)))
    return Blocking(tm, tn, tk, largest_doubling(1, lambda s: fits(Blocking(tm, tn, tk, s))))


# --- the core grid --------------------------------------------------------------------------------

def core_grid(tiles_m: int, tiles_n: int, cores: int, tm: int, tn: int) -> tuple[int, int]:
    """(grid rows, grid columns) of cores over a tiles_m x tiles_n grid of [tm, tn] output tiles.

    The grid whose busiest core has the fewest tiles; among those, the one whose cores read the
    fewest A rows plus B columns (the squarest blocks), then the one with the fewest grid rows (for
    6144^3 on 24 cores: 4 x 6, blocks of 1536 x 1024, as the published kernel).
    """
    def rank(grid: tuple[int, int]) -> tuple[int, int, int]:
        bm, bn = -(-tiles_m // grid[0]), -(-tiles_n // grid[1])
        return (bm * bn, bm * tm + bn * tn, grid[0])

    return min(((gm, min(cores // gm, tiles_n)) for gm in range(1, min(cores, tiles_m) + 1)), key=rank)


def _split(count: int, parts: int) -> list[range]:
    """0..count in `parts` contiguous runs whose lengths differ by at most one."""
    return [range(i * count // parts, (i + 1) * count // parts) for i in range(parts)]


def core_blocks(m: int, n: int, cores: int, tm: int, tn: int) -> list[list[tuple[int, int]]]:
    """The (row, col) origins of the output tiles of each core, a contiguous block each, row-major.

    Core c takes block (c % grid rows, c // grid rows), as the published kernel's get_block_idx().
    Raises ValueError for fewer than one core.
    """
    if cores < 1:
        raise ValueError(f"a GEMM needs at least one core, got {cores}")
    tiles_m, tiles_n = -(-m // tm), -(-n // tn)
    gm, gn = core_grid(tiles_m, tiles_n, cores, tm, tn)
    row_runs, col_runs = _split(tiles_m, gm), _split(tiles_n, gn)
    return [[(i * tm, j * tn) for i in row_runs[c % gm] for j in col_runs[c // gm]] for c in range(gm * gn)]


# --- the kernel -----------------------------------------------------------------------------------

_PANEL_FREE = (Pipe.MTE1, Pipe.MTE2)  # L1 panel buffer p (event p) may be loaded again
_SLOT_FREE = (Pipe.M, Pipe.MTE1)  # L0A/L0B slot s (event s) may be moved into again
_ACC_FREE = (Pipe.FIX, Pipe.M)  # the accumulator (event 0) has been written out
_FREES = ((*_PANEL_FREE, 0), (*_PANEL_FREE, 1), (*_SLOT_FREE, 0), (*_SLOT_FREE, 1), (*_ACC_FREE, 0))


class _Stream:
    """A kernel's instructions as they are written."""

    def __init__(self) -> None:
        self.body: list[Instruction] = []
        # Equal instructions share one object: a long kernel repeats a few dozen distinct moves,
        # mmads and flags, so this keeps its memory small and lets lookups hit by identity.
        self._pool: dict[Instruction, Instruction] = {}

    def emit(self, instr: Instruction) -> None:
        self.body.append(self._pool.setdefault(instr, instr))

    def set(self, src: Pipe, dst: Pipe, event: int) -> None:
        self.emit(SetFlag(src, dst, event))

    def wait(self, src: Pipe, dst: Pipe, event: int) -> None:
        self.emit(WaitFlag(src, dst, event))


def _load_k_major(out: _Stream, base: int, width: int, depth: int, tk: int, dtype: DType, align: Align,
                  gm: Callable[[int, int], GmRegion], transpose: bool) -> list[Tile]:
    """Load a K panel k-major ([depth, width]) into L1 at `base`; its k-step slices as L1 tiles.

    `gm(d0, d)` is the GM region of the panel's K rows or columns d0..d0+d. One DMA for the panel
    when its slices lie back to back on L1's alignment, else one per slice.
    """
    size = tk * width * dtype.itemsize
    stride = _up(size, Space.L1, align)
    starts = range(0, depth, tk)
    slices = [Tile(Space.L1, base + j * stride, dtype, (min(tk, depth - d0), width))
              for j, d0 in enumerate(starts)]
    if stride == size:
        out.emit(Load(Tile(Space.L1, base, dtype, (depth, width)), gm(0, depth), transpose))
    else:
        for tile, d0 in zip(slices, starts, strict=True):
            out.emit(Load(tile, gm(d0, tile.rows), transpose))
    return slices


def _load_panels(out: _Stream, lay: Layout, p: int, origin: tuple[int, int, int], shape: tuple[int, int, int],
                 tk: int, dtype: DType, align: Align) -> list[tuple[Tile, Tile]]:
    """Load the A and B panels at `origin` (row, col, k0), [rows, cols, depth], into L1 buffer p.

    Returns each k-step's (A slice [d, rows], B slice [d, cols]) in L1.
    """
    (r0, c0, k0), (rows, cols, depth) = origin, shape
    out.wait(*_PANEL_FREE, p)
    base = p * lay.l1_buffer
    a = _load_k_major(out, base, rows, depth, tk, dtype, align,
                      lambda d0, d: GmRegion("a", r0, k0 + d0, rows, d, dtype), transpose=True)
    b = _load_k_major(out, base + lay.b_offset, cols, depth, tk, dtype, align,
                      lambda d0, d: GmRegion("b", k0 + d0, c0, d, cols, dtype), transpose=False)
    out.set(Pipe.MTE2, Pipe.MTE1, p)
    return list(zip(a, b, strict=True))


def _k_step(out: _Stream, lay: Layout, s: int, a1: Tile, b1: Tile, acc: Tile, panel: tuple[int, bool, bool],
            accumulate: bool) -> None:
    """Move one k-step's slices into L0 slot s and multiply-accumulate them into `acc`.

    `panel`: (L1 buffer, whether this is its first k-step, whether its last).
    """
    p, first, last = panel
    a0 = Tile(Space.L0A, s * lay.l0a_slot, a1.dtype, (a1.cols, a1.rows))
    b0 = Tile(Space.L0B, s * lay.l0b_slot, b1.dtype, b1.shape)
    out.wait(*_SLOT_FREE, s)
    if first:
        out.wait(Pipe.MTE2, Pipe.MTE1, p)  # the panel has landed
    out.emit(Move(a0, a1, transpose=True))
    out.emit(Move(b0, b1))
    if last:
        out.set(*_PANEL_FREE, p)
    out.set(Pipe.MTE1, Pipe.M, s)
    out.wait(Pipe.MTE1, Pipe.M, s)
    if not accumulate:
        out.wait(*_ACC_FREE, 0)  # the previous tile has been written out
    out.emit(Mmad(acc, a0, b0, accumulate=accumulate))
    out.set(*_SLOT_FREE, s)


def _write_out(out: _Stream, acc: Tile, r0: int, c0: int) -> None:
    out.set(Pipe.M, Pipe.FIX, 0)
    out.wait(Pipe.M, Pipe.FIX, 0)
    out.emit(Fixpipe(GmRegion("c", r0, c0, acc.rows, acc.cols, DType.FP32), acc))
    out.set(*_ACC_FREE, 0)


def panel_kernel(name: str, tiles: Iterable[tuple[int, int]], m: int, n: int, k: int, dtype: DType,
                 b: Blocking = PUBLISHED, align: Align = None) -> Kernel:
    """The instructions that compute the given [b.tm, b.tn] output tiles of C = A @ B on one cube core.

    L1 panels and L0 slots alternate across tiles, as the published kernel's ping-pong flags do.
    """
    lay = Layout.of(b, dtype.itemsize, align)
    out = _Stream()
    for flag in _FREES:  # every buffer starts free
        out.set(*flag)
    step = panels = 0
    for r0, c0 in tiles:
        acc = Tile(Space.L0C, 0, DType.FP32, (min(b.tm, m - r0), min(b.tn, n - c0)))
        for k0 in range(0, k, b.panel):
            p = panels % 2
            panels += 1
            pairs = _load_panels(out, lay, p, (r0, c0, k0), (acc.rows, acc.cols, min(b.panel, k - k0)),
                                 b.tk, dtype, align)
            for j, (a1, b1) in enumerate(pairs):
                _k_step(out, lay, step % 2, a1, b1, acc, (p, j == 0, j == len(pairs) - 1),
                        accumulate=k0 > 0 or j > 0)
                step += 1
        _write_out(out, acc, r0, c0)
    for flag in _FREES:  # consume the last "free" of every buffer so no flag is left set
        out.wait(*flag)
    return Kernel(name, trim(out.body))  # less the pre-sets and drains, which order nothing
