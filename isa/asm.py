"""The text form of the ISA: every instruction prints to one line and parses back to an equal object.

A file holds directives and instructions, one per line; `#` starts a comment:

    .kernel tile_matmul cube                  # starts a kernel (a task): name, core kind (optional)
    .tensor q bf16[16,128] input              # a GM tensor: name, dtype[shape], role
        load     L1[0x0000] bf16[16,128] <- GM:q[0:16, 0:128] bf16
        set_flag MTE2 MTE1 0

Operands: a tile is `SPACE[offset] dtype[rows,cols]`; a GM region is `GM:name[r0:r1, c0:c1] dtype`
or, with a row step, `GM:name[r0:r1:step, c0:c1] dtype` (Python slice meaning). docs/isa.md lists
every instruction's syntax. Each instruction's layout is one template, used both to print and to
parse, so the two cannot drift apart: `_DATA` holds one per mnemonic, `_FAMILIES` one per family
class (every op of its enum shares it); `SYNTAX` lists the mnemonics of each class. This module
also makes `str(instruction)` that line, so that isa.instructions, pure data, does not import its
printer.
"""

from __future__ import annotations

import difflib
import math
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from isa.errors import AsmError
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
from isa.program import INT64_LIMIT, CoreKind, Kernel, Program, Role, Task, Tensor
from isa.regions import GmRegion, Tile
from isa.types import DType, Pipe, Space

_INT64_RANGE = "integers lie within -2**63 .. 2**63 - 1"

# --- lexer ------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<num>[+-]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|[+-](?:inf|nan)\b)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<punct><-|[\[\]:,=.])"
    r")"
)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # "num", "name", "punct" or "end"
    text: str
    col: int  # 1-based


class _Line:
    """Tokens of one line and a cursor; every `expect_*` raises AsmError at the offending column."""

    def __init__(self, text: str, lineno: int, source: str):
        self.text, self.lineno, self.source = text, lineno, source
        self.toks: list[_Tok] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _TOKEN.match(stripped, pos)
            if m is None or m.end() == pos:
                bad = len(stripped) - len(stripped[pos:].lstrip()) + 1
                self.fail(f"unexpected character {stripped[bad - 1]!r}", bad)
            kind = m.lastgroup or "punct"
            self.toks.append(_Tok(kind, m.group(kind), m.start(kind) + 1))
            pos = m.end()
        self.toks.append(_Tok("end", "end of line", len(stripped) + 1))
        self.i = 0

    def fail(self, message: str, col: int | None = None) -> NoReturn:
        raise AsmError(message, self.lineno, col or self.peek().col, self.source, self.text.rstrip())

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def expected(self, what: str) -> NoReturn:
        tok = self.peek()
        found = tok.text if tok.kind == "end" else repr(tok.text)
        self.fail(f"expected {what}, found {found}", tok.col)

    def punct(self, symbol: str) -> None:
        if self.peek().text != symbol or self.peek().kind != "punct":
            self.expected(f"'{symbol}'")
        self.next()

    def name(self, what: str) -> str:
        if self.peek().kind != "name":
            self.expected(what)
        return self.next().text

    def integer(self, what: str) -> int:
        """An int64 (every integer operand is an offset, a size, an index or an id)."""
        tok = self.peek()
        if tok.kind != "num":
            self.expected(what)
        digits = tok.text.lstrip("+-")
        digits = digits[2:] if digits[:2].lower() == "0x" else digits
        if len(digits.lstrip("0")) > 20:  # no int64 has more digits; spares int() very long text
            self.fail(f"{tok.text[:24]}... is out of range for {what}: {_INT64_RANGE}", tok.col)
        try:
            value = int(tok.text, 0)
        except ValueError:  # a fraction or an exponent, where an integer belongs
            self.expected(what)
        if not -INT64_LIMIT <= value < INT64_LIMIT:
            self.fail(f"{value} is out of range for {what}: {_INT64_RANGE}", tok.col)
        self.next()
        return value

    def number(self, what: str) -> float:
        tok = self.peek()
        if tok.kind == "name" and tok.text in ("inf", "nan"):
            self.next()
            return float(tok.text)
        if tok.kind != "num":
            self.expected(what)
        if not tok.text.lower().lstrip("+-").startswith("0x"):
            self.next()
            return float(tok.text)  # past the largest double a decimal rounds to inf, as in C
        value = int(tok.text, 16)
        if abs(value) > sys.float_info.max:  # int and float compare exactly in Python
            self.fail(f"{tok.text[:24]}... is past the largest double ({sys.float_info.max:g}); "
                      f"write inf if intended", tok.col)
        self.next()
        return float(value)

    def choice(self, options: dict[str, Any], what: str) -> Any:
        tok = self.peek()
        if tok.kind != "name" or tok.text not in options:
            self.expected(f"{what} ({' | '.join(options)})")
        return options[self.next().text]

    def done(self) -> None:
        if self.peek().kind != "end":
            self.expected("end of line")


# --- operand kinds: one printer and one parser each ---------------------------------------------

_SPACES = {s.value: s for s in Space if s is not Space.GM}
_DTYPES = {d.value: d for d in DType}
_PIPES = {p.value: p for p in Pipe}
_ROLES = {r.value: r for r in Role}
_NO_L2 = "nol2"  # the per-tensor L2 cache hint: read-once data that should bypass L2
_KINDS = {k.value: k for k in CoreKind}


def _fmt_tile(t: Tile) -> str:
    sign = "-" if t.offset < 0 else ""  # never valid, but must still print and parse for its error
    return f"{t.space.value}[{sign}0x{abs(t.offset):04X}] {t.dtype.value}[{t.shape[0]},{t.shape[1]}]"


def _parse_shape(ln: _Line, what: str) -> tuple[int, ...]:
    ln.punct("[")
    dims = [ln.integer(what)]
    while ln.peek().text == ",":
        ln.next()
        dims.append(ln.integer(what))
    ln.punct("]")
    return tuple(dims)


def _parse_tile_after_space(ln: _Line, space: Space) -> Tile:
    ln.punct("[")
    offset = ln.integer("a byte offset such as 0x0400")
    ln.punct("]")
    dtype = ln.choice(_DTYPES, "a dtype")
    col = ln.peek().col
    shape = _parse_shape(ln, "a tile dimension")
    if len(shape) != 2:
        ln.fail(f"a tile shape has 2 dimensions [rows,cols], found {len(shape)}", col)
    return Tile(space, offset, dtype, (shape[0], shape[1]))


def _parse_tile(ln: _Line) -> Tile:
    if ln.peek().text not in _SPACES:
        ln.expected(f"a tile such as UB[0x0000] fp32[16,128] (space {' | '.join(_SPACES)})")
    return _parse_tile_after_space(ln, _SPACES[ln.next().text])


def _fmt_gm(g: GmRegion) -> str:
    step = f":{g.row_step}" if g.row_step != 1 else ""
    rows = f"{g.row}:{g.last_row + 1}{step}"
    return f"GM:{g.tensor}[{rows}, {g.col}:{g.col + g.cols}] {g.dtype.value}"


def _parse_gm_after_space(ln: _Line) -> GmRegion:
    ln.punct(":")
    name = ln.name("a GM tensor name")
    ln.punct("[")
    row_col = ln.peek().col
    row = ln.integer("a first row")
    ln.punct(":")
    stop = ln.integer("a row stop")
    step = 1
    if ln.peek().text == ":":
        ln.next()
        col = ln.peek().col
        step = ln.integer("a row step")
        if step < 1:
            ln.fail(f"row step must be at least 1, found {step}", col)
    ln.punct(",")
    col_col = ln.peek().col
    c0 = ln.integer("a first column")
    ln.punct(":")
    c1 = ln.integer("a column stop")
    ln.punct("]")
    if stop <= row:
        ln.fail(f"empty row range {row}:{stop}; the stop must exceed the start", row_col)
    if c1 <= c0:
        ln.fail(f"empty column range {c0}:{c1}; the stop must exceed the start", col_col)
    dtype = ln.choice(_DTYPES, "the tensor's dtype")
    return GmRegion(name, row, c0, -(-(stop - row) // step), c1 - c0, dtype, step)  # ceil, exact


def _parse_gm(ln: _Line) -> GmRegion:
    if ln.peek().text != "GM":
        ln.expected("a GM region such as GM:q[0:16, 0:128] bf16")
    ln.next()
    return _parse_gm_after_space(ln)


def _fmt_dest(d: Tile | GmRegion) -> str:
    return _fmt_gm(d) if isinstance(d, GmRegion) else _fmt_tile(d)


def _parse_dest(ln: _Line) -> Tile | GmRegion:
    return _parse_gm(ln) if ln.peek().text == "GM" else _parse_tile(ln)


def _fmt_pipe_or_all(p: Pipe | None) -> str:
    return "ALL" if p is None else p.value


@dataclass(frozen=True)
class _Kind:
    fmt: Callable[[Any], str]
    parse: Callable[[_Line], Any]


TILE = _Kind(_fmt_tile, _parse_tile)
GM = _Kind(_fmt_gm, _parse_gm)
DEST = _Kind(_fmt_dest, _parse_dest)
FLOAT = _Kind(lambda x: repr(float(x)), lambda ln: ln.number("a number such as 0.125 or -inf"))
INT = _Kind(str, lambda ln: ln.integer("an integer"))
PIPE = _Kind(lambda p: p.value, lambda ln: ln.choice(_PIPES, "a pipe"))
PIPE_OR_ALL = _Kind(_fmt_pipe_or_all, lambda ln: ln.choice({**_PIPES, "ALL": None}, "a pipe or ALL"))


# --- templates ----------------------------------------------------------------------------------
# A template item is one of: ("<-",) or (",",) literal; (field, kind) operand; ("key=", field, kind)
# keyword operand printed `key=value`; ("flag", field, word) a trailing word present when true;
# ("choice", field, {word: value}) a trailing word that is always printed.


@dataclass(frozen=True)
class _Template:
    cls: type[Instruction]
    fixed: dict[str, Any]
    items: tuple[tuple[Any, ...], ...]


_DATA = {
    "load": (Load, (("dst", TILE), ("<-",), ("src", GM), ("flag", "transpose", "transpose"))),
    "move": (Move, (("dst", TILE), ("<-",), ("src", TILE), ("flag", "transpose", "transpose"))),
    "mmad": (Mmad, (("dst", TILE), ("<-",), ("a", TILE), (",",), ("b", TILE),
                    ("choice", "accumulate", {"init": False, "acc": True}))),
    "fixpipe": (Fixpipe, (("dst", DEST), ("<-",), ("src", TILE))),
    "store": (Store, (("dst", GM), ("<-",), ("src", TILE))),
    "vcast": (Cast, (("dst", TILE), ("<-",), ("src", TILE))),
    "vdup": (Dup, (("dst", TILE), ("<-",), ("value", FLOAT))),
    "vfillpad": (FillPad, (("dst", TILE), ("<-",), ("src", TILE), (",",),
                           ("key=", "valid", "valid_cols", INT), (",",), ("key=", "pad", "value", FLOAT))),
    "set_flag": (SetFlag, (("src", PIPE), ("dst", PIPE), ("event", INT))),
    "wait_flag": (WaitFlag, (("src", PIPE), ("dst", PIPE), ("event", INT))),
    "barrier": (Barrier, (("target", PIPE_OR_ALL),)),
}
_FAMILIES: tuple[tuple[type[Instruction], Iterable[Any], tuple[tuple[Any, ...], ...]], ...] = (
    (VecBinary, BinaryOp, (("dst", TILE), ("<-",), ("src0", TILE), (",",), ("src1", TILE))),
    (VecScalar, ScalarOp, (("dst", TILE), ("<-",), ("src", TILE), (",",), ("scalar", FLOAT))),
    (VecUnary, UnaryOp, (("dst", TILE), ("<-",), ("src", TILE))),
    (RowReduce, ReduceOp, (("dst", TILE), ("<-",), ("src", TILE))),
    (RowExpand, RowExpandOp, (("dst", TILE), ("<-",), ("src", TILE), (",",), ("col", TILE))),
)

_TEMPLATES: dict[str, _Template] = {mn: _Template(cls, {}, items) for mn, (cls, items) in _DATA.items()}
for _cls, _ops, _items in _FAMILIES:
    for _op in _ops:
        _TEMPLATES[_op.value] = _Template(_cls, {"op": _op}, _items)

MNEMONICS: tuple[str, ...] = tuple(_TEMPLATES)
SYNTAX: dict[type[Instruction], tuple[str, ...]] = {}
"""Each instruction class and the mnemonics it prints as and parses from (a family: one per op)."""
for _mnemonic, _template in _TEMPLATES.items():
    SYNTAX[_template.cls] = (*SYNTAX.get(_template.cls, ()), _mnemonic)


def format_instruction(instr: Instruction) -> str:
    """The one-line text of an instruction, e.g. `set_flag M FIX 0`."""
    template = _TEMPLATES[instr.mnemonic]
    out = [f"{instr.mnemonic:<8}"]
    sep = " "
    for item in template.items:
        head = item[0]
        if head == "<-":
            out.append(" <-")
        elif head == ",":
            out.append(",")
        elif head == "key=":
            out.append(f" {item[1]}={item[3].fmt(getattr(instr, item[2]))}")
        elif head == "flag":
            if getattr(instr, item[1]):
                out.append(f"  {item[2]}")
        elif head == "choice":
            value = getattr(instr, item[1])
            out.append("  " + next(w for w, v in item[2].items() if v == value))
        else:
            out.append(sep + item[1].fmt(getattr(instr, head)))
    return "".join(out)


# Every instruction prints as its assembly line. The printer installs itself on the base class so
# that isa.instructions, pure data, need not import it (isa/__init__ imports this module).
Instruction.__str__ = format_instruction  # type: ignore[method-assign,assignment]


def _parse_operands(ln: _Line, template: _Template) -> Instruction:
    fields = dict(template.fixed)
    for item in template.items:
        head = item[0]
        if head in ("<-", ","):
            ln.punct(head)
        elif head == "key=":
            word = ln.peek()
            if word.text != item[1]:
                ln.expected(f"'{item[1]}='")
            ln.next()
            ln.punct("=")
            fields[item[2]] = item[3].parse(ln)
        elif head == "flag":
            fields[item[1]] = ln.peek().text == item[2]
            if fields[item[1]]:
                ln.next()
        elif head == "choice":
            fields[item[1]] = ln.choice(item[2], "a mode")
        else:
            fields[head] = item[1].parse(ln)
    ln.done()
    return template.cls(**fields)


def _parse_instruction_line(ln: _Line) -> Instruction:
    tok = ln.peek()
    mnemonic = ln.name("an instruction")
    template = _TEMPLATES.get(mnemonic)
    if template is None:
        close = difflib.get_close_matches(mnemonic, MNEMONICS, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        ln.fail(f"unknown instruction '{mnemonic}'; {hint}valid: {', '.join(MNEMONICS)}", tok.col)
    return _parse_operands(ln, template)


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0]


def parse_instruction(line: str, lineno: int = 1, source: str = "<asm>") -> Instruction:
    """Parse one instruction line (a trailing comment is allowed); AsmError if it is malformed."""
    return _parse_instruction_line(_Line(_strip_comment(line), lineno, source))


# --- files: directives, kernels, tensors --------------------------------------------------------


def format_tensor(t: Tensor) -> str:
    hint = "" if t.l2 else f" {_NO_L2}"
    return f".tensor {t.name} {t.dtype.value}[{','.join(map(str, t.shape))}] {t.role.value}{hint}"


def format_program(program: Program) -> str:
    """The text of a whole program: its tensors, then each kernel and its instructions.

    Parsing the text gives back an equal program. The text names a task by its kernel, so a task
    named otherwise (many tasks running kernels of one name) is a ValueError: see `format_listing`.
    """
    for task in program.tasks:
        if task.name != task.kernel.name:
            raise ValueError(f"task {task.name} runs kernel {task.kernel.name}: the text form names a "
                             f"task by its kernel, so the two names must be equal")
    return format_listing(program)


def format_listing(program: Program) -> str:
    """The text of a program task by task, for reading: each `.kernel` is named after its task.

    A task whose kernel has another name gets a comment with that name. For a program whose tasks
    all have their kernel's name this is `format_program`'s text; for any other, the text parses to
    the same tasks and instructions, with each kernel named after its task.
    """
    lines = [f".program {program.name}"]
    lines += [format_tensor(t) for t in program.tensors]
    for task in program.tasks:
        comment = f"  # kernel {task.kernel.name}" if task.name != task.kernel.name else ""
        lines.append(f".kernel {task.name} {task.kind.value}{comment}")
        lines += ["    " + format_instruction(i) for i in task.kernel.instructions]
    return "\n".join(lines) + "\n"


def _parse_tensor(ln: _Line) -> Tensor:
    name = ln.name("a tensor name")
    dtype = ln.choice(_DTYPES, "a dtype")
    col = ln.peek().col
    shape = _parse_shape(ln, "a tensor dimension")
    if any(d <= 0 for d in shape):
        ln.fail(f"tensor dimensions must be positive, found {list(shape)}", col)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes >= INT64_LIMIT:  # numpy could not even describe the array
        ln.fail(f"tensor {name} {dtype.value}{list(shape)} is {nbytes} bytes; an array holds less "
                f"than 2**63 bytes", col)
    role = ln.choice(_ROLES, "a role")
    l2 = True
    if ln.peek().kind != "end":
        l2 = ln.choice({_NO_L2: False}, "the L2 cache hint or end of line")
    ln.done()
    return Tensor(name, dtype, shape, role, l2)


def parse_program(text: str, source: str = "<asm>") -> Program:
    """Parse a program's text: `.program`, `.tensor` and `.kernel` directives and instructions.

    The program's name is its `.program` directive, else the source file's stem. Raises AsmError
    at the first malformed line.
    """
    name = Path(source).stem if source != "<asm>" else ""
    tensors: list[Tensor] = []
    kernels: list[tuple[str, CoreKind | None, list[Instruction]]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        body = _strip_comment(raw)
        if not body.strip():
            continue
        ln = _Line(body, lineno, source)
        if ln.peek().text == ".":
            ln.next()
            directive = ln.choice({"program": "program", "tensor": "tensor", "kernel": "kernel"},
                                  "a directive")
            if directive == "tensor":
                tensor = _parse_tensor(ln)
                if any(t.name == tensor.name for t in tensors):
                    ln.fail(f"tensor {tensor.name} is declared twice", ln.toks[1].col)
                tensors.append(tensor)
            else:
                label = ln.name(f"a {directive} name")
                kind = None
                if directive == "kernel" and ln.peek().kind != "end":
                    kind = ln.choice(_KINDS, "the kind of core that runs it")
                ln.done()
                if directive == "program":
                    name = label
                else:
                    kernels.append((label, kind, []))
            continue
        if not kernels:
            ln.fail("an instruction before any `.kernel NAME` directive; start a kernel first")
        kernels[-1][2].append(_parse_instruction_line(ln))
    if not kernels:
        raise AsmError("no `.kernel NAME` directive: the file declares no kernel", 1, 1, source)
    tasks = tuple(Task.of(Kernel(k, tuple(body)), kind=kind) for k, kind, body in kernels)
    try:
        return Program(name or kernels[0][0], tuple(tensors), tasks)
    except ValueError as err:  # e.g. two kernels with one name
        raise AsmError(str(err), 1, 1, source) from None


def load_program(path: str | Path) -> Program:
    """Read and parse an assembly file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise AsmError(f"not a UTF-8 text file (byte {err.start}: {err.reason})", 1, 1, str(path)) from None
    return parse_program(text, str(path))
