"""The where-the-time-went tables (`npusim.stats`): a kernel worked by hand, then sums on paged attention.

The paged-attention checks compare the tables with the Result and with a second, plain
implementation of the pipes table that paints every cycle of every core's pipes.
"""

import math

import numpy as np
import pandas as pd
import pytest

from isa.asm import parse_program
from npusim import load_preset, simulate, stats
from npusim.results import PIPE_ORDER
from programs import registry

# 910b2's numbers on one coupled core, no dispatch overhead (the first instruction issues at cycle 1)
# and a one-instruction queue per pipe, so that issue stalls as soon as a pipe is busy.
CFG = load_preset("910b2").replace({"chip.coupled": True, "chip.dispatch_cycles": 0,
                                    "frontend.queue_depth": 1})
TINY = """
.program tiny
.kernel k mixed
    move      L0A[0x0000] bf16[16,128] <- L1[0x0000] bf16[16,128]
    set_flag  MTE1 V 0
    vmuls     UB[0x0000] fp32[16,128] <- UB[0x2000] fp32[16,128], 2.0
    wait_flag MTE1 V 0
    vadds     UB[0x4000] fp32[16,128] <- UB[0x0000] fp32[16,128], 1.0
    barrier   V
    set_flag  V S 0
    wait_flag V S 0
    move      L0A[0x2000] bf16[16,128] <- L1[0x1000] bf16[16,128]
    barrier   ALL
"""


@pytest.fixture(scope="module")
def tiny():
    return simulate(parse_program(TINY), CFG, numerics=False)


def test_the_costs_the_tiny_kernel_was_worked_with():
    """The numbers the rows below were worked out from (npusim/costs.py's formulas, 910b2's preset)."""
    move = math.ceil(16 * 128 * 2 / CFG.mte1.l1_to_l0a_bytes_per_cycle)  # 4096 B at 256 B/cycle
    scalar = CFG.vector.scalar
    vmuls = math.ceil(scalar.startup_cycles + 16 * scalar.row_cycles + 8192 / 256 * scalar.repeat_cycles)
    assert (CFG.frontend.issue_cycles, CFG.sync.flag_cycles) == (1, 4)
    assert (move, move + CFG.mte1.latency_cycles) == (16, 44)
    assert (vmuls, vmuls + CFG.vector.latency_cycles) == (61, 69)


# index: issue, issue_stall, start, busy_end, end, busy, waited_on, released_by, wait_cycles
TINY_ROWS = {
    0: (1, 0, 1, 17, 45, 16, "", -1, 0),  # move: 16 cycles on MTE1, lands 28 later
    1: (2, 0, 17, 17, 49, 0, "", -1, 0),  # set_flag MTE1: when MTE1 frees, fires at the move's 45 + 4
    2: (3, 0, 3, 64, 72, 61, "", -1, 0),  # vmuls
    3: (4, 0, 64, 64, 64, 0, "flag", 1, 0),  # V reaches it at 64: the flag is visible since 49
    4: (64, 59, 64, 125, 133, 61, "queue", 3, 59),  # V's one slot holds #3 until it starts at 64
    5: (65, 0, 125, 133, 133, 0, "barrier", 4, 8),  # waits for vadds to land at 133
    6: (125, 59, 133, 133, 137, 0, "queue", 5, 59),  # the slot holds the barrier until 125; fires 133 + 4
    7: (126, 0, 126, 137, 137, 0, "flag", 6, 11),  # on S: the front-end waits for the fire at 137
    8: (138, 0, 138, 154, 182, 16, "", -1, 0),  # issues a cycle after the S wait completes
    9: (139, 0, 139, 182, 182, 0, "barrier", 8, 43),  # barrier ALL: until the move lands at 182
}


def test_tiny_kernel_rows_cycle_by_cycle(tiny):
    frame = stats.instructions_frame(tiny)
    assert list(frame.columns) == list(stats.INSTRUCTION_COLUMNS)
    assert tiny.cycles == 182 and len(frame) == tiny.instructions == 10
    columns = ["issue", "issue_stall", "start", "busy_end", "end", "busy", "waited_on", "released_by",
               "wait_cycles"]
    got = {row.index: tuple(getattr(row, c) for c in columns) for row in frame.itertuples(index=False)}
    assert got == TINY_ROWS
    assert frame["pipe"].tolist() == ["MTE1", "MTE1", "V", "V", "V", "V", "V", "S", "MTE1", "S"]
    assert frame["mnemonic"].tolist()[:4] == ["move", "set_flag", "vmuls", "wait_flag"]
    assert frame["bytes"].tolist() == [4096, 0, 0, 0, 0, 0, 0, 0, 4096, 0]
    assert frame["flops"].tolist() == [0, 0, 2048, 0, 2048, 0, 0, 0, 0, 0]
    assert (frame["core"] == "core0").all() and (frame["task"] == "k").all()
    assert frame["text"].tolist() == [str(i) for i in tiny.program.kernels[0].instructions]


def test_tiny_kernel_pipes_by_hand(tiny):
    pipes = stats.pipes_frame(tiny).set_index("pipe")
    assert list(stats.pipes_frame(tiny).columns) == list(stats.PIPE_COLUMNS)
    assert pipes.index.tolist() == [p.value for p in PIPE_ORDER]  # a coupled core has every pipe
    states = ["busy", "flag_wait", "barrier_wait", "queue_stall", "idle"]
    # S: the wait at #7 (11), barrier ALL (43), issue stalled over [5, 64) and [66, 125) (59 + 59).
    assert pipes.loc["S", states].tolist() == [0, 11, 43, 118, 10]
    # MTE1: free from 17 until #8 starts at 138, 106 of which the front-end stalled.
    assert pipes.loc["MTE1", states].tolist() == [32, 0, 0, 106, 44]
    # V: its own work runs back to back once issued; the barrier holds it 8 cycles.
    assert pipes.loc["V", states].tolist() == [122, 0, 8, 0, 52]
    assert pipes.loc["M", states].tolist() == [0, 0, 0, 0, 182]


def test_tiny_kernel_kinds(tiny):
    kinds = stats.kinds_frame(tiny)
    assert list(kinds.columns) == list(stats.KIND_COLUMNS)
    top = kinds.head(3).to_dict("records")
    assert top == [
        {"mnemonic": "vadds", "pipe": "V", "count": 1, "busy": 61, "mean": 61.0, "share": 0.5, "bytes": 0,
         "flops": 2048},
        {"mnemonic": "vmuls", "pipe": "V", "count": 1, "busy": 61, "mean": 61.0, "share": 0.5, "bytes": 0,
         "flops": 2048},
        {"mnemonic": "move", "pipe": "MTE1", "count": 2, "busy": 32, "mean": 16.0, "share": 1.0,
         "bytes": 8192, "flops": 0},
    ]
    rest = kinds.iloc[3:]
    assert (rest["busy"] == 0).all() and rest["count"].sum() == 6
    assert [(k.mnemonic, k.pipe.value) for k in stats.top_kinds(tiny, 2)] == [("vadds", "V"), ("vmuls", "V")]


def test_to_frame_is_the_instructions_table(tiny):
    pd.testing.assert_frame_equal(tiny.to_frame(), stats.instructions_frame(tiny))
    assert (tiny.to_frame(texts=False)["text"] == "").all()


# --- paged attention: sums against the Result and a second implementation ---------------------------

PA = registry.get("paged-attention")
SMALL = {"batch": 2, "context_len": 300, "head_dim": 64, "block_size": 64}
RUNS = {
    "1block": ("1block", {}),
    "2block": ("2block", {}),
    # Short queues, so that issue stalls often (and waits and barriers stall at issue too).
    "2block, queue_depth 2": ("2block", {"frontend.queue_depth": 2, "chip.dispatch_cycles": 0}),
}


@pytest.fixture(scope="module", params=list(RUNS))
def paged(request):
    variant, overrides = RUNS[request.param]
    config = load_preset("910b2").replace(overrides)
    program = PA.instance({**SMALL, "variant": variant}, config.chip.cube_cores, config).program
    result = simulate(program, config, numerics=False)
    return result, stats.instructions_frame(result)


def test_one_row_per_executed_instruction_and_busy_sums(paged):
    result, frame = paged
    assert len(frame) == result.instructions == sum(len(t.kernel.instructions) for t in result.traces)
    busy = {p.value: c for p, c in result.busy.items() if c}
    assert frame[frame["busy"] > 0].groupby("pipe")["busy"].sum().to_dict() == busy
    kinds = stats.kinds_frame(result)
    assert kinds[kinds["busy"] > 0].groupby("pipe")["busy"].sum().to_dict() == busy
    assert kinds["count"].sum() == result.instructions
    shares = kinds.groupby("pipe")["share"].sum()
    assert np.allclose(shares[list(busy)], 1.0)
    pipes = stats.pipes_frame(result)
    assert pipes[pipes["busy"] > 0].groupby("pipe")["busy"].sum().to_dict() == busy


def test_what_released_each_instruction(paged):
    result, frame = paged
    depth = result.config.frontend.queue_depth
    for trace in result.traces:
        rows = frame[frame["task"] == trace.task].set_index("index")
        waits = rows[rows["mnemonic"] == "wait_flag"]
        assert (waits["waited_on"] == "flag").all()
        assert waits["released_by"].tolist() == trace.released_by[waits.index].tolist()
        assert (rows.loc[waits["released_by"], "mnemonic"] == "set_flag").all()
        assert (waits["wait_cycles"] == waits["end"] - waits["start"]).all()
        barriers = rows[rows["waited_on"] == "barrier"]
        assert (barriers["wait_cycles"] == barriers["end"] - barriers["start"]).all()
        assert (rows.loc[barriers["released_by"], "end"].to_numpy() == barriers["end"].to_numpy()).all()
        assert (barriers["released_by"] < barriers.index).all()
        assert (rows.loc[rows["pipe"] == "S", "issue_stall"] == 0).all()
        for i, row in rows[rows["issue_stall"] > 0].iterrows():
            same_pipe = rows.index[rows["pipe"] == row["pipe"]].tolist()
            freed = same_pipe[same_pipe.index(i) - depth]  # the slot's previous holder
            assert row["issue"] == rows.loc[freed, "start"]
            if row["waited_on"] == "queue":
                assert row["released_by"] == freed and row["wait_cycles"] == row["issue_stall"]


def _painted(result, frame) -> dict[tuple[str, str], list[int]]:
    """Per (core, pipe): cycles busy, flag_wait, barrier_wait, queue_stall, idle, by painting each cycle."""
    out, cycle = {}, np.arange(result.cycles)
    for core, rows in frame.groupby("core"):
        paint = {p.value: np.zeros(result.cycles, dtype=np.int8) for p in PIPE_ORDER}
        for r in rows.itertuples():
            held = (1, r.start, r.busy_end) if r.busy else (2, r.start, r.end) if r.mnemonic == "wait_flag" \
                else (3, r.start, r.end) if r.mnemonic == "barrier" else None
            if held:
                assert not paint[r.pipe][held[1]:held[2]].any()  # one thing at a time per pipe
                paint[r.pipe][held[1]:held[2]] = held[0]
        for _, task in rows.groupby("task"):
            stalled = np.zeros(result.cycles, dtype=bool)
            for r in task[task["issue_stall"] > 0].itertuples():
                stalled[r.issue - r.issue_stall:r.issue] = True
            assert not paint["S"][stalled].any()
            paint["S"][stalled] = 4
            for pipe, mine in task.groupby("pipe"):  # a pipe with an instruction still to start waits
                paint[pipe][(cycle < mine["start"].max()) & stalled & (paint[pipe] == 0)] = 4
        for pipe, cycles in paint.items():
            out[(core, pipe)] = [int((cycles == k).sum()) for k in (1, 2, 3, 4, 0)]
    return out


def test_pipes_split_every_cycle_of_every_core_pipe(paged):
    result, frame = paged
    pipes = stats.pipes_frame(result)
    states = ["busy", "flag_wait", "barrier_wait", "queue_stall", "idle"]
    assert (pipes["cycles"] == result.cycles).all() and (pipes[states] >= 0).all().all()
    assert (pipes[states].sum(axis=1) == pipes["cycles"]).all()
    painted = _painted(result, frame)
    has = result.pipes_by_core()
    assert len(pipes) == sum(len(p) for p in has.values())
    for row in pipes.itertuples(index=False):
        assert [getattr(row, s) for s in states] == painted[(row.core, row.pipe)], (row.core, row.pipe)


def test_write_round_trips_through_csv(tiny, tmp_path):
    folder = tmp_path / "new" / "stats"
    paths = stats.write(tiny, folder)
    assert [p.name for p in paths] == ["instructions.csv", "kinds.csv", "pipes.csv"]
    back = [pd.read_csv(p, keep_default_na=False) for p in paths]
    pd.testing.assert_frame_equal(back[0], stats.instructions_frame(tiny))
    pd.testing.assert_frame_equal(back[1], stats.kinds_frame(tiny))
    pd.testing.assert_frame_equal(back[2], stats.pipes_frame(tiny))


def test_check_directory_refuses_what_cannot_hold_the_tables(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "d" / "kinds.csv").mkdir(parents=True)
    assert stats.check_directory(tmp_path / "fresh" / "deeper") == tmp_path / "fresh" / "deeper"
    assert not (tmp_path / "fresh").exists()  # checking makes nothing
    assert stats.check_directory(tmp_path) == tmp_path
    with pytest.raises(stats.StatsError, match="is a file; give a directory"):
        stats.check_directory(tmp_path / "file")
    with pytest.raises(stats.StatsError, match="file, so the directory cannot be made"):
        stats.check_directory(tmp_path / "file" / "sub")
    with pytest.raises(stats.StatsError, match="kinds.csv is a directory"):
        stats.check_directory(tmp_path / "d")
    assert issubclass(stats.StatsError, ValueError)
