"""The state instructions act on: a core's on-chip buffers and the global memory (GM) tensors.

Shared by the functional interpreter and the timing engine, which call `read` and `write` once per
operand on their hot path. So these do only what cannot be skipped safely (staying inside the
buffer or tensor); dtype and shape rules belong to `isa.check`, which runs once per kernel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from isa.errors import IsaError
from isa.limits import CoreLimits
from isa.program import Role, Tensor
from isa.regions import GmRegion, Region, Tile

POISON_BYTE = 0xFF
"""Every on-chip byte before its first write: all-ones is NaN in fp16, bf16 and fp32 (and -1 in ints),
so a read of never-written data shows up in the numbers instead of passing for zeros."""


class CoreMemory:
    """The on-chip buffers of one core, one byte array per space the core has, poisoned at start."""

    __slots__ = ("_buffers", "_views")

    def __init__(self, limits: CoreLimits):
        self._buffers = {
            space: np.full(size, POISON_BYTE, dtype=np.uint8) for space, size in limits.capacity.items()
        }
        # Typed views by tile object: kernels reuse a few dozen tiles, so each is bounds-checked and
        # built once. Keyed by id, with the tile kept in the entry so the id cannot be reused.
        self._views: dict[int, tuple[Tile, np.ndarray]] = {}

    def poison(self) -> None:
        """Fill every buffer with the poison byte again, as before a new kernel's first write."""
        for buffer in self._buffers.values():
            buffer.fill(POISON_BYTE)

    def _view(self, tile: Tile) -> np.ndarray:
        hit = self._views.get(id(tile))
        if hit is not None and hit[0] is tile:
            return hit[1]
        view = self._make_view(tile)
        self._views[id(tile)] = (tile, view)
        return view

    def _make_view(self, tile: Tile) -> np.ndarray:
        try:
            buffer = self._buffers[tile.space]
        except KeyError:
            have = ", ".join(s.value for s in self._buffers)
            raise IsaError(f"{tile.space.value} is not a buffer of this core; it has {have}") from None
        end = tile.offset + tile.nbytes
        if tile.offset < 0 or end > buffer.size:
            raise IsaError(
                f"tile {tile.space.value}[{tile.offset:#x}] {tile.dtype}{list(tile.shape)} covers bytes "
                f"{tile.offset}..{end - 1}; {tile.space.value} holds {buffer.size} bytes"
            )
        return buffer[tile.offset : end].view(tile.dtype.np).reshape(tile.shape)

    def read(self, tile: Tile) -> np.ndarray:
        """A copy of the tile's current value, of its dtype and shape."""
        return self._view(tile).copy()

    def view(self, tile: Tile) -> np.ndarray:
        """The tile's bytes as a typed, shaped array: it changes when the buffer does."""
        return self._view(tile)

    def write(self, tile: Tile, value: np.ndarray) -> None:
        """Store `value` (already of the tile's dtype and shape) into the tile's bytes."""
        # casting="no" turns a dtype slip into a TypeError instead of a silent conversion.
        np.copyto(self._view(tile), value, casting="no")


class GlobalMemory:
    """The GM tensors of a program, each one array, addressed as its 2-D matrix view by GM regions."""

    __slots__ = ("_tensors", "_matrices")

    def __init__(self, tensors: Iterable[Tensor], inputs: Mapping[str, np.ndarray]):
        """Raises IsaError naming the tensor if an input is missing, unknown or of the wrong kind."""
        self._tensors = {t.name: t for t in tensors}
        unknown = sorted(set(inputs) - set(self._tensors))
        if unknown:
            declared = ", ".join(self._tensors) or "none"
            raise IsaError(
                f"inputs given for undeclared tensor(s) {', '.join(unknown)}; declared: {declared}"
            )
        self._matrices: dict[str, np.ndarray] = {}
        for name, tensor in self._tensors.items():
            if name in inputs:
                array = _validated(tensor, inputs[name])
            elif tensor.role is Role.INPUT:
                raise IsaError(
                    f"input tensor {name} ({tensor.dtype}{list(tensor.shape)}) was not given; "
                    f"pass it as inputs[{name!r}]"
                )
            else:
                # Zeroed now, in one sequential pass: np.zeros maps pages lazily, and tile-sized
                # writes scattered over a large output would then fault on every row they touch.
                array = np.empty(tensor.shape, dtype=tensor.dtype.np)
                array.fill(0)
            self._matrices[name] = array.reshape(tensor.matrix_shape)

    def _window(self, region: GmRegion) -> np.ndarray:
        try:
            matrix = self._matrices[region.tensor]
        except KeyError:
            declared = ", ".join(self._matrices) or "none"
            raise IsaError(f"GM has no tensor {region.tensor!r}; declared: {declared}") from None
        rows, cols = matrix.shape
        if region.row < 0 or region.col < 0 or region.last_row >= rows or region.col + region.cols > cols:
            raise IsaError(
                f"GM region {region.tensor}[{region.row}:{region.last_row + 1}:{region.row_step}, "
                f"{region.col}:{region.col + region.cols}] lies outside the tensor's [{rows}, {cols}] "
                f"matrix (shape {list(self._tensors[region.tensor].shape)})"
            )
        return matrix[region.row_slice, region.col_slice]

    def read(self, region: GmRegion) -> np.ndarray:
        """A copy of the region's current value, [rows, cols] of the tensor's dtype."""
        return self._window(region).copy()

    def view(self, region: GmRegion) -> np.ndarray:
        """The region as a (strided) array over the tensor: it changes when the tensor does."""
        return self._window(region)

    def write(self, region: GmRegion, value: np.ndarray) -> None:
        """Store `value` (already of the tensor's dtype and the region's shape) into the region."""
        np.copyto(self._window(region), value, casting="no")

    def tensors(self, copy: bool = True) -> dict[str, np.ndarray]:
        """Every tensor in its declared shape, by name; copies unless the caller owns this GM."""
        return {name: m.reshape(self._tensors[name].shape).copy() if copy else
                m.reshape(self._tensors[name].shape) for name, m in self._matrices.items()}


def _validated(tensor: Tensor, given: object) -> np.ndarray:
    """A private C-ordered copy of `given`, which must be a numpy array of the tensor's dtype and shape."""
    expected = f"a numpy array of dtype {tensor.dtype} ({tensor.dtype.np}) and shape {list(tensor.shape)}"
    if not isinstance(given, np.ndarray):
        raise IsaError(
            f"tensor {tensor.name}: given a {type(given).__module__}.{type(given).__name__}; "
            f"expected {expected}"
        )
    if given.dtype != tensor.dtype.np or given.shape != tuple(tensor.shape):
        raise IsaError(
            f"tensor {tensor.name}: given dtype {given.dtype} and shape {list(given.shape)}; "
            f"expected {expected}"
        )
    return np.array(given, order="C", copy=True)


class MachineState:
    """What one core's instructions see: its own on-chip memory and the GM shared by all cores."""

    __slots__ = ("core", "gm")

    def __init__(self, core: CoreMemory, gm: GlobalMemory):
        self.core = core
        self.gm = gm

    def read(self, region: Region) -> np.ndarray:
        """A copy of the value of a tile or a GM region."""
        if isinstance(region, Tile):
            return self.core.read(region)
        return self.gm.read(region)

    def view(self, region: Region) -> np.ndarray:
        """A live view of a tile or a GM region (no copy)."""
        if isinstance(region, Tile):
            return self.core._view(region)
        return self.gm._window(region)

    def write(self, region: Region, value: np.ndarray) -> None:
        """Store `value` into a tile or a GM region."""
        if isinstance(region, Tile):
            self.core.write(region, value)
        else:
            self.gm.write(region, value)
