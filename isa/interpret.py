"""The functional interpreter: runs a program in program order on numpy buffers, with no timing.

It is the numeric reference of the timing engine: for a correctly synchronised program both give
bit-identical GM tensors, because both step instructions through `execute`'s read, compute, write.
Sync instructions do nothing here, since program order already orders everything.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from isa import semantics
from isa.errors import IsaError
from isa.instructions import Instruction
from isa.limits import CoreLimits
from isa.memory import CoreMemory, GlobalMemory, MachineState
from isa.program import Program


def execute(instr: Instruction, state: MachineState) -> None:
    """Apply one instruction to `state`: read its sources, compute, write its destination."""
    writes = instr.writes
    if writes:  # sync instructions write nothing and compute nothing
        # Written at once, so a result that is a view of its sources needs no copy (numpy copies
        # through a temporary when source and destination overlap).
        state.write(writes[0], semantics.compute(instr, [state.view(r) for r in instr.reads]))


def result(instr: Instruction, state: MachineState) -> np.ndarray:
    """The value `instr` computes now, kept intact for a caller that writes it later.

    The timing engine computes at an instruction's start and writes at its completion. Sources are
    read as views; only a result that is itself a view of them (a load, move, store or copy passes
    its source through) is copied, so it keeps its value if the sources change meanwhile.
    """
    value = semantics.compute(instr, [state.view(r) for r in instr.reads])
    return value if value.flags.owndata else value.copy()


def interpret(
    program: Program, inputs: Mapping[str, np.ndarray], limits: CoreLimits
) -> dict[str, np.ndarray]:
    """Every GM tensor of `program` after running its kernels in order, each on a fresh core.

    Kernels run on different cores and share only GM, so each starts with poisoned on-chip buffers
    of `limits`' capacities. The program should have passed `isa.check`; this only guards buffer and
    tensor bounds. Raises IsaError for bad inputs (see GlobalMemory) and for an instruction that
    leaves its buffer or tensor, naming the kernel, the instruction's index and its text.
    """
    gm = GlobalMemory(program.tensors, inputs)
    with semantics.numeric_context():
        for kernel in program.kernels:
            state = MachineState(CoreMemory(limits), gm)
            for index, instr in enumerate(kernel.instructions):
                try:
                    execute(instr, state)
                except IsaError as err:
                    raise IsaError(f"kernel {kernel.name}, instruction {index} `{instr}`: {err}") from err
    return gm.tensors()
