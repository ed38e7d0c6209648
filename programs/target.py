"""What a program builder reads of the chip it targets: its cores' buffers and the cube's fractal.

npusim's `HardwareConfig` is such a target. `programs` depends only on `isa`, so builders see it
through the protocol below. A builder given no target lays its kernels out for the 910B, exactly
as it does given `load_preset("910b2")` (tests/programs/test_presets.py keeps the two equal).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from isa.cores import CoreKind
from isa.limits import CoreLimits


class Fractal(Protocol):
    """The cube's unit of work: an m0 x k0 by k0 x n0 product, k0 = k0_bytes / element size."""

    @property
    def m0(self) -> int: ...

    @property
    def n0(self) -> int: ...

    @property
    def k0_bytes(self) -> int: ...


class Hardware(Protocol):
    """The chip a program is built for (npusim.config.HardwareConfig)."""

    @property
    def cube(self) -> Fractal: ...

    def core_limits(self, kind: CoreKind | None = None) -> CoreLimits: ...

    def limits_by_kind(self) -> Mapping[CoreKind, CoreLimits]: ...


def strictest_alignment(config: Hardware) -> int:
    """The largest start-address alignment of any buffer of any core: one offset rule fits every buffer."""
    return max(a for limits in config.limits_by_kind().values() for a in limits.alignment.values())


def align_up(n: int, to: int) -> int:
    """`n` rounded up to a multiple of `to`."""
    return -(-n // to) * to


def largest_doubling(start: int, fits: Callable[[int], bool]) -> int:
    """The largest start * 2**j that `fits` (start itself if nothing larger does, fitting or not).

    Tiles grow by doubling from the hardware's fractal, as hand-written kernels size them; a target
    too small for even `start` gets `start`, which the static checks then refuse with the reason.
    """
    size = start
    while fits(2 * size):
        size *= 2
    return size
