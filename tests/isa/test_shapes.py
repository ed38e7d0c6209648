"""`isa.shapes`: placement keys, accesses moved to the origin, and values pinned by identity."""

from __future__ import annotations

from isa.instructions import Barrier, Fixpipe, Load, SetFlag
from isa.regions import GmRegion, Tile
from isa.shapes import Pinned, at_origin, placement
from isa.types import DType, Pipe, Space

UB = Tile(Space.UB, 0, DType.FP16, (4, 64))


def test_accesses_that_differ_only_in_where_they_start_share_a_key() -> None:
    a = Load(UB, GmRegion("k", 8, 64, 4, 64, DType.FP16, 2))
    b = Load(UB, GmRegion("k", 3, 0, 4, 64, DType.FP16, 2))
    key_a, name, gm = placement(a)
    assert (name, gm) == ("src", a.src)
    assert key_a == placement(b)[0]
    for other in (GmRegion("k", 8, 64, 4, 32, DType.FP16, 2), GmRegion("k", 8, 64, 4, 64, DType.FP16, 1),
                  GmRegion("v", 8, 64, 4, 64, DType.FP16, 2)):
        assert placement(Load(UB, other))[0] != key_a
    assert placement(Load(UB, a.src, True))[0] != key_a


def test_at_origin_moves_only_the_gm_region() -> None:
    a = Fixpipe(GmRegion("o", 5, 16, 4, 64, DType.FP32, 3), Tile(Space.L0C, 0, DType.FP32, (4, 64)))
    moved = at_origin(a)
    assert moved == Fixpipe(GmRegion("o", 0, 0, 4, 64, DType.FP32, 3), a.src)
    assert placement(moved)[0] == placement(a)[0]
    assert at_origin(a, placement(a)) == moved


def test_instructions_without_a_gm_region_have_no_placement() -> None:
    to_ub = Fixpipe(UB, Tile(Space.L0C, 0, DType.FP32, (4, 64)))
    on_chip = [SetFlag(Pipe.MTE2, Pipe.V, 0), Barrier(None), to_ub]
    for instr in on_chip:
        assert placement(instr) is None and at_origin(instr) is instr
    assert placement("load") is None  # type: ignore[arg-type]


def test_pinned_knows_objects_by_identity_and_keeps_them_alive() -> None:
    pinned: Pinned[int] = Pinned()
    flag = SetFlag(Pipe.MTE2, Pipe.V, 0)
    pinned.add(flag, 7)
    twin = SetFlag(Pipe.MTE2, Pipe.V, 0)  # equal, but another object
    assert id(flag) in pinned and id(twin) not in pinned
    assert pinned.shape([id(flag), id(twin), id(flag)]) == (7, None, 7)
    ident = id(flag)
    del flag
    assert pinned.shape([ident]) == (7,)  # still alive: no new object can take that id
