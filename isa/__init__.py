"""The npusim instruction set: what an instruction is and what it computes, with no timing."""

import isa.asm  # noqa: F401  installs str(instruction) = its assembly line, before any instruction exists
from isa.instructions import (
    Barrier,
    BinaryOp,
    Cast,
    Dup,
    FillPad,
    Fixpipe,
    Instruction,
    Load,
    Mmad,
    Move,
    ReduceOp,
    RowExpand,
    RowExpandOp,
    RowReduce,
    ScalarOp,
    SetFlag,
    Store,
    UnaryOp,
    VecBinary,
    VecScalar,
    VecUnary,
    WaitFlag,
)
from isa.limits import CoreLimits
from isa.program import CoreKind, Kernel, Program, Role, Task, Tensor
from isa.regions import GmRegion, Region, Tile
from isa.types import DType, Pipe, Space

__all__ = [
    "Barrier", "BinaryOp", "Cast", "CoreKind", "CoreLimits", "DType", "Dup", "FillPad", "Fixpipe", "GmRegion",
    "Instruction", "Kernel", "Load", "Mmad", "Move", "Pipe", "Program", "ReduceOp", "Region", "Role",
    "RowExpand", "RowExpandOp", "RowReduce", "ScalarOp", "SetFlag", "Space", "Store", "Task", "Tensor",
    "Tile", "UnaryOp", "VecBinary", "VecScalar", "VecUnary", "WaitFlag",
]
