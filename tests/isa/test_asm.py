"""The text form: exact round trip for every instruction, and errors that point at the mistake."""

import dataclasses
import enum
import math
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isa import instructions as ins
from isa.asm import format_instruction, format_program, parse_instruction, parse_program
from isa.errors import AsmError
from isa.program import CoreKind, Kernel, Program, Role, Task, Tensor
from isa.regions import GmRegion, Tile
from isa.types import DType, Pipe, Space

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
dims = st.integers(1, 4096)
tiles = st.builds(
    Tile,
    st.sampled_from([s for s in Space if s is not Space.GM]),
    st.integers(-(1 << 10), 1 << 21),  # negative offsets are invalid but must still round trip
    st.sampled_from(DType),
    st.tuples(dims, dims),
)
gm_regions = st.builds(
    GmRegion, names, st.integers(0, 1 << 20), st.integers(0, 1 << 16), dims, dims,
    st.sampled_from(DType), st.integers(1, 64),
)
floats = st.floats(allow_nan=False, width=64)  # NaN never equals itself; tested on its own below

_BY_TYPE: dict[object, st.SearchStrategy] = {
    Tile: tiles,
    GmRegion: gm_regions,
    Tile | GmRegion: st.one_of(tiles, gm_regions),
    bool: st.booleans(),
    float: floats,
    int: st.integers(0, 100_000),
    Pipe: st.sampled_from(Pipe),
    Pipe | None: st.one_of(st.none(), st.sampled_from(Pipe)),
}


def _strategy(cls: type) -> st.SearchStrategy:
    """Instances of an instruction class with every field drawn from its annotated type."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        kwargs[f.name] = st.sampled_from(t) if isinstance(t, type) and issubclass(t, enum.Enum) \
            and t is not Pipe else _BY_TYPE[t]
    return st.builds(cls, **kwargs)


instructions = st.one_of([_strategy(cls) for cls in ins.ALL_CLASSES])


@settings(max_examples=600, deadline=None)
@given(instructions)
def test_every_instruction_round_trips_exactly(instr):
    text = format_instruction(instr)
    assert "\n" not in text
    assert parse_instruction(text) == instr
    assert str(instr) == text


@settings(max_examples=50, deadline=None)
@given(st.lists(instructions, min_size=1, max_size=12), names, st.sampled_from(CoreKind))
def test_program_text_round_trips(body, name, kind):
    tensors = (Tensor("q", DType.BF16, (2, 16, 128)), Tensor("o", DType.FP32, (32, 128), Role.OUTPUT))
    tasks = (Task.of(Kernel("k0", tuple(body)), kind=kind), Task.of(Kernel("k1", tuple(body[:1]))))
    program = Program(name, tensors, tasks)
    assert parse_program(format_program(program)) == program


def test_kernel_kind_is_inferred_when_the_directive_omits_it():
    text = ".tensor x fp32[16,8] input\n.kernel v\n    load UB[0] fp32[16,8] <- GM:x[0:16, 0:8] fp32\n" \
           ".kernel c cube\n    barrier ALL\n"
    program = parse_program(text)
    assert [t.kind for t in program.tasks] == [CoreKind.VECTOR, CoreKind.CUBE]
    assert ".kernel v vector" in format_program(program)


def test_nan_scalar_prints_and_parses():
    t = Tile(Space.UB, 0, DType.FP32, (16, 8))
    back = parse_instruction(format_instruction(ins.Dup(t, math.nan)))
    assert isinstance(back, ins.Dup) and math.isnan(back.value)


def test_issue_example_lines_parse_to_the_expected_objects():
    q = Tile(Space.L1, 0, DType.BF16, (16, 128))
    assert parse_instruction("load    L1[0x0000] bf16[16,128] <- GM:query[0:16, 0:128] bf16") == ins.Load(
        q, GmRegion("query", 0, 0, 16, 128, DType.BF16))
    assert parse_instruction("mmad L0C[0] fp32[16,128] <- L0A[0] bf16[16,128], L0B[512] bf16[128,128] acc") \
        == ins.Mmad(Tile(Space.L0C, 0, DType.FP32, (16, 128)), Tile(Space.L0A, 0, DType.BF16, (16, 128)),
                    Tile(Space.L0B, 512, DType.BF16, (128, 128)), accumulate=True)
    assert parse_instruction("set_flag M FIX 0  # cube done") == ins.SetFlag(Pipe.M, Pipe.FIX, 0)
    assert parse_instruction("barrier ALL") == ins.Barrier(None)


def test_strided_gm_rows_use_python_slice_meaning():
    # One KV head (of 4) of block 3 in a [blocks, 128, 4, 64] cache: rows 3*128*4+h, step 4.
    region = parse_instruction("load UB[0] bf16[128,64] <- GM:kc[1538:2050:4, 0:64] bf16").src
    assert (region.row, region.rows, region.row_step, region.last_row) == (1538, 128, 4, 2046)
    assert list(range(1538, 2050, 4)) == list(range(region.row, region.last_row + 1, region.row_step))


@pytest.mark.parametrize(
    ("line", "col", "expected"),
    [
        ("lod L1[0x0] bf16[1,1] <- GM:q[0:1, 0:1] bf16", 1, "unknown instruction 'lod'; did you mean"),
        ("load L1[0x0000] bf16[16] <- GM:q[0:16, 0:128] bf16", 21, "2 dimensions"),
        ("load L1[0x0000] bf16[16,128] <- GM:q[0:16 0:128] bf16", 43, "expected ','"),
        ("load L1[0x0000] bf16[16,128] <- GM:q[16:0, 0:128] bf16", 38, "empty row range 16:0"),
        ("load L1[0x0000] bf16[16,128] <- UB[0x0] bf16[16,128]", 33, "expected a GM region"),
        ("load XY[0x0000] bf16[16,128] <- GM:q[0:16, 0:128] bf16", 6, "expected a tile"),
        ("load L1[0x0000] bf17[16,128] <- GM:q[0:16, 0:128] bf16", 17, "expected a dtype (fp16 | bf16"),
        ("mmad L0C[0] fp32[1,1] <- L0A[0] bf16[1,1], L0B[0] bf16[1,1]", 60, "mode (init | acc)"),
        ("set_flag M FIX", 15, "expected an integer, found end of line"),
        ("set_flag M FOO 1", 12, "expected a pipe (S | MTE1"),
        ("vadd UB[0] fp32[1,1] <- UB[0] fp32[1,1], UB[0] fp32[1,1] extra", 58, "expected end of line"),
        ("vadd UB[0] fp32[1,1] <- UB[0] fp32[1,1] $", 41, "unexpected character '$'"),
        ("vfillpad UB[0] fp32[1,8] <- UB[0] fp32[1,8], pad=1, valid=0", 46, "expected 'valid='"),
    ],
)
def test_malformed_line_names_line_column_and_expectation(line, col, expected):
    with pytest.raises(AsmError) as err:
        parse_instruction(line, lineno=7, source="k.s")
    assert (err.value.line, err.value.column) == (7, col)
    assert expected in str(err.value)
    assert str(err.value).startswith(f"k.s:7:{col}: ")


def test_file_errors_name_the_line_in_the_file():
    text = (".kernel k\n.tensor q bf16[16,128] input\n\n    # comment\n"
            "    load L1[0] bf16[16,128] <- GM:q[0:16, 0:128]\n")
    with pytest.raises(AsmError) as err:
        parse_program(text, "demo.s")
    assert (err.value.line, err.value.column) == (5, 49)
    assert "expected the tensor's dtype" in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vdup UB[0] fp32[1,1] <- 0\n", "before any `.kernel NAME`"),
        (".tensor q bf16[16,128] input\n", "declares no kernel"),
        (".kernel k\n.tensor q bf16[16,0] input\n", "dimensions must be positive"),
        (".kernel k\n.tensor q bf16[16] input\n.tensor q fp32[4] output\n", "declared twice"),
        (".kernel k\n.tensor q bf16[16] scratch\n", "expected a role (input | output | workspace)"),
        (".kern k\n", "expected a directive (program | tensor | kernel)"),
    ],
)
def test_file_structure_errors(text, message):
    with pytest.raises(AsmError, match="demo.s:") as err:
        parse_program(text, "demo.s")
    assert message in str(err.value)


def test_program_name_defaults_to_file_stem_and_directive_wins():
    body = ".kernel k\n    barrier ALL\n"
    assert parse_program(body, "dir/tile.s").name == "tile"
    assert parse_program(".program main\n" + body, "dir/tile.s").name == "main"


def test_the_l2_cache_hint_round_trips_and_a_misspelt_one_names_the_choice():
    text = (".program p\n.tensor kv bf16[4,64] input nol2\n.tensor out fp32[4,64] output\n"
            ".kernel k\n    set_flag MTE2 MTE1 0\n    wait_flag MTE2 MTE1 0\n")
    program = parse_program(text)
    assert [t.l2 for t in program.tensors] == [False, True]
    assert parse_program(format_program(program)) == program
    expected = r"2:29: expected the L2 cache hint or end of line \(nol2\), found 'l3'"
    with pytest.raises(AsmError, match=expected):
        parse_program(".program p\n.tensor kv bf16[4,64] input l3\n.kernel k\n")
