"""The program format: GM tensor declarations and kernels (instruction lists), pure data."""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from isa.cores import CoreKind
from isa.instructions import Instruction
from isa.types import DType


class Role(enum.Enum):
    """What a GM tensor is for: filled by the caller, read back by the caller, or scratch."""

    INPUT = "input"
    OUTPUT = "output"
    WORKSPACE = "workspace"


INT64_LIMIT = 1 << 63
"""Integer operands and tensor sizes in bytes lie below this: numpy sizes its arrays in int64."""


@dataclass(frozen=True)
class Tensor:
    """A named GM tensor; instructions address it as the matrix [prod(shape[:-1]), shape[-1]]."""

    name: str
    dtype: DType
    shape: tuple[int, ...]
    role: Role = Role.INPUT
    l2: bool = True  # the per-tensor L2 cache hint: False keeps read-once data out of L2 (it bypasses it)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"tensor name {self.name!r} must be an identifier (letters, digits, _)")
        if not self.shape or any(d <= 0 for d in self.shape):
            raise ValueError(f"tensor {self.name}: shape {list(self.shape)} needs positive dimensions")
        if self.nbytes >= INT64_LIMIT:
            raise ValueError(f"tensor {self.name}: shape {list(self.shape)} of {self.dtype.value} is "
                             f"{self.nbytes} bytes; an array holds less than 2**63 bytes")

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
class Task:
    """A kernel bound to the kind of core that runs it; the unit the chip's scheduler dispatches."""

    name: str
    kernel: Kernel
    kind: CoreKind

    @classmethod
    def of(cls, kernel: Kernel, name: str | None = None, kind: CoreKind | None = None) -> Task:
        """A task running `kernel`, named after it and of the kind it needs unless told otherwise."""
        return cls(name or kernel.name, kernel, kind or CoreKind.of(kernel))


@dataclass(frozen=True)
class Program:
    """GM tensors and the tasks that run over them, in program order.

    Tasks that touch overlapping GM regions run in program order (see `isa.deps`); the rest may
    run at once on different cores.
    """

    name: str
    tensors: tuple[Tensor, ...]
    tasks: tuple[Task, ...]

    def __post_init__(self) -> None:
        for what, items in (("tensor", self.tensors), ("task", self.tasks)):
            counts = Counter(item.name for item in items)  # programs have thousands of tasks
            dupes = sorted(n for n, c in counts.items() if c > 1)
            if dupes:
                raise ValueError(f"program {self.name}: {what} names used twice: {', '.join(dupes)}")

    @classmethod
    def single(cls, kernel: Kernel, tensors: Iterable[Tensor], kind: CoreKind | None = None) -> Program:
        """A program of one task running `kernel`."""
        return cls(kernel.name, tuple(tensors), (Task.of(kernel, kind=kind),))

    @property
    def kernels(self) -> tuple[Kernel, ...]:
        return tuple(t.kernel for t in self.tasks)

    def tensor(self, name: str) -> Tensor:
        for t in self.tensors:
            if t.name == name:
                return t
        valid = ", ".join(t.name for t in self.tensors) or "none"
        raise KeyError(f"program {self.name} has no GM tensor {name!r}; declared: {valid}")

    def tensors_of(self, role: Role) -> tuple[Tensor, ...]:
        return tuple(t for t in self.tensors if t.role is role)
