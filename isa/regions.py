"""Operand regions: a tile in an on-chip buffer, or a strided 2-D window of a GM tensor."""

from __future__ import annotations

import operator
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from isa.types import DType, Space

_Cls = TypeVar("_Cls", bound=type)


class HashedByFields:
    """Base of the frozen slotted dataclasses hashed on hot paths: regions and instructions.

    Builders pool equal instructions and the checks, the decoder and the sanitizer key caches by
    them, so each is hashed many times: the hash of its field tuple (the value the dataclass itself
    would compute) is worked out once, on construction, and kept in the `_hash` slot. That slot is
    no field, so it is neither compared nor pickled: enum members hash by identity and strs by a
    per-process seed, so a carried hash would be wrong in the process that unpickles the object,
    which computes its own. Subclasses get their methods from `hash_by_fields`.
    """

    __slots__ = ("_hash",)
    _hash: int
    _field_names: tuple[str, ...]
    _field_values: Any  # a C getter of the field tuple, installed per class by `hash_by_fields`

    def __post_init__(self) -> None:
        _store_hash(self, hash(self._field_values(self)))

    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:  # made without __init__ or __setstate__ (object.__new__)
            self.__post_init__()
            return self._hash

    def __getstate__(self) -> tuple[Any, ...]:
        return self._field_values(self)  # type: ignore[no-any-return]

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        """Set the fields from their values in order (what `__getstate__` gives; a plain slotted
        dataclass pickles a list of them); raise TypeError for any other state."""
        names = self._field_names
        if not isinstance(state, tuple | list) or len(state) != len(names):
            raise TypeError(f"cannot unpickle {type(self).__name__} from a {type(state).__name__} state "
                            f"{state!r:.200}; expected its field values in order: {', '.join(names)}")
        for name, value in zip(names, state, strict=True):
            object.__setattr__(self, name, value)
        self.__post_init__()


# The slot's own setter: frozen dataclasses refuse setattr, and object.__setattr__ would cost a
# lookup more on every construction.
_store_hash = HashedByFields._hash.__set__  # type: ignore[attr-defined,misc]


def hash_by_fields(cls: _Cls) -> _Cls:
    """Give `cls`, a frozen slotted dataclass deriving from `HashedByFields`, its stored hash.

    `@dataclass(frozen=True, slots=True)` writes its own `__hash__`, `__getstate__` and
    `__setstate__` into the class it makes; this puts the `HashedByFields` ones back and installs
    the getter of the fields, in their order, that they use.
    """
    names = tuple(f.name for f in fields(cls))
    many = operator.attrgetter(*names)
    getter = many if len(names) > 1 else (lambda obj: (many(obj),))  # attrgetter of one name: no tuple
    cls._field_names = names  # type: ignore[attr-defined]
    cls._field_values = staticmethod(getter)  # type: ignore[attr-defined]
    for method in ("__hash__", "__getstate__", "__setstate__"):
        setattr(cls, method, getattr(HashedByFields, method))
    return cls


@hash_by_fields
@dataclass(frozen=True, slots=True)
class Tile(HashedByFields):
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


@hash_by_fields
@dataclass(frozen=True, slots=True)
class GmRegion(HashedByFields):
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
