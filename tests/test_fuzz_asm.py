"""Fuzzing the assembler: any text is a program or a project error (IsaError), never another exception.

The texts are the shipped kernels (programs/*.s) with lines deleted, duplicated or swapped and tokens
replaced by junk (huge, negative and fractional numbers, unknown mnemonics and spaces, inverted
ranges, random unicode), and lines of random token soup. Loading (`isa.asm.parse_program`) and the
static checks (`isa.check.check_program`) must either accept the text or raise IsaError; a
ValueError, OverflowError, KeyError or MemoryError from inside them would be a bug that a user's
typo reaches as a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isa.asm import MNEMONICS, parse_program
from isa.check import check_program
from isa.errors import IsaError
from npusim.config import load_preset

KERNELS = sorted((Path(__file__).parents[1] / "programs").glob("*.s"))
SOURCES = [path.read_text(encoding="utf-8") for path in KERNELS]
LIMITS = load_preset("910b2").limits_by_kind()

# Tokens as the assembler's lexer splits them: numbers, names, punctuation (kept apart so that a
# replacement lands on one operand and leaves the rest of the line valid).
_TOKEN = re.compile(r"0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?|[A-Za-z_][A-Za-z0-9_]*|<-|\S")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?")

NUMBERS = st.one_of(
    st.sampled_from(["0", "-1", "-16", "1.5", "1e400", "-1e400", "inf", "-inf", "nan", "0x", "0x" + "F" * 300,
                     str(2**63), str(2**64), str(2**63 - 1), str(10**30), "1" + "0" * 400, "9" * 5000]),
    st.integers(-(2**70), 2**70).map(str),
    st.integers(0, 2**70).map(hex),
    st.integers(300, 400).map(lambda n: "9" * n),  # past the largest float
    st.integers(256, 300).map(lambda n: "0x" + "F" * n),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

JUNK = st.one_of(
    NUMBERS,
    st.sampled_from([
        "+nan", "GM", "L0A", "L0B", "L0C", "L1", "UB", "XX", "GM:", "ALL", "input", "output", "workspace",
        "nol2",
        "int8", "int32", "fp16", "bf16", "fp32", "fp64", "init", "acc", "transpose", "valid=", "pad=",
        "mmadd", "vadd", "nop", ".tensor", ".kernel", ".program", ".bogus", "[", "]", ":", ",", "=", "<-",
        "[0:0, 0:0]", "[5:1, 0:16]", "[0:16:0, 0:16]", "[0:16:-1, 0:16]", "[-16:0, 0:16]", "[]", "[,]",
        "é", "\u200b", "\x00", "\t", "#", "∞", "ｍｍａｄ", "\ufeff", "\U0001f600",
    ]),
    st.sampled_from(MNEMONICS),
    st.text(max_size=6),
)


def _spans(pattern: re.Pattern[str], line: str) -> list[tuple[int, int]]:
    return [m.span() for m in pattern.finditer(line.split("#", 1)[0])]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A shipped kernel after a few random line and token edits."""
    lines = draw(st.sampled_from(SOURCES)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "token", "token", "number",
                                     "number"]))
        i = draw(st.integers(0, len(lines) - 1))
        if edit == "delete" and len(lines) > 1:
            del lines[i]
        elif edit == "duplicate":
            lines.insert(i, lines[i])
        elif edit == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif edit == "insert":
            lines.insert(i, draw(soup_line))
        else:
            spans = _spans(_NUMBER if edit == "number" else _TOKEN, lines[i])
            if spans:
                start, end = draw(st.sampled_from(spans))
                lines[i] = lines[i][:start] + draw(NUMBERS if edit == "number" else JUNK) + lines[i][end:]
    return "\n".join(lines) + "\n"


soup_line = st.lists(JUNK, max_size=12).map(" ".join)
soup = st.lists(soup_line, min_size=1, max_size=8).map("\n".join)


def _load_and_check(text: str) -> None:
    try:
        program = parse_program(text, "fuzz.s")
        check_program(program, LIMITS)
    except IsaError:
        pass  # the project's own error: one line to the user, exit 2


FAST = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(mutated())
def test_a_mutated_kernel_is_a_program_or_an_isa_error(text):
    _load_and_check(text)


@FAST
@given(soup)
def test_token_soup_is_an_isa_error(text):
    _load_and_check(text)


@FAST
@given(st.sampled_from(SOURCES), st.text(min_size=1, max_size=40), st.integers(0, 10**6))
def test_random_unicode_anywhere_is_a_program_or_an_isa_error(source, junk, where):
    at = where % (len(source) + 1)
    _load_and_check(source[:at] + junk + source[at:])


EXTREMES = ["0", "-1", str(2**63), str(2**64), "9" * 400, "-" + "9" * 400, "0x" + "F" * 300, "1e400"]


def _number_positions() -> list[tuple[str, int, tuple[int, int]]]:
    """(text, line, span) of each numeric operand position of the shipped kernels, once per
    (mnemonic or directive, operand index): the random edits above reach a given position rarely."""
    seen, out = set(), []
    for text in SOURCES:
        for i, line in enumerate(text.splitlines()):
            words = line.split()
            for k, span in enumerate(_spans(_NUMBER, line)):
                key = (words[0] if words else "", k)
                if key not in seen:
                    seen.add(key)
                    out.append((text, i, span))
    return out


@pytest.mark.parametrize("value", EXTREMES)
def test_an_extreme_number_in_any_operand_is_a_program_or_an_isa_error(value):
    for text, i, (start, end) in _number_positions():
        lines = text.splitlines()
        lines[i] = lines[i][:start] + value + lines[i][end:]
        _load_and_check("\n".join(lines))


def test_the_shipped_kernels_pass():
    assert len(KERNELS) >= 3
    for path, text in zip(KERNELS, SOURCES, strict=True):
        check_program(parse_program(text, str(path)), LIMITS)
