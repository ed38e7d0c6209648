"""A kernel decoded for the timing engine: per instruction, what kind of handling it needs and its costs.

Decoding asks the cost model once per distinct instruction (kernels repeat a few dozen of them
thousands of times) and lays the answers out as arrays indexed by instruction, which is what the
engine's hot loops read. It depends only on the kernel, the config and the GM layout, so every task
running one kernel shares one decoded form.
"""

from __future__ import annotations

import enum
from array import array
from collections.abc import Mapping
from typing import NamedTuple

from isa.instructions import Barrier, Instruction, SetFlag, WaitFlag
from isa.program import Kernel, Tensor
from isa.shapes import Pinned, at_origin, placement
from isa.types import Pipe
from npusim.config import HardwareConfig
from npusim.costs import Transfer, cost
from npusim.flags import FlagKey


class Kind(enum.IntEnum):
    """How the engine handles an instruction (one handler each)."""

    COMPUTE = 0  # holds its pipe for a known occupancy: mmad, vector ops, MTE1 moves, fixpipe to UB
    GM = 1  # a DMA transfer to or from GM, timed by the memory system
    SET = 2  # set_flag
    WAIT = 3  # wait_flag
    BARRIER = 4  # barrier on one pipe
    BARRIER_ALL = 5  # barrier ALL, on the front-end


class Decoded(NamedTuple):
    """One distinct instruction as the engine sees it."""

    kind: Kind
    pipe: Pipe
    occupancy: int  # cycles it holds its pipe (COMPUTE)
    latency: int  # cycles from start to completion (COMPUTE)
    nbytes: int
    flops: int
    flag: FlagKey | None  # SET and WAIT
    transfer: Transfer | None  # GM


def decode_one(instr: Instruction, config: HardwareConfig, tensors: Mapping[str, Tensor]) -> Decoded:
    """The engine's view of one instruction; raises IsaError if the config has no path it needs."""
    c = cost(instr, config, tensors)
    flag = None
    if isinstance(instr, SetFlag | WaitFlag):
        kind, flag = (Kind.SET if isinstance(instr, SetFlag) else Kind.WAIT), instr.key
    elif isinstance(instr, Barrier):
        kind = Kind.BARRIER_ALL if instr.target is None else Kind.BARRIER
    else:
        kind = Kind.COMPUTE if c.transfer is None else Kind.GM
    return Decoded(kind, instr.pipe, c.occupancy, c.latency, c.bytes, c.flops, flag, c.transfer)


class _Shape:
    """What every kernel of one shape (its instructions' decoded rows, in order) shares: its arrays."""

    def __init__(self, rows: tuple[int, ...], table: list[Decoded]) -> None:
        decoded = [table[r] for r in rows]
        self.kinds = array("b", [d.kind for d in decoded])
        self.occupancy = array("q", [d.occupancy for d in decoded])
        self.latency = array("q", [d.latency for d in decoded])
        self.nbytes = array("q", [d.nbytes for d in decoded])
        self.flops = array("q", [d.flops for d in decoded])
        self.pipe_of: list[Pipe] = [d.pipe for d in decoded]
        self.flag_keys: list[FlagKey] = list(dict.fromkeys(d.flag for d in decoded if d.flag is not None))
        slot = {key: i for i, key in enumerate(self.flag_keys)}
        self.aux: list[Transfer | int | None] = [
            d.transfer if d.flag is None else slot[d.flag] for d in decoded]


class DecodeCache:
    """What one run has decoded, shared by its kernels: each instruction's Decoded by value, and more.

    A kernel is decoded as its shape (`isa.shapes`): its instructions without a GM region have rows
    by identity, its GM accesses rows by placement key, each decoded once at the origin of its
    tensor; each shape's arrays are made once, and a kernel only adds its own GM transfers, its
    regions with the path, bytes and rows of its key's row. That rests on the assumption stated in
    `npusim.costs`: a GM transfer's cost does not depend on where its region starts.
    `by_value` holds each instruction's Decoded: a dict of its own, or the plain dict a caller shares.
    """

    def __init__(self, by_value: dict[Instruction, Decoded] | None = None) -> None:
        self.by_value: dict[Instruction, Decoded] = {} if by_value is None else by_value
        self.table: list[Decoded] = []  # the distinct rows: on-chip instructions and GM accesses by key
        self.row_of_value: dict[Instruction, int] = {}
        self.row_of_id: Pinned[int] = Pinned()  # instructions without a GM region, by identity
        self.row_of_gm: dict[tuple[object, ...], int] = {}  # GM accesses by placement key
        # rows by identity (None: not known) -> where they are None: GM accesses, and new objects
        self.unknown_at: dict[tuple[int | None, ...], tuple[int, ...]] = {}
        self.shapes: dict[tuple[int, ...], _Shape] = {}

    def shape(self, instrs: tuple[Instruction, ...], config: HardwareConfig,
              tensors: Mapping[str, Tensor]) -> tuple[_Shape, dict[int, Transfer]]:
        """The shape of a kernel of `instrs`, and its GM accesses' transfers by position."""
        known = self.row_of_id.shape(tuple(map(id, instrs)))
        unknown = self.unknown_at.get(known)
        if unknown is None:
            unknown = self.unknown_at[known] = tuple(p for p, row in enumerate(known) if row is None)
        rows = list(known)
        transfers = {}
        for p in unknown:
            rows[p], transfer = self._unknown_row(instrs[p], config, tensors)
            if transfer is not None:
                transfers[p] = transfer
        key: tuple[int, ...] = tuple(rows)  # type: ignore[arg-type]  # every row is known now
        found = self.shapes.get(key)
        if found is None:
            found = self.shapes[key] = _Shape(key, self.table)
        return found, transfers

    def _row(self, instr: Instruction, config: HardwareConfig, tensors: Mapping[str, Tensor]) -> int:
        """The row of an instruction without a GM region; from now on known by its identity."""
        row = self.row_of_value.get(instr)
        if row is None:
            decoded = self.by_value.get(instr)
            if decoded is None:
                decoded = self.by_value[instr] = decode_one(instr, config, tensors)
            row = self.row_of_value[instr] = len(self.table)
            self.table.append(decoded)
        self.row_of_id.add(instr, row)
        return row

    def _unknown_row(self, instr: Instruction, config: HardwareConfig,
                     tensors: Mapping[str, Tensor]) -> tuple[int, Transfer | None]:
        """The row of an instruction not known by identity; for a GM access (decoded once per
        placement key) also its own transfer."""
        placed = placement(instr)
        if placed is None:  # a new object without a GM region: known by identity from now on
            return self._row(instr, config, tensors), None
        key, _, gm = placed
        row = self.row_of_gm.get(key)
        if row is None:
            row = self.row_of_gm[key] = len(self.table)
            self.table.append(decode_one(at_origin(instr, placed), config, tensors))
        t = self.table[row].transfer
        assert t is not None, "a GM access is decoded with its transfer"
        return row, Transfer(gm, t.path, t.moved, t.rows)


class DecodedKernel:
    """Arrays indexed by instruction: kinds, occupancy, latency, bytes, flops, pipes and operands.

    `aux[i]` is a GM instruction's Transfer, or a set/wait_flag's index into `flag_keys` (each run
    makes its own flags, in that order). The arrays and `pipe_of` are shared by every kernel of
    one shape in a run: they are read, never written.
    """

    def __init__(self, kernel: Kernel, config: HardwareConfig, tensors: Mapping[str, Tensor],
                 seen: DecodeCache | dict[Instruction, Decoded] | None = None) -> None:
        """`seen`: what the run has decoded, shared by its kernels (a DecodeCache; a plain dict
        shares each instruction's Decoded by value only); filled as this one decodes."""
        cache = seen if isinstance(seen, DecodeCache) else DecodeCache(seen)
        shape, transfers = cache.shape(kernel.instructions, config, tensors)
        self.kernel = kernel
        self.kinds, self.occupancy, self.latency = shape.kinds, shape.occupancy, shape.latency
        self.nbytes, self.flops, self.pipe_of = shape.nbytes, shape.flops, shape.pipe_of
        self.flag_keys = shape.flag_keys
        self.aux = list(shape.aux)
        for p, transfer in transfers.items():
            self.aux[p] = transfer

    def __len__(self) -> int:
        return len(self.kinds)
