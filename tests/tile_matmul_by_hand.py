"""programs/tile_matmul.s on 910b2, worked by hand from the cost formulas (docs/model.md §3.1).

The independent expectation for tests of what the views of a run (CLI text, JSON record, timeline,
bounds, sweep rows) say about it. Numbers from npusim/presets/910b2.toml.
"""

from math import ceil

DISPATCH, ISSUE, FLAG = 200, 1, 4  # chip.dispatch_cycles, frontend.issue_cycles, sync.flag_cycles
FIRST = DISPATCH + ISSUE  # load q issues and starts here

LOAD_Q = ceil(16 * 128 * 2 / 160)  # 4096 B GM -> L1 at 160 B/cycle: 26
LOAD_K = ceil(128 * 128 * 2 / 160)  # 32768 B: 205
MOVE_Q = 16 * 128 * 2 // 256  # L1 -> L0A at 256 B/cycle: 16
MOVE_K = 128 * 128 * 2 // 128  # L1 -> L0B at 128 B/cycle: 256
MMAD = 16 + ceil(16 / 16) * ceil(128 / 16) * ceil(128 / 16)  # startup + fractals: 80
FIXPIPE = ceil(16 * 128 * 4 / 110)  # 8192 B L0C -> GM at 110 B/cycle: 75

# One dependent chain: the k load, the k move, the mmad and the fixpipe each hand over after their
# latency (mte2 200, mte1 10, cube 16, fixpipe 100), each hand-off through a flag (3 of them).
CYCLES = FIRST + LOAD_Q + LOAD_K + 200 + FLAG + MOVE_Q + MOVE_K + 10 + FLAG + MMAD + 16 + FLAG + FIXPIPE + 100
assert CYCLES == 1197  # the figure docs/model.md quotes

BUSY = {"MTE2": LOAD_Q + LOAD_K, "MTE1": MOVE_Q + MOVE_K, "M": MMAD, "FIX": FIXPIPE}
HBM_READ = (16 * 128 + 128 * 128) * 2  # q and k, first touched: L2 misses
HBM_WRITE = 16 * 128 * 4  # out
CUBE_CYCLES = 16 * 128 * 128 / (16 * 16 * 16)  # one core, one 16x16x16 fractal a cycle: 64
HBM_BYTES_PER_CYCLE = 1600 / 1.8  # hbm.bandwidth_gbps / clock_ghz
