"""The instruction set: one frozen dataclass per instruction (families share one class and an op enum).

An instruction is pure data. It knows its pipe, the regions it reads and writes, and its mnemonic;
what it computes lives in `isa.semantics`, how it prints and parses in `isa.asm`, and what it costs
in the timing simulator, never here.
"""

from __future__ import annotations

import enum
import operator
from dataclasses import dataclass
from typing import ClassVar

from isa.regions import GmRegion, HashedByFields, Region, Tile, hash_by_fields
from isa.types import Pipe


class Instruction(HashedByFields):
    """Base of every instruction: pipe, regions read and written; `str()` gives its assembly line.

    Instructions are dict keys on hot paths (pools, static checks, cost caches): each keeps the
    hash of its fields, computed on construction (see `HashedByFields`).
    """

    __slots__ = ()
    pipe: Pipe  # set as a class attribute, or a property where it depends on fields

    @property
    def mnemonic(self) -> str:
        raise NotImplementedError

    @property
    def reads(self) -> tuple[Region, ...]:
        return ()

    @property
    def writes(self) -> tuple[Region, ...]:
        return ()

    # str(instruction) is its assembly line. `isa.asm` installs that __str__ (and `isa` imports
    # `isa.asm`, so it is there whenever an instruction exists): this data module never imports
    # its printer.


class _Fixed(Instruction):
    """An instruction with one mnemonic, one destination and its sources in `_sources`.

    `reads` is asked on hot paths (task graph, checks, decoder, sanitizer): `_reads_getter`
    installs, per class, a C getter of the `_sources` fields in their order in its place.
    """

    __slots__ = ()
    MNEMONIC: ClassVar[str]
    _sources: ClassVar[tuple[str, ...]]

    @property
    def mnemonic(self) -> str:
        return self.MNEMONIC

    @property
    def reads(self) -> tuple[Region, ...]:
        return tuple(getattr(self, name) for name in self._sources)

    @property
    def writes(self) -> tuple[Region, ...]:
        return (self.dst,)  # type: ignore[attr-defined]


# --- data movement and cube -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load(_Fixed):
    """MTE2: copy a GM region into L1 or UB; `transpose` stores it transposed (DN load into L1)."""

    dst: Tile
    src: GmRegion
    transpose: bool = False
    MNEMONIC: ClassVar[str] = "load"
    pipe: ClassVar[Pipe] = Pipe.MTE2
    _sources: ClassVar[tuple[str, ...]] = ("src",)


@dataclass(frozen=True, slots=True)
class Move(_Fixed):
    """MTE1: copy an L1 tile into L0A or L0B, optionally transposed."""

    dst: Tile
    src: Tile
    transpose: bool = False
    MNEMONIC: ClassVar[str] = "move"
    pipe: ClassVar[Pipe] = Pipe.MTE1
    _sources: ClassVar[tuple[str, ...]] = ("src",)


@dataclass(frozen=True, slots=True)
class Mmad(_Fixed):
    """M: dst[M,N] (L0C) = a[M,K] (L0A) @ b[K,N] (L0B), plus dst's old value if `accumulate`."""

    dst: Tile
    a: Tile
    b: Tile
    accumulate: bool = False
    MNEMONIC: ClassVar[str] = "mmad"
    pipe: ClassVar[Pipe] = Pipe.M

    @property
    def reads(self) -> tuple[Region, ...]:
        return (self.a, self.b, self.dst) if self.accumulate else (self.a, self.b)


@dataclass(frozen=True, slots=True)
class Fixpipe(_Fixed):
    """FIX: copy an L0C tile to GM (or to UB on a coupled core), casting to the destination dtype."""

    dst: Tile | GmRegion
    src: Tile
    MNEMONIC: ClassVar[str] = "fixpipe"
    pipe: ClassVar[Pipe] = Pipe.FIX
    _sources: ClassVar[tuple[str, ...]] = ("src",)


@dataclass(frozen=True, slots=True)
class Store(_Fixed):
    """MTE3: copy a UB tile to a GM region."""

    dst: GmRegion
    src: Tile
    MNEMONIC: ClassVar[str] = "store"
    pipe: ClassVar[Pipe] = Pipe.MTE3
    _sources: ClassVar[tuple[str, ...]] = ("src",)


# --- vector unit (all operands in UB) ---------------------------------------------------------


class BinaryOp(enum.Enum):
    """Element-wise tile-tile operations; the value is the mnemonic."""

    __hash__ = object.__hash__  # members are singletons; Enum's hash by name is slow on hot paths

    ADD = "vadd"
    SUB = "vsub"
    MUL = "vmul"
    DIV = "vdiv"
    MAX = "vmax"
    MIN = "vmin"


class ScalarOp(enum.Enum):
    """Element-wise tile-scalar operations; the value is the mnemonic."""

    __hash__ = object.__hash__  # members are singletons; Enum's hash by name is slow on hot paths

    ADDS = "vadds"
    MULS = "vmuls"
    MAXS = "vmaxs"
    MINS = "vmins"


class UnaryOp(enum.Enum):
    """Element-wise one-operand operations that keep the dtype; the value is the mnemonic."""

    __hash__ = object.__hash__  # members are singletons; Enum's hash by name is slow on hot paths

    EXP = "vexp"
    COPY = "vcopy"


class ReduceOp(enum.Enum):
    """Row reductions [rows, cols] -> [rows, 1]; the value is the mnemonic."""

    __hash__ = object.__hash__  # members are singletons; Enum's hash by name is slow on hot paths

    MAX = "vrowmax"
    SUM = "vrowsum"


class RowExpandOp(enum.Enum):
    """dst = src op col, with the [rows, 1] column broadcast along each row; value is the mnemonic."""

    __hash__ = object.__hash__  # members are singletons; Enum's hash by name is slow on hot paths

    SUB = "vrowexpandsub"
    MUL = "vrowexpandmul"
    DIV = "vrowexpanddiv"


class _Vector(_Fixed):
    __slots__ = ()
    pipe: ClassVar[Pipe] = Pipe.V

    @property
    def mnemonic(self) -> str:
        return self.op.value  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class VecBinary(_Vector):
    """V: dst = src0 op src1, element-wise, all of one dtype and shape."""

    op: BinaryOp
    dst: Tile
    src0: Tile
    src1: Tile
    _sources: ClassVar[tuple[str, ...]] = ("src0", "src1")


@dataclass(frozen=True, slots=True)
class VecScalar(_Vector):
    """V: dst = src op scalar, element-wise; the scalar is rounded to the tile's dtype first."""

    op: ScalarOp
    dst: Tile
    src: Tile
    scalar: float
    _sources: ClassVar[tuple[str, ...]] = ("src",)


@dataclass(frozen=True, slots=True)
class VecUnary(_Vector):
    """V: dst = op(src), element-wise, same dtype and shape."""

    op: UnaryOp
    dst: Tile
    src: Tile
    _sources: ClassVar[tuple[str, ...]] = ("src",)


@dataclass(frozen=True, slots=True)
class RowReduce(_Vector):
    """V: dst[rows, 1] = max or sum of each row of src[rows, cols]."""

    op: ReduceOp
    dst: Tile
    src: Tile
    _sources: ClassVar[tuple[str, ...]] = ("src",)


@dataclass(frozen=True, slots=True)
class RowExpand(_Vector):
    """V: dst[r, c] = src[r, c] op col[r, 0]."""

    op: RowExpandOp
    dst: Tile
    src: Tile
    col: Tile
    _sources: ClassVar[tuple[str, ...]] = ("src", "col")


@dataclass(frozen=True, slots=True)
class Cast(_Fixed):
    """V: dst = src converted to dst's dtype (round to nearest even; float to int rounds half even)."""

    dst: Tile
    src: Tile
    MNEMONIC: ClassVar[str] = "vcast"
    pipe: ClassVar[Pipe] = Pipe.V
    _sources: ClassVar[tuple[str, ...]] = ("src",)


@dataclass(frozen=True, slots=True)
class Dup(_Fixed):
    """V: fill every element of dst with `value` (rounded to dst's dtype)."""

    dst: Tile
    value: float
    MNEMONIC: ClassVar[str] = "vdup"
    pipe: ClassVar[Pipe] = Pipe.V
    _sources: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True, slots=True)
class FillPad(_Fixed):
    """V: dst = src with columns `valid_cols` and later replaced by `value` (e.g. -inf masking)."""

    dst: Tile
    src: Tile
    valid_cols: int
    value: float
    MNEMONIC: ClassVar[str] = "vfillpad"
    pipe: ClassVar[Pipe] = Pipe.V
    _sources: ClassVar[tuple[str, ...]] = ("src",)


# --- synchronisation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetFlag(Instruction):
    """Queued on `src`: sets flag (src, dst, event) once every earlier `src` instruction completed."""

    src: Pipe
    dst: Pipe
    event: int
    mnemonic: ClassVar[str] = "set_flag"  # type: ignore[misc]

    @property
    def pipe(self) -> Pipe:  # type: ignore[override]
        return self.src

    @property
    def key(self) -> tuple[Pipe, Pipe, int]:
        return (self.src, self.dst, self.event)


@dataclass(frozen=True, slots=True)
class WaitFlag(Instruction):
    """Queued on `dst`: blocks that pipe until flag (src, dst, event) is set, then clears it."""

    src: Pipe
    dst: Pipe
    event: int
    mnemonic: ClassVar[str] = "wait_flag"  # type: ignore[misc]

    @property
    def pipe(self) -> Pipe:  # type: ignore[override]
        return self.dst

    @property
    def key(self) -> tuple[Pipe, Pipe, int]:
        return (self.src, self.dst, self.event)


@dataclass(frozen=True, slots=True)
class Barrier(Instruction):
    """barrier P: later P instructions wait until every earlier P instruction completed.

    With `target=None` (written `barrier ALL`) the scalar front-end waits until every pipe drained.
    """

    target: Pipe | None = None
    mnemonic: ClassVar[str] = "barrier"  # type: ignore[misc]

    @property
    def pipe(self) -> Pipe:  # type: ignore[override]
        return Pipe.S if self.target is None else self.target


VECTOR_CLASSES = (VecBinary, VecScalar, VecUnary, RowReduce, RowExpand, Cast, Dup, FillPad)
SYNC_CLASSES = (SetFlag, WaitFlag, Barrier)
ALL_CLASSES: tuple[type[Instruction], ...] = (
    Load, Move, Mmad, Fixpipe, Store, *VECTOR_CLASSES, *SYNC_CLASSES,
)

def _reads_getter(cls: type[_Fixed]) -> None:
    """Install on `cls` a `reads` property that returns its `_sources` fields as a tuple, in order.

    An `operator.attrgetter` of two or more names returns the tuple itself; of one name it returns
    the bare value, so that case wraps it. A class that writes its own `reads` keeps it.
    """
    if "reads" in vars(cls):
        return
    names = cls._sources
    if len(names) > 1:
        cls.reads = property(operator.attrgetter(*names))  # type: ignore[assignment]
    elif names:
        one = operator.attrgetter(names[0])
        cls.reads = property(lambda self: (one(self),))  # type: ignore[assignment]
    else:
        cls.reads = property(lambda self: ())  # type: ignore[assignment]


for _cls in ALL_CLASSES:
    hash_by_fields(_cls)
    if issubclass(_cls, _Fixed):
        _reads_getter(_cls)
