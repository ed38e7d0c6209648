"""`format_listing`: the text of any program, also one whose tasks share a kernel's name.

`format_program` round-trips exactly and so refuses a task named otherwise than its kernel (the
text names a task by its kernel); programs built in Python (paged attention: one `qk_matmul_2b`
kernel per step, each a task of its own name) need the listing, which `--listing` prints.
"""

import pytest

from isa import Barrier, DType, GmRegion, Kernel, Load, Pipe, Program, Role, Space, Task, Tensor, Tile
from isa.asm import format_listing, format_program, parse_program
from isa.cores import CoreKind

TENSORS = (Tensor("x", DType.FP32, (32, 8)), Tensor("y", DType.FP32, (32, 8), Role.OUTPUT))


def _load(row):
    return Load(Tile(Space.UB, 0, DType.FP32, (16, 8)), GmRegion("x", row, 0, 16, 8, DType.FP32))


def _shared_names():
    """Two tasks running different bodies under one kernel name, as program builders make them."""
    return Program("p", TENSORS, (
        Task("step0", Kernel("step", (_load(0), Barrier(Pipe.MTE2))), CoreKind.VECTOR),
        Task("step1", Kernel("step", (_load(16),)), CoreKind.VECTOR),
    ))


def test_a_listing_names_each_kernel_after_its_task_and_keeps_its_name_in_a_comment():
    program = _shared_names()
    with pytest.raises(ValueError, match="task step0 runs kernel step"):
        format_program(program)
    text = format_listing(program)
    assert text.splitlines() == [
        ".program p",
        ".tensor x fp32[32,8] input",
        ".tensor y fp32[32,8] output",
        ".kernel step0 vector  # kernel step",
        "    load     UB[0x0000] fp32[16,8] <- GM:x[0:16, 0:8] fp32",
        "    barrier  MTE2",
        ".kernel step1 vector  # kernel step",
        "    load     UB[0x0000] fp32[16,8] <- GM:x[16:32, 0:8] fp32",
    ]
    back = parse_program(text)  # valid assembly: the same tasks, each kernel named after its task
    assert [(t.name, t.kind, t.kernel.instructions) for t in back.tasks] == [
        (t.name, t.kind, t.kernel.instructions) for t in program.tasks]


def test_a_program_the_text_form_names_exactly_lists_as_format_program_prints_it():
    program = Program("p", TENSORS, (Task.of(Kernel("k", (_load(0),))),))
    assert format_listing(program) == format_program(program)
