"""Kernel shapes: what the kernels of one program share, so that work on them is done once per shape.

A program's tasks run a few kernels that differ mostly in where their GM accesses start: builders
pool on-chip instructions (one object shared by many kernels), and each task reads and writes its
own part of the GM tensors. A kernel's shape is the identities of its instructions without a GM
region, and the `placement` key of each GM access: the access moved to the origin of its tensor
(`at_origin`), with everything else about it kept. Work that looks only at that (the static checks
other than the GM bounds, for one) is done once per shape and key. `Pinned` holds what is known of
objects by their identity.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Generic, TypeVar

from isa.instructions import ALL_CLASSES, Instruction
from isa.regions import GmRegion

_V = TypeVar("_V")


def placement(instr: Instruction) -> tuple[tuple[Any, ...], str, GmRegion] | None:
    """Where a GM access is: (its value but where its GM region starts, as a key; the field; the region).

    None for an instruction without a GM region, or an object that is no ISA instruction. Two
    accesses of one key differ only in the row and column their region starts at: the key holds the
    instruction's class, its other fields whole (any other GM region among them too), and the
    region's tensor, rows, cols, dtype and row step.
    """
    cls = type(instr)
    layout = _LAYOUTS.get(cls)
    if layout is None:
        if cls not in _ISA:
            return None
        names = cls._field_names
        layout = _LAYOUTS[cls] = [operator.attrgetter(*names) if len(names) > 1 else None, names, 0]
    getter, names, at = layout
    values = getter(instr) if getter is not None else (getattr(instr, names[0]),) if names else ()
    if at >= len(values) or type(values[at]) is not GmRegion:  # not where this class had it last time
        at = next((j for j, v in enumerate(values) if type(v) is GmRegion), None)
        if at is None:
            return None
        layout[2] = at
    gm = values[at]
    return (cls, values[:at], _GM_SHAPE(gm), values[at + 1:]), names[at], gm


# per instruction class: a getter of its field values, its field names, where its GM region was last
_LAYOUTS: dict[type, list[Any]] = {}
_ISA = frozenset(ALL_CLASSES)
_GM_SHAPE = operator.attrgetter("tensor", "rows", "cols", "dtype", "row_step")


def at_origin(instr: Instruction, placed: tuple[tuple[Any, ...], str, GmRegion] | None = None) -> Instruction:
    """`instr` with its GM region moved to row 0, col 0 of its tensor: one access for each placement key.

    `placed`: what `placement(instr)` gave, if the caller has it. An instruction without a GM region
    is returned as it is.
    """
    placed = placement(instr) if placed is None else placed
    if placed is None:
        return instr
    _, name, gm = placed
    return replace(instr, **{name: replace(gm, row=0, col=0)})  # type: ignore[type-var]


class Pinned(Generic[_V]):
    """Values of objects known by identity; each object is kept alive, so no other takes its id.

    `shape(ids)` is the part of a kernel's shape key that identities give: each instruction's value,
    or None for an instruction not known here (its GM accesses, which are known by placement key).
    """

    def __init__(self) -> None:
        self.of_id: dict[int, _V] = {}
        self._kept: list[object] = []

    def add(self, obj: object, value: _V) -> None:
        """Know `obj` by its identity from now on, as `value`."""
        self.of_id[id(obj)] = value
        self._kept.append(obj)

    def __contains__(self, key: int) -> bool:
        return key in self.of_id

    def shape(self, ids: Sequence[int]) -> tuple[_V | None, ...]:
        """The value of each object of `ids` (identities), None where it is not known."""
        return tuple(map(self.of_id.get, ids))
