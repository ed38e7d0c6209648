"""The full-queue deadlock of docs/model.md §2.5: a full pipe queue behind a blocked wait_flag.

With frontend.queue_depth = 2, MTE2 blocks on `wait_flag V MTE2 0`, two loads fill its queue, and
the third load cannot issue; the front-end issues in program order, so the `set_flag V MTE2 0`
that would release MTE2 never issues either. With room in the queue the same kernel runs.
"""

import pytest

from isa.asm import parse_program
from npusim import DeadlockError, load_preset, simulate

KERNEL = parse_program("""
    .program full_queue
    .tensor x bf16[48,128] input
    .kernel k
        wait_flag V MTE2 0
        load     UB[0x0000] bf16[16,128] <- GM:x[0:16, 0:128] bf16
        load     UB[0x2000] bf16[16,128] <- GM:x[16:32, 0:128] bf16
        load     UB[0x4000] bf16[16,128] <- GM:x[32:48, 0:128] bf16
        vcopy    UB[0x6000] bf16[16,128] <- UB[0x0000] bf16[16,128]
        set_flag V MTE2 0
""")
CFG = load_preset("910b2")


def test_a_full_queue_behind_a_blocked_wait_deadlocks_and_names_the_front_end_and_the_pipe():
    with pytest.raises(DeadlockError) as err:
        simulate(KERNEL, CFG.replace({"frontend.queue_depth": 2}), numerics=False)
    # The message of docs/model.md §2.5. The wait_flag issues at cycle 200 (dispatch) + 1 (issue)
    # and takes MTE2 at once; the front-end then issues without events until it stops, so 201 is the
    # last event. A vector kernel runs on the first AIV.
    assert str(err.value).splitlines() == [
        "deadlock at cycle 201: no core can advance",
        "core aiv0, kernel k:",
        "  front-end (S) waits on issue of instruction 3 "
        "`load     UB[0x4000] bf16[16,128] <- GM:x[32:48, 0:128] bf16`: the MTE2 queue is full",
        "  pipe MTE2 blocked at instruction 0 `wait_flag V MTE2 0`",
        "  flags: (V -> MTE2, event 0): set 0x, waited 0x, waited on, never set",
    ]


def test_with_room_in_the_queue_the_loads_wait_for_the_flag_and_finish():
    t = simulate(KERNEL, CFG.replace({"frontend.queue_depth": 3}), numerics=False).traces[0]
    # Issue one a cycle from 201: the vcopy (instruction 4) at 205 starts on an idle V and holds it
    # for startup 21 + 16 rows x 0 + 4096/256 = 16 repeats x 1 = 37 cycles, done 8 later; the set_flag
    # fires at max(242, 250) + flag_cycles 4 = 254 and releases MTE2. Then three loads of 4096 B into
    # UB, ceil(4096 / 124) = 34 cycles each back to back, the last one landing 180 cycles after its bytes.
    vcopy_busy_end = 205 + 21 + 16
    fire = max(vcopy_busy_end, vcopy_busy_end + 8) + 4
    assert (t.start[4], t.busy_end[4], t.end[4]) == (205, vcopy_busy_end, vcopy_busy_end + 8)
    assert t.end[0] == fire and t.released_by[0] == 5
    assert list(t.start[1:4]) == [fire, fire + 34, fire + 2 * 34]
    assert t.last_cycle == fire + 3 * 34 + 180
