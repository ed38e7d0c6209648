"""GEMM C[M,N] (fp32) = A[M,K] @ B[K,N] (fp16 or bf16) over the cube cores: the `matmul` program.

`build` is the shipped program: the cores in a grid, each computing a contiguous block of output
tiles with `programs/gemm_panels.py`'s kernel (256-deep K panels kept in L1, tiled as pto-isa's
published gemm_performance kernel). `build_per_tile` and `build_single_core` run the simple per-tile
kernel of `programs/gemm_per_tile.py` instead, kept to teach what the panels buy (`npusim compare
matmul`) and as a steady single-core workload (benchmarks/engine_speed.py, the engine's tests).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from isa import CoreKind, DType, Program, Role, Space, Task, Tensor
from programs import gemm_panels
from programs.convert import to_numpy, to_torch
from programs.gemm_per_tile import TILE, output_tiles, sized_kernel, tile_sizes
from programs.target import Hardware

__all__ = ["TILE", "build", "build_per_tile", "build_single_core", "inputs", "output_tiles", "reference",
           "tensors", "tile_sizes", "VARIANTS"]  # TILE, output_tiles and tile_sizes: the per-tile kernel's

VARIANTS = ("panels", "per-tile")  # `npusim run matmul --variant`: build, build_per_tile


def tensors(m: int, n: int, k: int, dtype: DType) -> tuple[Tensor, ...]:
    return (Tensor("a", dtype, (m, k), Role.INPUT), Tensor("b", dtype, (k, n), Role.INPUT),
            Tensor("c", DType.FP32, (m, n), Role.OUTPUT))


def _align(config: Hardware | None) -> dict[Space, int] | None:
    return dict(config.core_limits(CoreKind.CUBE).alignment) if config is not None else None


def build(m: int, n: int, k: int, cores: int, dtype: DType = DType.BF16,
          config: Hardware | None = None) -> Program:
    """C = A @ B over a grid of up to `cores` cube cores, one task each, with the panel kernel.

    Each core computes a contiguous block of output tiles (`gemm_panels.core_blocks`), sized for
    `config`'s buffers (None: the 910B's). Raises ValueError for fewer than one core.
    """
    b = gemm_panels.blocking(dtype, config)
    blocks = gemm_panels.core_blocks(m, n, cores, b.tm, b.tn)
    tasks = [Task.of(gemm_panels.panel_kernel(f"gemm{c}", tiles, m, n, k, dtype, b, _align(config)),
                     kind=CoreKind.CUBE) for c, tiles in enumerate(blocks)]
    return Program("matmul", tensors(m, n, k, dtype), tuple(tasks))


def build_per_tile(m: int, n: int, k: int, cores: int, dtype: DType = DType.BF16,
                   config: Hardware | None = None) -> Program:
    """C = A @ B with the per-tile kernel: its output tiles dealt round-robin to `cores` cube tasks."""
    tm, tn, _ = tile_sizes(dtype, config)
    tiles = output_tiles(m, n, tm, tn)
    tasks = [Task.of(sized_kernel(f"gemm{c}", tiles[c::cores], m, n, k, dtype, config), kind=CoreKind.CUBE)
             for c in range(min(cores, len(tiles)))]
    return Program("matmul", tensors(m, n, k, dtype), tuple(tasks))


def build_single_core(m: int, n: int, k: int, dtype: DType = DType.BF16,
                      tiles: Sequence[tuple[int, int]] | None = None,
                      config: Hardware | None = None) -> Program:
    """C = A @ B with the per-tile kernel, every output tile (or the given ones) on one cube core."""
    tm, tn, _ = tile_sizes(dtype, config)
    kernel = sized_kernel("gemm", output_tiles(m, n, tm, tn) if tiles is None else tiles, m, n, k, dtype,
                          config)
    return Program.single(kernel, tensors(m, n, k, dtype))


def inputs(m: int, n: int, k: int, dtype: DType = DType.BF16, seed: int = 0) -> dict[str, np.ndarray]:
    import torch  # here, not at the top: `npusim --help` and timing-only runs never load it

    gen = torch.Generator().manual_seed(seed)
    tdtype = torch.bfloat16 if dtype is DType.BF16 else torch.float16
    return {"a": to_numpy(torch.randn(m, k, generator=gen).to(tdtype)),
            "b": to_numpy(torch.randn(k, n, generator=gen).to(tdtype))}


def reference(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """torch: A.float() @ B.float()."""
    a, b = to_torch(values["a"]), to_torch(values["b"])
    return {"c": (a.float() @ b.float()).numpy()}
