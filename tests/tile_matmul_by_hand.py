"""programs/tile_matmul.s on 910b2, 910b3 and 310p, worked by hand from the cost formulas (model.md §3.1).

The independent expectation for tests of what the views of a run (CLI text, JSON record, timeline,
bounds, sweep rows) say about it. Numbers from npusim/presets/910b2.toml; 910b3.toml has the same
per-core numbers (rates, latencies, cube, dispatch, flags), so the same figures; 310p.toml's differ
where the *_310P names below say.
"""

from math import ceil

DISPATCH, ISSUE, FLAG = 200, 1, 4  # chip.dispatch_cycles, frontend.issue_cycles, sync.flag_cycles
FIRST = DISPATCH + ISSUE  # load q issues and starts here

LOAD_Q = ceil(16 * 128 * 2 / 160)  # 4096 B GM -> L1 at 160 B/cycle: ceil(25.6) = 26
LOAD_K = ceil(128 * 128 * 2 / 160)  # 32768 B: ceil(204.8) = 205
MOVE_Q = 16 * 128 * 2 // 256  # L1 -> L0A at 256 B/cycle: 16
MOVE_K = 128 * 128 * 2 // 128  # L1 -> L0B at 128 B/cycle: 256
MMAD = 6 + ceil(16 / 16) * ceil(128 / 16) * ceil(128 / 16)  # startup 6 + 1*8*8 bf16 fractals at 1 cycle: 70
FIXPIPE = ceil(16 * 128 * 4 / 120)  # 8192 B L0C -> GM at 120 B/cycle: ceil(68.27) = 69

# One dependent chain: the k load, the k move, the mmad and the fixpipe each hand over after their
# latency (mte2 180, mte1 28, cube 16, fixpipe 100), each hand-off through a flag (3 of them).
# 201 + 26 + 205 + 180 = 612 the loads land; + 4 + 16 + 256 + 28 = 916 the moves land;
# + 4 + 70 + 16 = 1006 the product is in L0C; + 4 + 69 + 100 = 1179 out is written.
CYCLES = FIRST + LOAD_Q + LOAD_K + 180 + FLAG + MOVE_Q + MOVE_K + 28 + FLAG + MMAD + 16 + FLAG + FIXPIPE + 100
assert CYCLES == 1179  # the figure docs/model.md quotes

BUSY = {"MTE2": LOAD_Q + LOAD_K, "MTE1": MOVE_Q + MOVE_K, "M": MMAD, "FIX": FIXPIPE}  # 231, 272, 70, 69
HBM_READ = (16 * 128 + 128 * 128) * 2  # q and k, first touched: L2 misses
# out's 8192 B go into L2 (write-back, npusim/l2.py) and stay there dirty: nothing evicts them from a
# 192 MiB L2 in this run, so they never reach HBM.
HBM_WRITE = 0
CUBE_CYCLES = 16 * 128 * 128 / (16 * 16 * 16)  # one core, one 16x16x16 fractal a cycle: 64
HBM_BYTES_PER_CYCLE = 1600 / 1.8  # hbm.bandwidth_gbps / clock_ghz

# 910b3: the same dispatch, issue and flag cycles, GM -> L1 160, L1 -> L0A/L0B 256/128, L0C -> GM 120
# B/cycle, the same latencies (mte2 180, mte1 28, cube 16, fixpipe 100) and cube (startup 6).
CYCLES_910B3 = CYCLES

# 310p: a coupled core, the same dispatch, issue, flags, MTE1 and cube; GM -> L1 and L0C -> GM at
# 114 B/cycle, and a 200-cycle MTE2 latency.
LOAD_Q_310P = ceil(16 * 128 * 2 / 114)  # ceil(35.93) = 36
LOAD_K_310P = ceil(128 * 128 * 2 / 114)  # ceil(287.4) = 288
FIXPIPE_310P = ceil(16 * 128 * 4 / 114)  # ceil(71.86) = 72
# 201 + 36 + 288 + 200 = 725 the loads land; + 4 + 16 + 256 + 28 = 1029 the moves land;
# + 4 + 70 + 16 = 1119 the product is in L0C; + 4 + 72 + 100 = 1295 out is written.
CYCLES_310P = (FIRST + LOAD_Q_310P + LOAD_K_310P + 200 + FLAG + MOVE_Q + MOVE_K + 28 + FLAG + MMAD + 16 + FLAG
               + FIXPIPE_310P + 100)
assert CYCLES_310P == 1295
BUSY_310P = {"MTE2": LOAD_Q_310P + LOAD_K_310P, "MTE1": MOVE_Q + MOVE_K, "M": MMAD, "FIX": FIXPIPE_310P}
