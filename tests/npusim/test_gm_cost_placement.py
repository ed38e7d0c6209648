"""A GM transfer's cost must not depend on where its region starts (`npusim.costs` states it).

`npusim.decode` costs each GM access once per `isa.shapes.placement` key, at the origin of its
tensor, and gives every access of that key the same path, bytes and rows: that is exact only if
moving a region leaves its cost alone. Random regions of random shapes at random offsets of random
tensors, on every shipped preset, cost what their access at the origin costs, the region aside.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from isa.instructions import Fixpipe, Load, Store
from isa.program import Tensor
from isa.regions import GmRegion, Tile
from isa.shapes import at_origin, placement
from isa.types import DType, Space
from npusim.config import load_preset
from npusim.costs import cost

PRESETS = {name: load_preset(name) for name in ("910b2", "910b3", "310p")}


@st.composite
def accesses(draw: st.DrawFn) -> tuple[object, dict[str, Tensor]]:
    """A load, store or fixpipe of a random in-bounds region of a random tensor."""
    dtype = draw(st.sampled_from([DType.FP16, DType.BF16, DType.FP32, DType.INT8, DType.INT32]))
    shape = tuple(draw(st.lists(st.integers(1, 12), min_size=1, max_size=4)))
    shape = (*shape[:-1], draw(st.integers(1, 300)))
    tensor = Tensor("t", dtype, shape)
    mrows, mcols = tensor.matrix_shape
    step = draw(st.integers(1, max(1, min(4, mrows))))
    rows = draw(st.integers(1, max(1, (mrows - 1) // step + 1)))
    row = draw(st.integers(0, mrows - 1 - (rows - 1) * step))
    cols = draw(st.integers(1, mcols))
    col = draw(st.integers(0, mcols - cols))
    gm = GmRegion("t", row, col, rows, cols, dtype, step)
    tile = Tile(draw(st.sampled_from([Space.L1, Space.UB])), 0, dtype, (rows, cols))
    kind = draw(st.sampled_from(["load", "load_t", "store", "fixpipe"]))
    if kind == "store":
        instr = Store(gm, Tile(Space.UB, 0, dtype, (rows, cols)))
    elif kind == "fixpipe":
        instr = Fixpipe(gm, Tile(Space.L0C, 0, dtype, (rows, cols)))
    else:
        instr = Load(tile, gm, kind == "load_t")
    return instr, {"t": tensor}


@settings(max_examples=300, deadline=None)
@given(accesses(), st.sampled_from(sorted(PRESETS)))
def test_a_gm_transfer_costs_what_its_access_at_the_origin_costs(case, preset) -> None:
    instr, tensors = case
    config = PRESETS[preset]
    here, there = cost(instr, config, tensors), cost(at_origin(instr), config, tensors)
    _, _, gm = placement(instr)
    assert here.transfer is not None and there.transfer is not None
    assert here.transfer.region == gm
    assert (here.transfer.path, here.transfer.moved, here.transfer.rows) == (
        there.transfer.path, there.transfer.moved, there.transfer.rows)
    assert (here.occupancy, here.latency, here.bytes, here.flops) == (
        there.occupancy, there.latency, there.bytes, there.flops)
