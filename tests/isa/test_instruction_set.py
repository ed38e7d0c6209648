"""Every instruction class has each of the places docs/isa.md's "Adding an instruction" lists.

The classes are found by walking Instruction's subclasses, not read from any list in the code, so a
new class that misses a place fails here: its syntax (`isa.asm.SYNTAX`, and a line that parses back
to the same object), its static check rule (`isa.check.RULES`), its semantics
(`isa.semantics.SEMANTICS`, None for an instruction that computes nothing) and its cost
(`npusim.costs.COSTS`). A family class (one class, an `op` enum) needs every op in each of them.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
import typing

import numpy as np
import pytest

import isa
from isa import asm, check, semantics
from isa.instructions import ALL_CLASSES, Instruction
from isa.program import Tensor
from isa.regions import GmRegion, Tile
from isa.types import DType, Pipe, Space
from npusim import costs, load_preset


def _concrete(cls: type) -> list[type[Instruction]]:
    found = []
    for sub in cls.__subclasses__():
        # @dataclass(slots=True) builds a new class; the one it replaced stays in __subclasses__
        # until collected, so only the class its module holds under that name counts.
        current = getattr(sys.modules[sub.__module__], sub.__qualname__, None) is sub
        if dataclasses.is_dataclass(sub) and current:
            found.append(sub)
        found += _concrete(sub)
    return found


CLASSES = sorted(set(_concrete(Instruction)), key=lambda c: c.__name__)
TILE = Tile(Space.UB, 0, DType.FP32, (2, 2))
GM = GmRegion("t", 0, 0, 2, 2, DType.FP32)
TENSORS = {"t": Tensor("t", DType.FP32, (2, 2))}


def _value(hint: typing.Any, position: int) -> typing.Any:
    """A valid-looking operand of a field's type; asm and the cost model do not check shapes."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    options = typing.get_args(hint) if union else (hint,)
    if GmRegion in options:  # a destination that may be GM: fixpipe's path to GM exists on every preset
        return GM
    if type(None) in options:
        return None  # e.g. barrier ALL
    chosen = options[0]
    if chosen is Pipe:
        return (Pipe.MTE2, Pipe.V)[position % 2]  # a flag's two pipes differ
    return {Tile: TILE, int: 1, float: 0.5, bool: True}[chosen]


def samples(cls: type[Instruction]) -> list[Instruction]:
    """One instance of `cls`, or one per op of a family class."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    is_op = {n: isinstance(hints[n], type) and issubclass(hints[n], enum.Enum)
             and hints[n] not in (Pipe, DType, Space) for n in names}
    pipe_fields = [n for n in names if hints[n] is Pipe]
    base = {n: _value(hints[n], pipe_fields.index(n) if n in pipe_fields else 0)
            for n in names if not is_op[n]}
    ops = [n for n in names if is_op[n]]
    if not ops:
        return [cls(**base)]
    (op,) = ops  # a family: one class, its op an enum whose values are the mnemonics
    return [cls(**base, **{op: member}) for member in hints[op]]


def _ids(cls: type) -> str:
    return cls.__name__


def test_the_walk_finds_the_instruction_set():
    """The walk itself: it finds the documented set (DESIGN.md) and every class is in ALL_CLASSES."""
    names = {c.__name__ for c in CLASSES}
    assert {"Load", "Move", "Mmad", "Fixpipe", "Store", "VecBinary", "VecScalar", "VecUnary", "RowReduce",
            "RowExpand", "Cast", "Dup", "FillPad", "SetFlag", "WaitFlag", "Barrier"} <= names
    assert set(CLASSES) == set(ALL_CLASSES)  # ALL_CLASSES installs the cached hash on each
    assert all(getattr(isa, c.__name__) is c for c in CLASSES)  # exported by the package


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_syntax_prints_and_parses_back(cls):
    assert cls in asm.SYNTAX, f"{cls.__name__}: no syntax; add a template to isa/asm.py _DATA or _FAMILIES"
    for instr in samples(cls):
        assert instr.mnemonic in asm.SYNTAX[cls]
        line = str(instr)
        assert line.split()[0] == instr.mnemonic
        assert asm.parse_instruction(line) == instr


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_check_rule(cls):
    assert cls in check.RULES, f"{cls.__name__}: no static check rule; add one to isa/check.py RULES"
    for instr in samples(cls):
        assert all(p is None or isinstance(p, str) for p in check.RULES[cls](instr))


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_semantics(cls):
    assert cls in semantics.SEMANTICS, (f"{cls.__name__}: no semantics; add a function (or None if it "
                                        "computes nothing) to isa/semantics.py SEMANTICS")
    for instr in samples(cls):
        if semantics.SEMANTICS[cls] is None:
            assert instr.writes == ()  # only an instruction that writes nothing may compute nothing
            continue
        assert len(instr.writes) == 1
        sources = [np.ones(r.shape, r.dtype.np) for r in instr.reads]
        with semantics.numeric_context():
            value = semantics.compute(instr, sources)  # every op of a family has its function
        assert isinstance(value, np.ndarray)


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_cost(cls):
    assert cls in costs.COSTS, f"{cls.__name__}: no cost; add a function to npusim/costs.py COSTS"
    config = load_preset("910b2")
    for instr in samples(cls):
        cost = costs.cost(instr, config, TENSORS)
        assert 0 <= cost.occupancy <= cost.latency


def test_each_dtype_knows_its_numpy_type_and_item_size_without_asking_numpy_for_the_size():
    import ml_dtypes

    want = {"fp16": np.float16, "bf16": ml_dtypes.bfloat16, "fp32": np.float32, "int8": np.int8,
            "int32": np.int32}
    assert {d.value for d in DType} == set(want)
    for dtype in DType:
        assert dtype.np == np.dtype(want[dtype.value]), dtype
        assert dtype.itemsize == np.dtype(want[dtype.value]).itemsize, dtype
