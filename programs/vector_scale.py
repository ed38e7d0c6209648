"""y = x * alpha over a [rows, cols] fp32 tensor, double-buffered on vector cores.

Each task streams a band of rows through UB in tiles of `tile_rows` rows: MTE2 loads tile i into
one of two buffers while V scales tile i-1 and MTE3 stores tile i-2. Each buffer has a "free" flag
back to the loader, set when its store is done; written pre-set at the start and drained at the
end, as a loop would be, then `programs.flags.trim` drops those pre-sets and drains, which order
nothing in straight-line code.
The tile height comes from the target's UB (`default_tile_rows`).
"""

from __future__ import annotations

from isa import (
    DType,
    GmRegion,
    Instruction,
    Kernel,
    Load,
    Pipe,
    Program,
    Role,
    ScalarOp,
    SetFlag,
    Space,
    Store,
    Task,
    Tensor,
    Tile,
    VecScalar,
    WaitFlag,
)
from isa.program import CoreKind
from programs.flags import trim
from programs.target import Hardware, align_up

UB_BYTES, UB_ALIGN = 196608, 32  # with no target: the 910B's UB (192 KiB, tiles on 32 B)
MAX_TILE_ROWS = 64  # taller tiles gain nothing once a tile takes many vector repeats


def _ub(config: Hardware | None) -> tuple[int, int]:
    """(capacity, alignment) of the UB of the core that runs vector kernels on `config`."""
    if config is None:
        return UB_BYTES, UB_ALIGN
    limits = config.core_limits(CoreKind.VECTOR)
    return limits.capacity[Space.UB], limits.alignment[Space.UB]


def default_tile_rows(cols: int, config: Hardware | None = None) -> int:
    """Rows per tile so that four fp32 tiles (two x, two y) fill at most 5/6 of `config`'s UB.

    The sixth left over is room to spare (40 KiB tiles in the 910B's 192 KiB). None: the 910B.
    """
    ub_bytes, _ = _ub(config)
    return max(1, min(MAX_TILE_ROWS, ub_bytes * 5 // 24 // (cols * 4)))


def scale_kernel(name: str, row0: int, rows: int, cols: int, alpha: float, tile_rows: int,
                 align: int = UB_ALIGN) -> Kernel:
    """The instructions that scale rows row0 .. row0+rows-1 of x into y on one vector core.

    Each of the four UB tiles starts on a multiple of `align` bytes.
    """
    body: list[Instruction] = []
    tile_bytes = align_up(tile_rows * cols * 4, align)
    for b in (0, 1):
        body.append(SetFlag(Pipe.MTE3, Pipe.MTE2, b))  # both buffers start free
    for i, r in enumerate(range(row0, row0 + rows, tile_rows)):
        n, b = min(tile_rows, row0 + rows - r), i % 2
        x = Tile(Space.UB, b * 2 * tile_bytes, DType.FP32, (n, cols))
        y = Tile(Space.UB, b * 2 * tile_bytes + tile_bytes, DType.FP32, (n, cols))
        body += [
            WaitFlag(Pipe.MTE3, Pipe.MTE2, b),
            Load(x, GmRegion("x", r, 0, n, cols, DType.FP32)),
            SetFlag(Pipe.MTE2, Pipe.V, b), WaitFlag(Pipe.MTE2, Pipe.V, b),
            VecScalar(ScalarOp.MULS, y, x, alpha),
            SetFlag(Pipe.V, Pipe.MTE3, b), WaitFlag(Pipe.V, Pipe.MTE3, b),
            Store(GmRegion("y", r, 0, n, cols, DType.FP32), y),
            SetFlag(Pipe.MTE3, Pipe.MTE2, b),
        ]
    for b in (0, 1):
        body.append(WaitFlag(Pipe.MTE3, Pipe.MTE2, b))
    return Kernel(name, trim(body))  # less the pre-sets and drains, which order nothing


def build(rows: int, cols: int, tasks: int, alpha: float = 0.5, tile_rows: int | None = None,
          config: Hardware | None = None) -> Program:
    """y = alpha * x with the rows split into `tasks` bands, one vector task each.

    Tiles are sized for and aligned in `config`'s UB (None: the 910B's).
    """
    tile_rows = tile_rows or default_tile_rows(cols, config)
    align = _ub(config)[1]
    band = -(-rows // tasks)
    kernels = [scale_kernel(f"scale{t}", r, min(band, rows - r), cols, alpha, tile_rows, align)
               for t, r in enumerate(range(0, rows, band))]
    tensors = (Tensor("x", DType.FP32, (rows, cols)), Tensor("y", DType.FP32, (rows, cols), Role.OUTPUT))
    return Program("vector_scale", tensors, tuple(Task.of(k, kind=CoreKind.VECTOR) for k in kernels))
