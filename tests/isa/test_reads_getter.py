"""`reads` of the fixed-operand instructions is a per-class C getter (`isa.instructions._reads_getter`).

It must return what the plain definition returns: the `_sources` fields, in order, as a tuple of
the very objects, for every instruction class (those that write their own `reads` keep it).
"""

from hypothesis import given, settings

from isa import instructions as ins
from tests.isa.test_asm import instructions


def plain_reads(instr: ins.Instruction) -> tuple:
    """The definition the getter replaces: the `_sources` fields by name, in order."""
    return tuple(getattr(instr, name) for name in instr._sources)  # type: ignore[attr-defined]


def test_every_fixed_class_but_mmad_gets_the_getter():
    fixed = [cls for cls in ins.ALL_CLASSES if issubclass(cls, ins._Fixed)]
    assert len(fixed) == 13
    for cls in fixed:
        assert isinstance(vars(cls).get("reads"), property), cls.__name__


@settings(max_examples=600, deadline=None)
@given(instructions)
def test_reads_equal_the_plain_definition(instr):
    got = instr.reads
    assert type(got) is tuple
    if isinstance(instr, ins.Mmad):
        assert got == ((instr.a, instr.b, instr.dst) if instr.accumulate else (instr.a, instr.b))
    elif isinstance(instr, ins._Fixed):
        want = plain_reads(instr)
        assert len(got) == len(want) and all(g is w for g, w in zip(got, want, strict=True))
    else:
        assert got == ()
    assert instr.writes == ((instr.dst,) if isinstance(instr, ins._Fixed) else ())
