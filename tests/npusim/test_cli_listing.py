"""`--listing` prints the program the run is about to time: built for the preset it runs on, each
kernel once, so a program of thousands of tasks lists a few kernels, not every task."""

from collections import defaultdict

from isa.asm import format_listing, parse_program
from npusim import load_preset
from npusim.cli import main
from npusim.cli.runner import kernel_listing
from programs import registry

SMALL = {"batch": 1, "head_dim": 64, "block_size": 64, "context_len": 300}
ARGV = ["run", "paged-attention", "--batch", "1", "--head-dim", "64", "--block-size", "64",
        "--context-len", "300", "--no-numerics", "--listing"]


def _program(values, preset="910b2"):
    config = load_preset(preset)
    return registry.get("paged-attention").instance(values, config.chip.cube_cores, config).program


def _by_kernel(program):
    """Task names per kernel name, in program order: the grouping worked out apart from the CLI."""
    groups = defaultdict(list)
    for task in program.tasks:
        groups[task.kernel.name].append(task)
    return groups


def test_listing_paged_attention_lists_each_kernel_once(capsys):
    """It raised ValueError once, then printed every task: the 2-block program's 8 tasks run 7 kernels
    (online_update twice), so 7 are listed and the second online_update task is named."""
    assert main(ARGV) == 0
    out = capsys.readouterr().out
    program = _program(SMALL)
    groups = _by_kernel(program)
    text = out[out.index(".program"):]
    listed = parse_program(text[: text.index("\n# kernel")])  # it parses back: the assembler judges it
    assert [t.name for t in listed.tasks] == [tasks[0].name for tasks in groups.values()]
    for task in listed.tasks:
        original = next(t for t in program.tasks if t.name == task.name)
        assert task.kernel.instructions == original.kernel.instructions
    assert "# 8 tasks run 7 kernels: each kernel listed once" in out
    assert ("# kernel online_update runs in 2 tasks (operands may differ): up_r0h0s0 (listed), up_r0h0s1"
            in out)


def test_the_full_program_is_listed_in_a_few_hundred_lines():
    """The default 2048-task program: 4 kernels, each other task named up to 8 per kernel."""
    program = _program({})
    text = kernel_listing(program)
    groups = _by_kernel(program)
    assert len(groups) == 4 and text.count("\n.kernel ") == 4
    kernel_lines = sum(len(tasks[0].kernel.instructions) for tasks in groups.values())
    assert len(text.splitlines()) == 1 + 1 + len(program.tensors) + 4 + kernel_lines + 4
    assert "# kernel qk_matmul_2b runs in 512 tasks" in text and "... (503 more)" in text


def test_a_program_of_distinct_kernels_is_listed_whole():
    """tile-matmul (one task) is listed exactly as the assembler prints it."""
    config = load_preset("910b2")
    program = registry.get("tile-matmul").instance({}, config.chip.cube_cores, config).program
    assert kernel_listing(program) == format_listing(program)
