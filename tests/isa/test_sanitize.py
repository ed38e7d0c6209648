"""The sanitizer (isa.sanitize) on minimal kernels, one per kind of finding, and the orders it accepts.

Each kernel is small enough to work its happens-before out by hand from docs/isa.md §3.14; the
comments say which rule orders (or fails to order) the two instructions.
"""

import pytest

from isa import Program, Task
from isa.asm import parse_program
from isa.order import order
from isa.sanitize import Kind, sanitize, sanitize_kernel

HEAD = """
.program p
.tensor x fp32[16,64] input
.tensor y fp32[16,64] output
.kernel k
"""


def findings(body: str):
    return sanitize(parse_program(HEAD + body))


def pairs(found):
    return [(f.kind, f.what, f.first.index, f.second.index if f.second else None) for f in found]


def test_a_correct_load_scale_store_has_no_findings():
    assert findings("""
        load UB[0x0000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
        set_flag MTE2 V 0
        wait_flag MTE2 V 0
        vmuls UB[0x1000] fp32[16,64] <- UB[0x0000] fp32[16,64], 2.0
        set_flag V MTE3 0
        wait_flag V MTE3 0
        store GM:y[0:16, 0:64] fp32 <- UB[0x1000] fp32[16,64]
    """) == []


def test_a_missing_hand_off_between_pipes_is_a_read_after_write_race_with_its_fix():
    found = findings("""
        load UB[0x0000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
        vmuls UB[0x1000] fp32[16,64] <- UB[0x0000] fp32[16,64], 2.0
        set_flag V MTE3 0
        wait_flag V MTE3 0
        store GM:y[0:16, 0:64] fp32 <- UB[0x1000] fp32[16,64]
    """)
    assert pairs(found) == [(Kind.RACE, "read after write", 0, 1)]
    f = found[0]
    assert f.where == "UB bytes 0x0000..0x1000"  # 16 x 64 fp32 = 4096 bytes
    assert f.fix == "add `set_flag MTE2 V e` after #0 and `wait_flag MTE2 V e` before #1 (a free event e)"
    assert "vmuls" in f.second.text and f.first.pipe.value == "MTE2" and f.task == "k"


def test_same_pipe_read_after_write_needs_a_barrier():
    body = """
        vdup UB[0x0000] fp32[16,64] <- 1.0
        {fence}
        vmuls UB[0x1000] fp32[16,64] <- UB[0x0000] fp32[16,64], 2.0
    """
    found = findings(body.format(fence=""))
    assert pairs(found) == [(Kind.RACE, "read after write", 0, 1)]
    assert found[0].fix == "add `barrier V` between #0 and #1"
    assert findings(body.format(fence="barrier V")) == []
    assert findings(body.format(fence="barrier ALL")) == []


def test_same_pipe_write_after_read_is_ordered_and_write_after_write_is_not():
    # vmuls #1 reads A when it starts; vdup #2 starts later on V, so its write comes after that read.
    assert findings("""
        vdup UB[0x0000] fp32[16,64] <- 1.0
        barrier V
        vmuls UB[0x1000] fp32[16,64] <- UB[0x0000] fp32[16,64], 2.0
        vdup UB[0x0000] fp32[16,64] <- 3.0
    """) == []
    # Two loads into one tile: results land when each completes, in no guaranteed order.
    assert pairs(findings("""
        load UB[0x0000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
        load UB[0x0000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
    """)) == [(Kind.RACE, "write after write", 0, 1)]


def test_overwriting_a_buffer_still_being_read_is_a_write_after_read_race():
    # The store (MTE3) reads UB[0x1000]; the vdup (V) overwrites it with no MTE3 -> V hand-off, and
    # nothing orders it after the load's write either.
    body = """
        load UB[0x1000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
        set_flag MTE2 MTE3 0
        wait_flag MTE2 MTE3 0
        store GM:y[0:16, 0:64] fp32 <- UB[0x1000] fp32[16,64]
        {free}
        vdup UB[0x1000] fp32[16,64] <- 2.0
    """
    assert pairs(findings(body.format(free=""))) == [(Kind.RACE, "write after write", 0, 4),
                                                     (Kind.RACE, "write after read", 3, 4)]
    # MTE3 -> V after the store: the store has read the tile, and the load (before it) has landed.
    assert findings(body.format(free="set_flag MTE3 V 1\n        wait_flag MTE3 V 1")) == []


def test_accumulating_mmads_into_one_tile_need_no_barrier():
    cube = """
        .program p
        .kernel k
            mmad L0C[0x0000] fp32[16,16] <- L0A[0x0000] fp16[16,16], L0B[0x0000] fp16[16,16]  init
            mmad L0C[0x0000] fp32[16,16] <- L0A[0x0000] fp16[16,16], L0B[0x0000] fp16[16,16]  acc
            {fence}
            mmad L0C[0x0000] fp32[16,16] <- L0A[0x0000] fp16[16,16], L0B[0x0000] fp16[16,16]  init
    """
    found = sanitize(parse_program(cube.format(fence="")))
    # L0A and L0B were never written: initcheck names the first reader of each once.
    assert {(f.kind, f.first.index) for f in found if f.kind is Kind.INIT} == {(Kind.INIT, 0)}
    # acc after init into the same tile: the accumulate rule. init after acc overwrites the tile the
    # acc is still adding into: a write after write the rule does not cover.
    assert [p for p in pairs(found) if p[0] is Kind.RACE] == [(Kind.RACE, "write after write", 1, 2)]
    assert [f for f in sanitize(parse_program(cube.format(fence="barrier M"))) if f.kind is Kind.RACE] == []


def test_reading_bytes_nothing_wrote_is_an_initcheck_finding():
    found = findings("""
        load UB[0x0000] fp32[8,64] <- GM:x[0:8, 0:64] fp32
        set_flag MTE2 V 0
        wait_flag MTE2 V 0
        vmuls UB[0x1000] fp32[16,64] <- UB[0x0000] fp32[16,64], 2.0
    """)
    # The load filled the first 8 rows (2048 bytes); the vmuls reads 16.
    assert pairs(found) == [(Kind.INIT, "read of bytes nothing in the task wrote", 3, None)]
    assert found[0].where == "UB bytes 0x0800..0x1000"


def test_a_flag_set_and_never_waited_is_a_synccheck_finding():
    found = findings("""
        vdup UB[0x0000] fp32[16,64] <- 1.0
        set_flag V MTE3 0
        set_flag V MTE3 1
        wait_flag V MTE3 1
        store GM:y[0:16, 0:64] fp32 <- UB[0x0000] fp32[16,64]
    """)
    assert pairs(found) == [(Kind.SYNC, "flag set and never waited on", 1, None)]
    assert found[0].where == "flag (V, MTE3, 0)"


def test_waits_that_wait_for_each_other_are_a_synccheck_finding():
    # MTE2 waits for V's set, which comes after V's own wait for MTE2's set: neither can start.
    found = findings("""
        wait_flag V MTE2 0
        set_flag MTE2 V 0
        wait_flag MTE2 V 0
        set_flag V MTE2 0
    """)
    assert [(f.kind, f.first.index) for f in found] == [(Kind.SYNC, 0)]
    assert "can never start" in found[0].what


def test_a_wait_may_come_before_its_set_in_the_listing():
    # V waits (#0) for the set MTE2 makes later in the listing (#2): the load happens before the read.
    assert findings("""
        wait_flag MTE2 V 0
        vmuls UB[0x1000] fp32[16,64] <- UB[0x0000] fp32[16,64], 2.0
        load UB[0x0000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
        set_flag MTE2 V 0
    """) == []


def test_a_wait_on_the_scalar_pipe_orders_everything_issued_after_it():
    assert findings("""
        load UB[0x0000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
        set_flag MTE2 S 0
        wait_flag MTE2 S 0
        vmuls UB[0x1000] fp32[16,64] <- UB[0x0000] fp32[16,64], 2.0
        set_flag V S 0
        wait_flag V S 0
        store GM:y[0:16, 0:64] fp32 <- UB[0x1000] fp32[16,64]
    """) == []


def test_hand_offs_are_transitive():
    # MTE2 -> V, then V -> MTE3: the store is ordered after the load (through V's vmuls), so it may
    # read the loaded tile without an MTE2 -> MTE3 flag of its own.
    assert findings("""
        load UB[0x0000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
        set_flag MTE2 V 0
        wait_flag MTE2 V 0
        vmuls UB[0x1000] fp32[16,64] <- UB[0x0000] fp32[16,64], 2.0
        set_flag V MTE3 0
        wait_flag V MTE3 0
        store GM:y[0:16, 0:64] fp32 <- UB[0x0000] fp32[16,64]
    """) == []


def test_gm_written_and_read_back_in_one_task_needs_a_hand_off():
    program = """
        .program p
        .tensor x fp32[16,64] input
        .tensor w fp32[16,64] workspace
        .kernel k
            load UB[0x0000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
            set_flag MTE2 MTE3 0
            wait_flag MTE2 MTE3 0
            store GM:w[0:16, 0:64] fp32 <- UB[0x0000] fp32[16,64]
            {handoff}
            load UB[0x1000] fp32[8,64] <- GM:w[4:12, 0:64] fp32
    """
    found = sanitize(parse_program(program.format(handoff="")))
    assert pairs(found) == [(Kind.RACE, "read after write", 3, 4)]
    assert found[0].where == "GM:w[4:12, 0:64]"
    handoff = "set_flag MTE3 MTE2 1\n            wait_flag MTE3 MTE2 1"
    assert sanitize(parse_program(program.format(handoff=handoff))) == []


def test_a_kernel_shared_by_tasks_is_analysed_once_and_names_every_task():
    program = parse_program(HEAD + """
        load UB[0x0000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
        vmuls UB[0x1000] fp32[16,64] <- UB[0x0000] fp32[16,64], 2.0
    """)
    kernel = program.tasks[0].kernel
    many = Program("p", program.tensors, tuple(Task.of(kernel, name=f"t{i}") for i in range(3)))
    found = sanitize(many, cores=["aiv0", "aiv1", "aiv2"])
    assert len(found) == 1 and found[0].tasks == ("t0", "t1", "t2")
    assert found[0].cores == ("aiv0", "aiv1", "aiv2")
    assert found[0].task == "t0" and found[0].core == "aiv0"


def test_happens_before_counts_completed_prefixes_per_pipe():
    instrs = parse_program(HEAD + """
        load UB[0x0000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
        load UB[0x1000] fp32[16,64] <- GM:x[0:16, 0:64] fp32
        set_flag MTE2 V 0
        wait_flag MTE2 V 0
        vmuls UB[0x2000] fp32[16,64] <- UB[0x0000] fp32[16,64], 2.0
    """).tasks[0].kernel.instructions
    o = order(instrs)
    assert o.before(0, 4) and o.before(1, 4)  # the set fires after both loads
    assert not o.before(0, 1)  # same pipe: the second load may start before the first completes
    assert not o.before(4, 0) and o.stuck == ()


@pytest.mark.parametrize("text", ["barrier MTE2", "barrier S"])
def test_a_barrier_on_another_pipe_orders_nothing_here(text):
    found = sanitize_kernel(parse_program(HEAD + f"""
        vdup UB[0x0000] fp32[16,64] <- 1.0
        {text}
        vmuls UB[0x1000] fp32[16,64] <- UB[0x0000] fp32[16,64], 2.0
    """).tasks[0].kernel)
    assert pairs(found) == [(Kind.RACE, "read after write", 0, 2)]


def test_a_flag_set_again_before_its_wait_took_the_first_set_is_a_synccheck_finding():
    # V sets (V, MTE3, 0) twice; nothing orders MTE3's first wait (#4) before the second set (#3):
    # a run raises SyncError whenever the store pipe is slower than V.
    body = """
        vdup UB[0x0000] fp32[16,64] <- 1.0
        set_flag V MTE3 0
        vdup UB[0x1000] fp32[16,64] <- 2.0
        {back_wait}
        set_flag V MTE3 0
        wait_flag V MTE3 0
        {back_set}
        store GM:y[0:16, 0:64] fp32 <- UB[0x0000] fp32[16,64]
        wait_flag V MTE3 0
        store GM:y[16:32, 0:64] fp32 <- UB[0x1000] fp32[16,64]
    """
    found = findings(body.format(back_wait="", back_set=""))
    assert pairs(found) == [(Kind.SYNC, "flag set again before its previous set is taken", 4, 3)]
    assert found[0].fix.startswith("add `set_flag MTE3 V e` after #4 and `wait_flag MTE3 V e` before #3")
    # MTE3 -> V after the first wait, waited before the second set: ordered.
    assert findings(body.format(back_wait="wait_flag MTE3 V 1", back_set="set_flag MTE3 V 1")) == []
