"""What the ISA needs to know of a core: buffer capacities, alignments and the number of event ids.

The numbers come from a hardware description (npusim's presets); this module holds none of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from isa.cores import CoreKind
from isa.types import Pipe, Space


@dataclass(frozen=True)
class CoreLimits:
    """Capacity and alignment in bytes of each on-chip buffer a core has, its pipes and event ids.

    A space missing from `capacity` is a buffer the core does not have; a pipe missing from `pipes`
    is one it does not have (a split chip's vector core has no M, its cube core no V). By default
    the core has every pipe, as a coupled core does (`isa.cores` says what each kind has).
    """

    capacity: Mapping[Space, int]
    alignment: Mapping[Space, int]
    num_events: int
    pipes: frozenset[Pipe] = CoreKind.MIXED.pipes
    name: str = CoreKind.MIXED.label  # how messages name the core kind, e.g. "AIV (vector core)"

    def __post_init__(self) -> None:
        object.__setattr__(self, "capacity", MappingProxyType(dict(self.capacity)))
        object.__setattr__(self, "alignment", MappingProxyType(dict(self.alignment)))
        if Space.GM in self.capacity:
            raise ValueError("GM is not an on-chip buffer; give capacities of L1, L0A, L0B, L0C, UB")
        for space, size in self.capacity.items():
            if size <= 0:
                raise ValueError(f"capacity of {space.value} must be positive, got {size}")
            if self.alignment.get(space, 0) <= 0:
                raise ValueError(f"{space.value} needs a positive alignment, got {self.alignment.get(space)}")
        if self.num_events <= 0:
            raise ValueError(f"num_events must be positive, got {self.num_events}")
