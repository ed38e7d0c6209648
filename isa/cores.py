"""The kinds of core, declared once: which pipes and buffers each has and what the chip calls it.

A split chip (910B-like) has cube cores (AIC) and vector cores (AIV) that share nothing but GM; a
coupled chip (310P-like) has one kind of core with both halves, which runs any kernel. The program
format sorts kernels into kinds by this table (`CoreKind.of`), the hardware config gives each kind
its buffers and pipes from it, and the chip names its cores by its prefixes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from isa.instructions import SetFlag, WaitFlag
from isa.regions import Tile
from isa.types import Pipe, Space

if TYPE_CHECKING:
    from isa.program import Kernel


class CoreKind(enum.Enum):
    """Which kind of core a kernel needs: a split chip has cube (AIC) and vector (AIV) cores."""

    CUBE = "cube"
    VECTOR = "vector"
    MIXED = "mixed"  # both: only a coupled core (cube and vector in one) runs it

    @property
    def pipes(self) -> frozenset[Pipe]:
        return CORES[self].pipes

    @property
    def spaces(self) -> frozenset[Space]:
        """The on-chip buffers a core of this kind has."""
        return CORES[self].spaces

    @property
    def label(self) -> str:
        """How messages name a core of this kind, e.g. "AIV (vector core)"."""
        return CORES[self].label

    @property
    def prefix(self) -> str:
        """Core i of this kind is called prefix + i in runs and traces ("aic0", "aiv3", "core1")."""
        return CORES[self].prefix

    @classmethod
    def of(cls, kernel: Kernel) -> CoreKind:
        """The kind a kernel's pipes and buffers need (a kernel of sync instructions only: cube).

        A pipe or buffer that only the cube core has makes it a cube kernel, one that only the vector
        core has a vector kernel, both a mixed one; S and MTE2, which both have, decide nothing.
        """
        cube = vector = False
        for instr in kernel.instructions:
            pipes = (instr.src, instr.dst) if isinstance(instr, SetFlag | WaitFlag) else (instr.pipe,)
            spaces = [r.space for r in (*instr.reads, *instr.writes) if isinstance(r, Tile)]
            used = (*pipes, *spaces)
            cube = cube or any(u in _CUBE_ONLY for u in used)
            vector = vector or any(u in _VECTOR_ONLY for u in used)
        if cube and vector:
            return cls.MIXED
        return cls.VECTOR if vector else cls.CUBE


@dataclass(frozen=True)
class CoreSpec:
    """One kind of core: the pipes and on-chip buffers it has, and how messages and runs name it."""

    pipes: frozenset[Pipe]
    spaces: frozenset[Space]
    label: str
    prefix: str


_P, _S = Pipe, Space
_AIC = CoreSpec(frozenset({_P.S, _P.MTE2, _P.MTE1, _P.M, _P.FIX}), frozenset({_S.L1, _S.L0A, _S.L0B, _S.L0C}),
                "AIC (cube core)", "aic")
_AIV = CoreSpec(frozenset({_P.S, _P.MTE2, _P.V, _P.MTE3}), frozenset({_S.UB}), "AIV (vector core)", "aiv")

CORES: Mapping[CoreKind, CoreSpec] = MappingProxyType({
    CoreKind.CUBE: _AIC,
    CoreKind.VECTOR: _AIV,
    # A coupled core is both halves in one: every pipe and buffer.
    CoreKind.MIXED: CoreSpec(_AIC.pipes | _AIV.pipes, _AIC.spaces | _AIV.spaces, "core", "core"),
})

# What tells a kernel's kind: what one kind of core has and the other does not.
_CUBE_ONLY = frozenset((_AIC.pipes - _AIV.pipes) | (_AIC.spaces - _AIV.spaces))
_VECTOR_ONLY = frozenset((_AIV.pipes - _AIC.pipes) | (_AIV.spaces - _AIC.spaces))
