"""Paged attention (vLLM-style KV cache in blocks) as a task graph for a split cube/vector chip.

Inputs are laid out as vLLM/ATB do: query [batch, num_heads, head_dim] bf16; key_cache and
value_cache [num_blocks, block_size, num_kv_heads, head_dim] bf16; block_table [batch,
max_blocks_per_seq] int32 (unused entries 0); context_lens [batch] int32. The output is
[batch, num_heads, head_dim] fp32. Query head h reads KV head h // (num_heads // num_kv_heads).

Work is split into q-tiles: up to m0 query heads (the rows of one cube fractal: 16 on the shipped
chips, see `Layout`) of one request that share one KV head. A q-tile walks its request's KV blocks
in steps, and each step is four tasks that hand data over through GM workspaces (cube and vector
cores share nothing else):

- qk_matmul (cube): q tile and the step's K blocks to L1, K transposed on its way to L0B, one mmad
  for scores [q_tile, width], fixpipe to the scores workspace.
- softmax_prepare (vector): scale, mask the columns past the context length with -inf, row max,
  subtract, exp, round P to bf16, row sum of the rounded P.
- pv_matmul (cube): P and V blocks to L1 and L0, P @ V with the second block of a pair accumulated
  into the first (mmad acc), fixpipe to the output workspace.
- online_update (vector): running max, the alpha/beta rescale of l and o, and o / l at the last step.
  A q-tile's first step has none: its results are the running state the second step reads.

Variants: `1block` takes one KV block per step (width block_size); `2block` ("multitier") takes
pairs (width 2 x block_size): the q tile is loaded and moved once for two blocks, the two K (and V)
blocks are loaded independently from their own block-table entries, and one softmax covers both.
When a request has an odd number of blocks, its last step is a 1-block tail.

The task graph is built from the block table and context lengths (as a host-side orchestrator
does); the kernels never read those two tensors, which are in the program so that its GM holds the
whole vLLM input. Every step has its own workspace slot, so the only orders between tasks are the
data hand-offs above (and each q-tile's chain of online updates).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from isa import (
    Barrier,
    BinaryOp,
    Cast,
    CoreKind,
    DType,
    FillPad,
    Fixpipe,
    GmRegion,
    Instruction,
    Kernel,
    Load,
    Mmad,
    Move,
    Pipe,
    Program,
    ReduceOp,
    Role,
    RowExpand,
    RowExpandOp,
    RowReduce,
    ScalarOp,
    SetFlag,
    Space,
    Store,
    Task,
    Tensor,
    Tile,
    UnaryOp,
    VecBinary,
    VecScalar,
    VecUnary,
    WaitFlag,
)
from programs.convert import to_numpy, to_torch
from programs.target import Hardware, align_up, strictest_alignment

VARIANTS = ("1block", "2block")

BF16, FP32 = DType.BF16, DType.FP32


@dataclass(frozen=True)
class Layout:
    """How the kernels sit on the target's cores; the defaults are the 910B's (`Layout.of(None)`)."""

    q_tile: int = 16  # query heads per q-tile: the cube's m0, the rows of one fractal
    align: int = 512  # every on-chip tile starts on a multiple of this: the strictest buffer alignment

    @classmethod
    def of(cls, config: Hardware | None) -> Layout:
        """The layout for `config`'s cube fractal and buffers (None: the 910B's)."""
        return cls() if config is None else cls(config.cube.m0, strictest_alignment(config))


@dataclass(frozen=True)
class Shape:
    """The sizes of a paged-attention problem (everything but the data and the context lengths)."""

    batch: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    block_size: int

    def __post_init__(self) -> None:
        for name in ("batch", "num_heads", "num_kv_heads", "head_dim", "block_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not a multiple of num_kv_heads "
                             f"{self.num_kv_heads}; every KV head serves the same number of query heads")

    @property
    def group(self) -> int:
        """Query heads per KV head (1: MHA, num_heads: MQA)."""
        return self.num_heads // self.num_kv_heads


@dataclass(frozen=True)
class Case:
    """One paged-attention problem with its data, as vLLM would pass it."""

    shape: Shape
    query: np.ndarray  # [batch, num_heads, head_dim] bf16
    key_cache: np.ndarray  # [num_blocks, block_size, num_kv_heads, head_dim] bf16
    value_cache: np.ndarray
    block_table: np.ndarray  # [batch, max_blocks_per_seq] int32
    context_lens: np.ndarray  # [batch] int32
    scale: float

    @property
    def num_blocks(self) -> int:
        return int(self.key_cache.shape[0])

    def inputs(self) -> dict[str, np.ndarray]:
        """The program's input tensors by name."""
        return {"query": self.query, "key_cache": self.key_cache, "value_cache": self.value_cache,
                "block_table": self.block_table, "context_lens": self.context_lens}


def context_list(context_lens: int | Sequence[int], batch: int) -> list[int]:
    """One context length per request: an int is used for all of them. Raises for lengths < 1."""
    lens = [context_lens] * batch if isinstance(context_lens, int) else [int(n) for n in context_lens]
    if len(lens) != batch:
        raise ValueError(f"{len(lens)} context lengths given for batch {batch}; give one per request "
                         f"or a single length for all")
    for i, n in enumerate(lens):
        if n < 1:
            raise ValueError(f"request {i} has context length {n}; paged attention needs at least one "
                             f"token per request (a request with no context has nothing to attend to)")
    return lens


def make_case(shape: Shape, context_lens: int | Sequence[int], seed: int = 0, scale: float | None = None,
              spare_blocks: int = 0) -> Case:
    """Random inputs with a block table drawn as a random permutation of the block pool.

    The pool holds exactly the blocks the requests need (plus `spare_blocks`), so a request's blocks
    are scattered over the pool, never contiguous by construction.
    """
    lens = context_list(context_lens, shape.batch)
    bs = shape.block_size
    per_request = [-(-n // bs) for n in lens]
    num_blocks = sum(per_request) + spare_blocks
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(num_blocks, generator=gen).tolist()
    table = np.zeros((shape.batch, max(per_request)), dtype=np.int32)
    taken = 0
    for b, count in enumerate(per_request):
        table[b, :count] = order[taken:taken + count]
        taken += count
    kv = (num_blocks, bs, shape.num_kv_heads, shape.head_dim)
    return Case(
        shape=shape,
        query=to_numpy(torch.randn(shape.batch, shape.num_heads, shape.head_dim, generator=gen)
                       .to(torch.bfloat16)),
        key_cache=to_numpy(torch.randn(*kv, generator=gen).to(torch.bfloat16)),
        value_cache=to_numpy(torch.randn(*kv, generator=gen).to(torch.bfloat16)),
        block_table=table,
        context_lens=np.asarray(lens, dtype=np.int32),
        scale=1.0 / math.sqrt(shape.head_dim) if scale is None else float(scale),
    )


def steps_of(num_blocks: int, variant: str) -> list[tuple[int, ...]]:
    """The block indices (within a request) each step takes: one each, or pairs then a 1-block tail."""
    if variant == "1block":
        return [(i,) for i in range(num_blocks)]
    if variant == "2block":
        pairs = [(i, i + 1) for i in range(0, num_blocks - 1, 2)]
        return pairs + ([(num_blocks - 1,)] if num_blocks % 2 else [])
    raise ValueError(f"unknown paged-attention variant {variant!r}; valid: {', '.join(VARIANTS)}")


@dataclass(frozen=True)
class QTile:
    """Up to `Layout.q_tile` query heads of one request that share a KV head."""

    request: int
    kv_head: int
    head0: int  # first query head
    rows: int  # query heads in the tile


def q_tiles(shape: Shape, q_tile: int = Layout.q_tile) -> list[QTile]:
    """Every request's query heads in tiles of up to `q_tile` heads, none spanning two KV heads."""
    tiles = []
    for b in range(shape.batch):
        for kh in range(shape.num_kv_heads):
            first = kh * shape.group
            for h0 in range(first, first + shape.group, q_tile):
                tiles.append(QTile(b, kh, h0, min(q_tile, first + shape.group - h0)))
    return tiles


class _Builder:
    """Writes the four kernels of every step of every q-tile, with their workspace slots."""

    def __init__(self, case: Case, context_lens: Sequence[int], variant: str, layout: Layout) -> None:
        self.shape, self.table, self.lens, self.variant = case.shape, case.block_table, context_lens, variant
        self.scale, self.kv_shape = case.scale, tuple(case.key_cache.shape)
        self.width = case.shape.block_size * (2 if variant == "2block" else 1)  # widest step, in tokens
        self.q_tile, self.align = layout.q_tile, layout.align

    def _align(self, n: int) -> int:
        return align_up(n, self.align)

    # --- GM regions -----------------------------------------------------------------------------

    def kv_rows(self, cache: str, block: int, kv_head: int) -> GmRegion:
        """One KV head of one cache block: block_size rows, a row step of num_kv_heads."""
        s = self.shape
        return GmRegion(cache, block * s.block_size * s.num_kv_heads + kv_head, 0, s.block_size,
                        s.head_dim, BF16, row_step=s.num_kv_heads)

    def ws(self, tensor: str, slot: int, tile: QTile, cols: int, col: int = 0,
           dtype: DType = FP32) -> GmRegion:
        """Rows of q-tile `tile` in workspace slot `slot` (every slot has room for a full q-tile)."""
        return GmRegion(tensor, slot * self.q_tile, col, tile.rows, cols, dtype)

    def heads(self, tensor: str, tile: QTile, dtype: DType) -> GmRegion:
        return GmRegion(tensor, tile.request * self.shape.num_heads + tile.head0, 0, tile.rows,
                        self.shape.head_dim, dtype)

    # --- kernels --------------------------------------------------------------------------------

    def qk_matmul(self, name: str, tile: QTile, blocks: Sequence[int], slot: int) -> Kernel:
        s, qt = self.shape, tile.rows
        width = len(blocks) * s.block_size
        q1 = Tile(Space.L1, 0, BF16, (qt, s.head_dim))
        k_base = self._align(q1.nbytes)
        k1 = Tile(Space.L1, k_base, BF16, (width, s.head_dim))  # the step's K blocks, stacked by rows
        block_bytes = s.block_size * s.head_dim * BF16.itemsize
        q0 = Tile(Space.L0A, 0, BF16, (qt, s.head_dim))
        kt0 = Tile(Space.L0B, 0, BF16, (s.head_dim, width))
        scores = Tile(Space.L0C, 0, FP32, (qt, width))
        body: list[Instruction] = [Load(q1, self.heads("query", tile, BF16)),
                                   SetFlag(Pipe.MTE2, Pipe.MTE1, 0)]
        for j, block in enumerate(blocks):  # each block from its own block-table entry
            body.append(Load(Tile(Space.L1, k_base + j * block_bytes, BF16, (s.block_size, s.head_dim)),
                             self.kv_rows("key_cache", block, tile.kv_head)))
        body += [
            SetFlag(Pipe.MTE2, Pipe.MTE1, 1),
            WaitFlag(Pipe.MTE2, Pipe.MTE1, 0), Move(q0, q1),
            WaitFlag(Pipe.MTE2, Pipe.MTE1, 1), Move(kt0, k1, transpose=True),
            SetFlag(Pipe.MTE1, Pipe.M, 0), WaitFlag(Pipe.MTE1, Pipe.M, 0),
            Mmad(scores, q0, kt0),
            SetFlag(Pipe.M, Pipe.FIX, 0), WaitFlag(Pipe.M, Pipe.FIX, 0),
            Fixpipe(self.ws("ws_scores", slot, tile, width), scores),
        ]
        return Kernel(name, tuple(body))

    def softmax_prepare(self, name: str, tile: QTile, width: int, valid: int, slot: int) -> Kernel:
        qt = tile.rows
        sc = Tile(Space.UB, 0, FP32, (qt, width))
        p = Tile(Space.UB, self._align(sc.nbytes), BF16, (qt, width))
        m = Tile(Space.UB, p.offset + self._align(p.nbytes), FP32, (qt, 1))
        total = Tile(Space.UB, m.offset + self._align(m.nbytes), FP32, (qt, 1))
        v = Barrier(Pipe.V)
        body: list[Instruction] = [
            Load(sc, self.ws("ws_scores", slot, tile, width)),
            SetFlag(Pipe.MTE2, Pipe.V, 0), WaitFlag(Pipe.MTE2, Pipe.V, 0),
            VecScalar(ScalarOp.MULS, sc, sc, self.scale), v,
        ]
        if valid < width:  # the tokens past the context length of a partial last block
            body += [FillPad(sc, sc, valid, -math.inf), v]
        body += [
            RowReduce(ReduceOp.MAX, m, sc), v,
            RowExpand(RowExpandOp.SUB, sc, sc, m), v,
            VecUnary(UnaryOp.EXP, sc, sc), v,
            Cast(p, sc), v,  # P as the cube will read it
            Cast(sc, p), v,  # ... and back to fp32, so that l sums exactly what P @ V weights
            RowReduce(ReduceOp.SUM, total, sc),
            SetFlag(Pipe.V, Pipe.MTE3, 0), WaitFlag(Pipe.V, Pipe.MTE3, 0),
            Store(self.ws("ws_p", slot, tile, width, dtype=BF16), p),
            Store(self.ws("ws_max", slot, tile, 1), m),
            Store(self.ws("ws_sum", slot, tile, 1), total),
        ]
        return Kernel(name, tuple(body))

    def pv_matmul(self, name: str, tile: QTile, blocks: Sequence[int], slot: int) -> Kernel:
        s, qt, bs = self.shape, tile.rows, self.shape.block_size
        # Each block's P and V start aligned (blocks of a pair are loaded and moved independently).
        p_bytes = self._align(qt * bs * BF16.itemsize)
        v_bytes = self._align(bs * s.head_dim * BF16.itemsize)
        out = Tile(Space.L0C, 0, FP32, (qt, s.head_dim))
        loads: list[Instruction] = []
        moves: list[Instruction] = []
        mmads: list[Instruction] = []
        for j, block in enumerate(blocks):
            p1 = Tile(Space.L1, j * p_bytes, BF16, (qt, bs))
            v1 = Tile(Space.L1, len(blocks) * p_bytes + j * v_bytes, BF16, (bs, s.head_dim))
            p0 = Tile(Space.L0A, j * p_bytes, BF16, (qt, bs))
            v0 = Tile(Space.L0B, j * v_bytes, BF16, (bs, s.head_dim))
            loads += [Load(p1, self.ws("ws_p", slot, tile, bs, col=j * bs, dtype=BF16)),
                      Load(v1, self.kv_rows("value_cache", block, tile.kv_head))]
            moves += [Move(p0, p1), Move(v0, v1)]
            mmads.append(Mmad(out, p0, v0, accumulate=j > 0))  # the second block adds into the first
        body = [
            *loads, SetFlag(Pipe.MTE2, Pipe.MTE1, 0), WaitFlag(Pipe.MTE2, Pipe.MTE1, 0),
            *moves, SetFlag(Pipe.MTE1, Pipe.M, 0), WaitFlag(Pipe.MTE1, Pipe.M, 0),
            *mmads, SetFlag(Pipe.M, Pipe.FIX, 0), WaitFlag(Pipe.M, Pipe.FIX, 0),
            Fixpipe(self.ws("ws_o", slot, tile, s.head_dim), out),
        ]
        return Kernel(name, tuple(body))

    def online_update(self, name: str, tile: QTile, index: int, step: int, slot: int, first_slot: int,
                      last: bool) -> Kernel:
        """Fold step `step`'s (max, sum, o) into q-tile `index`'s running state; at the last, write o / l."""
        d, qt = self.shape.head_dim, tile.rows
        o_bytes, col_bytes = self._align(qt * d * FP32.itemsize), self._align(qt * FP32.itemsize)
        o_cur = Tile(Space.UB, 0, FP32, (qt, d))
        l_cur = Tile(Space.UB, o_bytes, FP32, (qt, 1))
        out = self.heads("out", tile, FP32)
        flag_in = [SetFlag(Pipe.MTE2, Pipe.V, 0), WaitFlag(Pipe.MTE2, Pipe.V, 0)]
        flag_out = [SetFlag(Pipe.V, Pipe.MTE3, 0), WaitFlag(Pipe.V, Pipe.MTE3, 0)]
        if step == 0:  # a single step: its own results are final
            return Kernel(name, (
                Load(o_cur, self.ws("ws_o", slot, tile, d)), Load(l_cur, self.ws("ws_sum", slot, tile, 1)),
                *flag_in, RowExpand(RowExpandOp.DIV, o_cur, o_cur, l_cur), *flag_out, Store(out, o_cur),
            ))
        o_run = Tile(Space.UB, o_bytes + col_bytes, FP32, (qt, d))
        m_cur, m_run, l_run, m_new, alpha, beta = (
            Tile(Space.UB, 2 * o_bytes + (1 + i) * col_bytes, FP32, (qt, 1)) for i in range(6))
        if step == 1:  # the running state is still the first step's results
            state = {"max": self.ws("ws_max", first_slot, tile, 1),
                     "sum": self.ws("ws_sum", first_slot, tile, 1),
                     "o": self.ws("ws_o", first_slot, tile, d)}
        else:
            state = {"max": self.ws("state_max", index, tile, 1),
                     "sum": self.ws("state_sum", index, tile, 1),
                     "o": self.ws("state_o", index, tile, d)}
        v = Barrier(Pipe.V)
        body: list[Instruction] = [
            Load(m_run, state["max"]), Load(l_run, state["sum"]), Load(o_run, state["o"]),
            Load(m_cur, self.ws("ws_max", slot, tile, 1)), Load(l_cur, self.ws("ws_sum", slot, tile, 1)),
            Load(o_cur, self.ws("ws_o", slot, tile, d)),
            *flag_in,
            VecBinary(BinaryOp.MAX, m_new, m_run, m_cur), v,
            VecBinary(BinaryOp.SUB, alpha, m_run, m_new), VecBinary(BinaryOp.SUB, beta, m_cur, m_new), v,
            VecUnary(UnaryOp.EXP, alpha, alpha), VecUnary(UnaryOp.EXP, beta, beta), v,
            VecBinary(BinaryOp.MUL, l_run, l_run, alpha), VecBinary(BinaryOp.MUL, l_cur, l_cur, beta),
            RowExpand(RowExpandOp.MUL, o_run, o_run, alpha),
            RowExpand(RowExpandOp.MUL, o_cur, o_cur, beta), v,
            VecBinary(BinaryOp.ADD, l_run, l_run, l_cur), VecBinary(BinaryOp.ADD, o_run, o_run, o_cur),
        ]
        if last:
            body += [v, RowExpand(RowExpandOp.DIV, o_run, o_run, l_run), *flag_out, Store(out, o_run)]
        else:
            body += [*flag_out,
                     Store(self.ws("state_max", index, tile, 1), m_new),
                     Store(self.ws("state_sum", index, tile, 1), l_run),
                     Store(self.ws("state_o", index, tile, d), o_run)]
        return Kernel(name, tuple(body))

    # --- the program ----------------------------------------------------------------------------

    def program(self) -> Program:
        s = self.shape
        tiles = q_tiles(s, self.q_tile)
        plans = [steps_of(-(-self.lens[t.request] // s.block_size), self.variant) for t in tiles]
        first_slot, slot = [], 0
        for plan in plans:
            first_slot.append(slot)
            slot += len(plan)
        tasks: list[Task] = []
        # Step-major: every q-tile's step i comes before any q-tile's step i + 1, so that the
        # scheduler (which prefers earlier tasks) moves all q-tiles forward together.
        for i in range(max(len(p) for p in plans)):
            for t, (tile, plan) in enumerate(zip(tiles, plans, strict=True)):
                if i >= len(plan):
                    continue
                here = first_slot[t] + i
                blocks = [int(self.table[tile.request, j]) for j in plan[i]]
                width = len(blocks) * s.block_size
                valid = min(width, self.lens[tile.request] - plan[i][0] * s.block_size)
                tag = f"r{tile.request}h{tile.head0}s{i}"
                nb = f"{len(blocks)}b"
                tasks += [
                    Task(f"qk_{tag}", self.qk_matmul(f"qk_matmul_{nb}", tile, blocks, here), CoreKind.CUBE),
                    Task(f"sm_{tag}", self.softmax_prepare(f"softmax_prepare_{nb}", tile, width, valid, here),
                         CoreKind.VECTOR),
                    Task(f"pv_{tag}", self.pv_matmul(f"pv_matmul_{nb}", tile, blocks, here), CoreKind.CUBE),
                ]
                if i > 0 or len(plan) == 1:
                    update = self.online_update("online_update", tile, t, i, here, first_slot[t],
                                                last=i == len(plan) - 1)
                    tasks.append(Task(f"up_{tag}", update, CoreKind.VECTOR))
        slots, d = slot, s.head_dim
        tensors = (
            Tensor("query", BF16, (s.batch, s.num_heads, d), Role.INPUT),
            Tensor("key_cache", BF16, self.kv_shape, Role.INPUT),
            Tensor("value_cache", BF16, self.kv_shape, Role.INPUT),
            Tensor("block_table", DType.INT32, tuple(self.table.shape), Role.INPUT),
            Tensor("context_lens", DType.INT32, (s.batch,), Role.INPUT),
            Tensor("out", FP32, (s.batch, s.num_heads, d), Role.OUTPUT),
            Tensor("ws_scores", FP32, (slots, self.q_tile, self.width), Role.WORKSPACE),
            Tensor("ws_p", BF16, (slots, self.q_tile, self.width), Role.WORKSPACE),
            Tensor("ws_max", FP32, (slots, self.q_tile, 1), Role.WORKSPACE),
            Tensor("ws_sum", FP32, (slots, self.q_tile, 1), Role.WORKSPACE),
            Tensor("ws_o", FP32, (slots, self.q_tile, d), Role.WORKSPACE),
            Tensor("state_max", FP32, (len(tiles), self.q_tile, 1), Role.WORKSPACE),
            Tensor("state_sum", FP32, (len(tiles), self.q_tile, 1), Role.WORKSPACE),
            Tensor("state_o", FP32, (len(tiles), self.q_tile, d), Role.WORKSPACE),
        )
        return Program(f"paged_attention_{self.variant}", tensors, tuple(tasks))


def build(case: Case, variant: str, config: Hardware | None = None) -> Program:
    """The `variant` ("1block" or "2block") program for this case's shapes, block table and lengths.

    Its q-tiles and tile offsets follow `config`'s cube and buffers (None: the 910B's, see `Layout`).
    """
    steps_of(1, variant)  # rejects an unknown variant before any work
    s = case.shape
    lens = context_list([int(n) for n in case.context_lens], s.batch)
    table = np.asarray(case.block_table)
    if table.ndim != 2 or table.shape[0] != s.batch:
        raise ValueError(f"block_table has shape {list(table.shape)}; expected [batch={s.batch}, max_blocks]")
    for b, n in enumerate(lens):
        need = -(-n // s.block_size)
        if need > table.shape[1]:
            raise ValueError(f"request {b}: context length {n} needs {need} blocks of {s.block_size}, but "
                             f"block_table has {table.shape[1]} entries per request")
        used = table[b, :need]
        if used.min() < 0 or used.max() >= case.num_blocks:
            raise ValueError(f"request {b}: block_table entries {used.tolist()} fall outside the pool of "
                             f"{case.num_blocks} blocks")
    return _Builder(case, lens, variant, Layout.of(config)).program()


# --- references ---------------------------------------------------------------------------------

def _kv(cache: torch.Tensor, case: Case, b: int, kv_head: int, blocks: Sequence[int]) -> torch.Tensor:
    """The rows of `blocks` (indices within request b) of one KV head, whole blocks, as fp32."""
    ids = [int(case.block_table[b, j]) for j in blocks]
    return cache[ids, :, kv_head, :].reshape(-1, cache.shape[-1]).float()


def reference_online(case: Case, variant: str = "1block") -> np.ndarray:
    """The per-block online-softmax golden with P rounded to bf16, stepping as `variant` does.

    Per step: s = (q @ K^T) * scale with the tokens past the context masked to -inf, m_j = rowmax(s),
    P = bf16(exp(s - m_j)), l_j = rowsum(P), o_j = P @ V; then m = max(m, m_j), alpha = exp(m_old - m),
    beta = exp(m_j - m), l = alpha l + beta l_j, o = alpha o + beta o_j; finally o / l. All in fp32.
    """
    s = case.shape
    q_all, kc, vc = to_torch(case.query).float(), to_torch(case.key_cache), to_torch(case.value_cache)
    out = torch.empty(s.batch, s.num_heads, s.head_dim, dtype=torch.float32)
    for b in range(s.batch):
        n = int(case.context_lens[b])
        for kh in range(s.num_kv_heads):
            heads = slice(kh * s.group, (kh + 1) * s.group)
            q = q_all[b, heads]
            m = total = o = None
            for blocks in steps_of(-(-n // s.block_size), variant):
                k, v = _kv(kc, case, b, kh, blocks), _kv(vc, case, b, kh, blocks)
                sc = (q @ k.T) * case.scale
                valid = n - blocks[0] * s.block_size
                sc[:, valid:] = -math.inf
                m_j = sc.amax(dim=1, keepdim=True)
                p = torch.exp(sc - m_j).to(torch.bfloat16).float()
                l_j, o_j = p.sum(dim=1, keepdim=True), p @ v
                if m is None:
                    m, total, o = m_j, l_j, o_j
                else:
                    m_new = torch.maximum(m, m_j)
                    alpha, beta = torch.exp(m - m_new), torch.exp(m_j - m_new)
                    m, total, o = m_new, total * alpha + l_j * beta, o * alpha + o_j * beta
            out[b, heads] = o / total
    return out.numpy()


def reference_fp32(case: Case) -> np.ndarray:
    """Plain attention in fp32: softmax(q K^T * scale) V over each request's context."""
    s = case.shape
    q_all, kc, vc = to_torch(case.query).float(), to_torch(case.key_cache), to_torch(case.value_cache)
    out = torch.empty(s.batch, s.num_heads, s.head_dim, dtype=torch.float32)
    for b in range(s.batch):
        n = int(case.context_lens[b])
        blocks = range(-(-n // s.block_size))
        for kh in range(s.num_kv_heads):
            heads = slice(kh * s.group, (kh + 1) * s.group)
            k, v = _kv(kc, case, b, kh, blocks)[:n], _kv(vc, case, b, kh, blocks)[:n]
            weights = torch.softmax((q_all[b, heads] @ k.T) * case.scale, dim=1)
            out[b, heads] = weights @ v
    return out.numpy()
