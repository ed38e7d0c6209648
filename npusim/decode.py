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

import numpy as np

from isa.instructions import Barrier, Instruction, SetFlag, WaitFlag
from isa.program import Kernel, Tensor
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


class DecodedKernel:
    """Arrays indexed by instruction: kinds, occupancy, latency, bytes, flops, pipes and operands.

    `aux[i]` is a GM instruction's Transfer, or a set/wait_flag's index into `flag_keys` (each run
    makes its own flags, in that order).
    """

    def __init__(self, kernel: Kernel, config: HardwareConfig, tensors: Mapping[str, Tensor],
                 seen: dict[Instruction, Decoded] | None = None) -> None:
        """`seen`: instructions already decoded, shared by the kernels of one run (the tasks of a
        program repeat the same on-chip instructions across kernels); filled as this one decodes."""
        seen = {} if seen is None else seen
        by_id: dict[int, int] = {}
        by_value: dict[Instruction, int] = {}
        table: list[Decoded] = []  # one row per distinct instruction
        codes = array("l")  # each instruction's row
        for instr in kernel.instructions:
            code = by_id.get(id(instr))
            if code is None:
                code = by_value.get(instr)
                if code is None:
                    code = by_value[instr] = len(table)
                    decoded = seen.get(instr)
                    if decoded is None:
                        decoded = seen[instr] = decode_one(instr, config, tensors)
                    table.append(decoded)
                by_id[id(instr)] = code
            codes.append(code)
        index = np.frombuffer(codes, dtype=np.int_)

        def gathered(values: list[int], typecode: str) -> array:
            return array(typecode, np.asarray(values, dtype=typecode)[index].tobytes())

        self.kernel = kernel
        self.kinds = gathered([d.kind for d in table], "b")
        self.occupancy = gathered([d.occupancy for d in table], "q")
        self.latency = gathered([d.latency for d in table], "q")
        self.nbytes = gathered([d.nbytes for d in table], "q")
        self.flops = gathered([d.flops for d in table], "q")
        self.pipe_of: list[Pipe] = [table[c].pipe for c in codes]
        self.flag_keys: list[FlagKey] = list(dict.fromkeys(d.flag for d in table if d.flag is not None))
        slot = {key: i for i, key in enumerate(self.flag_keys)}
        row_aux = [d.transfer if d.flag is None else slot[d.flag] for d in table]
        self.aux: list[Transfer | int | None] = [row_aux[c] for c in codes]

    def __len__(self) -> int:
        return len(self.kinds)
