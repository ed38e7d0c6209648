"""Numbers too large for what they stand for are AsmErrors at the line and column that wrote them."""

import pytest

from isa.asm import parse_instruction, parse_program
from isa.errors import AsmError
from isa.program import Tensor
from isa.types import DType

KERNEL = ".kernel a\n    barrier ALL\n"


def _error(text: str) -> AsmError:
    with pytest.raises(AsmError) as info:
        parse_program(text, "k.s")
    return info.value


def test_a_dimension_of_2_to_the_64_names_the_line_and_column():
    err = _error(".program p\n.tensor q bf16[16,18446744073709551616] input\n" + KERNEL)
    assert (err.line, err.column) == (2, 19)
    assert "18446744073709551616 is out of range for a tensor dimension" in str(err)


def test_a_tensor_of_2_to_the_63_bytes_or_more_is_refused_at_its_declaration():
    # 16 * 10**18 bf16 elements: 3.2e19 bytes, past 2**63 = 9.22e18 although each dimension fits
    err = _error(".tensor q bf16[16,1000000000000000000] input\n" + KERNEL)
    assert (err.line, err.column) == (1, 15)
    assert "tensor q bf16[16, 1000000000000000000] is 32000000000000000000 bytes" in str(err)
    # one byte less than 2**63 is still a (hopeless, but describable) tensor: the host-memory check
    # of a numerics run refuses it, and a timing-only run needs no array at all
    program = parse_program(".tensor q int8[9223372036854775807] input\n" + KERNEL)
    assert program.tensor("q").nbytes == 2**63 - 1


def test_the_python_form_refuses_it_too():
    with pytest.raises(ValueError, match="32000000000000000000 bytes"):
        Tensor("q", DType.BF16, (16, 10**18))


@pytest.mark.parametrize("line, column", [
    ("load L1[0x0] bf16[16,16] <- GM:q[0:1" + "0" * 400 + ", 0:16] bf16", 36),
    ("load L1[0x0] bf16[16,16] <- GM:q[0:16:" + "9" * 30 + ", 0:16] bf16", 39),
    ("load L1[0x" + "F" * 17 + "] bf16[16,16] <- GM:q[0:16, 0:16] bf16", 9),
    ("set_flag MTE2 MTE1 -9223372036854775809", 20),
])
def test_an_integer_outside_int64_is_out_of_range(line, column):
    with pytest.raises(AsmError, match=r"is out of range for .*-2\*\*63 \.\. 2\*\*63 - 1") as info:
        parse_instruction(line)
    assert info.value.column == column


def test_a_hex_scalar_past_the_largest_double_is_refused_not_an_overflow():
    with pytest.raises(AsmError, match="past the largest double"):
        parse_instruction("vdup UB[0x0] fp32[16,16] <- 0x" + "F" * 300)
    # a decimal that large rounds to inf, as C and Python read it
    assert parse_instruction("vdup UB[0x0] fp32[16,16] <- 1e400").value == float("inf")


def test_row_count_of_a_strided_range_is_exact_for_int64_bounds():
    # ceil((2**63 - 1) / 3): 2**63 - 1 = 3 * 3074457345618258602 + 1; floats would round it
    gm = parse_instruction("load L1[0x0] int8[16,16] <- GM:q[0:9223372036854775807:3, 0:16] int8").src
    assert gm.rows == 3074457345618258603
    assert parse_instruction("load L1[0x0] int8[16,16] <- GM:q[0:17:4, 0:16] int8").src.rows == 5
