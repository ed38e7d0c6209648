"""Operand regions: a tile in an on-chip buffer, or a strided 2-D window of a GM tensor."""

from __future__ import annotations

from dataclasses import dataclass

from isa.types import DType, Space


@dataclass(frozen=True)
class Tile:
    """A row-major [rows, cols] tile of `dtype` at byte `offset` in an on-chip buffer."""

    space: Space
    offset: int
    dtype: DType
    shape: tuple[int, int]

    @property
    def rows(self) -> int:
        return self.shape[0]

    @property
    def cols(self) -> int:
        return self.shape[1]

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.shape[1] * self.dtype.itemsize

    @property
    def end(self) -> int:
        """One past the last byte the tile covers."""
        return self.offset + self.nbytes

    def overlaps(self, other: Tile) -> bool:
        return self.space is other.space and self.offset < other.end and other.offset < self.end


@dataclass(frozen=True)
class GmRegion:
    """Rows `row, row+row_step, ...` (`rows` of them) and columns `col:col+cols` of a GM tensor.

    A GM tensor of shape [d0, ..., dn] is seen as the 2-D matrix [d0*...*d(n-1), dn]. A row step
    above one selects, for example, one KV head of a [num_blocks, block_size, kv_heads, head_dim]
    cache: row = (block * block_size) * kv_heads + head, row_step = kv_heads.
    """

    tensor: str
    row: int
    col: int
    rows: int
    cols: int
    dtype: DType
    row_step: int = 1

    @property
    def space(self) -> Space:
        return Space.GM

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def nbytes(self) -> int:
        return self.rows * self.cols * self.dtype.itemsize

    @property
    def last_row(self) -> int:
        return self.row + (self.rows - 1) * self.row_step

    @property
    def row_slice(self) -> slice:
        return slice(self.row, self.last_row + 1, self.row_step)

    @property
    def col_slice(self) -> slice:
        return slice(self.col, self.col + self.cols)


Region = Tile | GmRegion
