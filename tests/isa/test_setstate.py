"""Unpickling a region or instruction from a state it does not understand raises; it never guesses."""

from __future__ import annotations

import pickle

import pytest

from isa.instructions import Load, SetFlag
from isa.regions import GmRegion, Tile
from isa.types import DType, Pipe, Space

TILE = Tile(Space.UB, 0, DType.FP16, (4, 64))
GM = GmRegion("k", 8, 0, 4, 64, DType.FP16, 2)


class _Pickled:
    """Pickles as `cls` with the given `__setstate__` state, as some other version might have."""

    def __init__(self, cls: type, state: object) -> None:
        self.cls, self.state = cls, state

    def __reduce__(self) -> tuple[object, ...]:
        return (object.__new__, (self.cls,), self.state)


@pytest.mark.parametrize("value", [TILE, GM, Load(TILE, GM), SetFlag(Pipe.MTE2, Pipe.V, 1)])
def test_a_dict_state_is_refused_with_the_fields_it_needs(value: object) -> None:
    names = type(value)._field_names
    state = {name: getattr(value, name) for name in names}
    with pytest.raises(TypeError, match=rf"cannot unpickle {type(value).__name__} from a dict state.*"
                                        rf"{', '.join(names)}"):
        pickle.loads(pickle.dumps(_Pickled(type(value), state)))


@pytest.mark.parametrize("state", [("UB", 0), ("UB", 0, DType.FP16, (4, 64), 1), (None, {"offset": 0})])
def test_a_state_of_another_length_or_kind_is_refused(state: object) -> None:
    with pytest.raises(TypeError, match="cannot unpickle Tile"):
        pickle.loads(pickle.dumps(_Pickled(Tile, state)))


def test_field_values_in_order_as_a_tuple_or_a_list_unpickle() -> None:
    values = (Space.UB, 0, DType.FP16, (4, 64))
    for state in (values, list(values)):
        tile = pickle.loads(pickle.dumps(_Pickled(Tile, state)))
        assert tile == TILE and hash(tile) == hash(TILE)
