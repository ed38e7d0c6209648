"""The program format: GM tensor declarations and kernels (instruction lists), pure data."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass

from isa.instructions import Instruction
from isa.types import DType


class Role(enum.Enum):
    """What a GM tensor is for: filled by the caller, read back by the caller, or scratch."""

    INPUT = "input"
    OUTPUT = "output"
    WORKSPACE = "workspace"


@dataclass(frozen=True)
class Tensor:
    """A named GM tensor; instructions address it as the matrix [prod(shape[:-1]), shape[-1]]."""

    name: str
    dtype: DType
    shape: tuple[int, ...]
    role: Role = Role.INPUT

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"tensor name {self.name!r} must be an identifier (letters, digits, _)")
        if not self.shape or any(d <= 0 for d in self.shape):
            raise ValueError(f"tensor {self.name}: shape {list(self.shape)} needs positive dimensions")

    @property
    def matrix_shape(self) -> tuple[int, int]:
        return (math.prod(self.shape[:-1]), self.shape[-1])

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


@dataclass(frozen=True)
class Kernel:
    """A named instruction list that one core runs in program order."""

    name: str
    instructions: tuple[Instruction, ...]

    def __len__(self) -> int:
        return len(self.instructions)


@dataclass(frozen=True)
class Program:
    """GM tensors and the kernels that run over them, in program order."""

    name: str
    tensors: tuple[Tensor, ...]
    kernels: tuple[Kernel, ...]

    def __post_init__(self) -> None:
        names = [t.name for t in self.tensors]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"program {self.name}: tensor names declared twice: {', '.join(dupes)}")

    @classmethod
    def single(cls, kernel: Kernel, tensors: Iterable[Tensor]) -> Program:
        """A program of one kernel."""
        return cls(kernel.name, tuple(tensors), (kernel,))

    def tensor(self, name: str) -> Tensor:
        for t in self.tensors:
            if t.name == name:
                return t
        valid = ", ".join(t.name for t in self.tensors) or "none"
        raise KeyError(f"program {self.name} has no GM tensor {name!r}; declared: {valid}")

    def tensors_of(self, role: Role) -> tuple[Tensor, ...]:
        return tuple(t for t in self.tensors if t.role is role)
