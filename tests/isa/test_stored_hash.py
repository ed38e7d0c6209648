"""Regions and instructions keep the hash of their fields (`isa.regions.HashedByFields`).

The stored hash must be the value a plain frozen dataclass computes, so equal objects hash equal
whichever way they were made: by their constructor, by copy, or by unpickling in another process,
whose str and enum hashes differ (the hash is never pickled).
"""

import copy
import dataclasses
import os
import pickle
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from isa import Barrier, BinaryOp, Load, Pipe, ScalarOp, SetFlag, VecBinary, VecScalar
from isa.instructions import ALL_CLASSES
from isa.regions import GmRegion, Tile
from isa.types import DType, Space

ROOT = Path(__file__).resolve().parents[2]

tiles = st.builds(Tile, st.sampled_from(Space), st.integers(0, 1 << 20), st.sampled_from(DType),
                  st.tuples(st.integers(1, 64), st.integers(1, 64)))
gm = st.builds(GmRegion, st.sampled_from(["a", "ws_o", "key_cache"]), st.integers(0, 99), st.integers(0, 9),
               st.integers(1, 16), st.integers(1, 16), st.sampled_from(DType), st.integers(1, 4))
instructions = st.one_of(
    st.builds(Load, tiles, gm, st.booleans()),
    st.builds(VecBinary, st.sampled_from(BinaryOp), tiles, tiles, tiles),
    st.builds(VecScalar, st.sampled_from(ScalarOp), tiles, tiles, st.floats()),
    st.builds(SetFlag, st.sampled_from(Pipe), st.sampled_from(Pipe), st.integers(0, 7)),
    st.builds(Barrier, st.none() | st.sampled_from(Pipe)),
)
values = st.one_of(tiles, gm, instructions)


def fields_of(obj) -> tuple:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))


@given(values, values)
def test_hash_and_equality_are_a_plain_dataclasses(a, b):
    assert hash(a) == hash(fields_of(a))
    assert (a == b) == (type(a) is type(b) and fields_of(a) == fields_of(b))
    assert a == dataclasses.replace(a) and hash(dataclasses.replace(a)) == hash(a)


@given(values)
def test_copies_and_pickles_hash_as_the_original(a):
    if getattr(a, "scalar", 0) != getattr(a, "scalar", 0):
        return  # a NaN scalar: an unpickled copy holds another NaN object, so it is unequal (as ever)
    bare = object.__new__(type(a))  # made without __init__: the hash is worked out when first asked
    for name, value in zip(type(a)._field_names, fields_of(a), strict=True):
        object.__setattr__(bare, name, value)
    for twin in (copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a)), bare):
        assert twin == a and hash(twin) == hash(a)


def test_no_field_holds_the_hash_and_every_instruction_class_stores_one():
    for cls in (Tile, GmRegion, *ALL_CLASSES):
        assert "_hash" not in {f.name for f in dataclasses.fields(cls)}
        assert cls.__hash__ is Tile.__hash__, cls.__name__


def made() -> list:
    """Objects with strs, enums, nested regions and a one-field instruction, made the same anywhere."""
    column = Tile(Space.UB, 64, DType.FP32, (16, 1))
    return [column, GmRegion("ws_o", 32, 0, 16, 128, DType.FP32),
            Load(Tile(Space.L1, 0, DType.BF16, (128, 128)),
                 GmRegion("key_cache", 8, 0, 128, 128, DType.BF16, 2)),
            VecBinary(BinaryOp.MAX, column, column, Tile(Space.UB, 128, DType.FP32, (16, 1))),
            SetFlag(Pipe.V, Pipe.MTE2, 3), Barrier()]


def test_an_object_pickled_in_another_process_hashes_as_one_made_here():
    """The child hashes strs with another seed; the unpickled objects must still meet their equals."""
    child = ("import pickle, sys\nfrom tests.isa.test_stored_hash import made\n"
             "sys.stdout.buffer.write(pickle.dumps(made()))")
    env = os.environ | {"PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, check=True, cwd=ROOT, env=env)
    blob = done.stdout
    theirs, ours = pickle.loads(blob), made()
    assert theirs == ours
    assert [hash(x) for x in theirs] == [hash(x) for x in ours]
    assert len(set(theirs) | set(ours)) == len(ours)
