"""Paged attention (vLLM-style KV cache in blocks) as a task graph for a split cube/vector chip.

Inputs are laid out as vLLM/ATB do: query [batch, num_heads, head_dim] bf16; key_cache and
value_cache [num_blocks, block_size, num_kv_heads, head_dim] bf16; block_table [batch,
max_blocks_per_seq] int32 (unused entries 0); context_lens [batch] int32. The output is
[batch, num_heads, head_dim] fp32. Query head h reads KV head h // (num_heads // num_kv_heads).

Work is split into q-tiles: up to m0 query heads (the rows of one cube fractal: 16 on the shipped
chips, see `Layout`) of one request that share one KV head. A q-tile walks its request's KV blocks
in steps, and its steps are cut into chunks of up to `STEPS_PER_TASK`. Each chunk is four tasks
that hand data over through GM workspaces (cube and vector cores share nothing else), and each
task walks the chunk's steps with its loads running ahead of its compute (rings of on-chip buffers
handed back and forth with flags), so that a core streams K or V while it computes earlier steps:

- qk_matmul (cube): the q tile once, then each step's K blocks to L1, K transposed on its way to
  L0B, one mmad for the step's scores [q_tile, width], fixpipe to the scores workspace.
- softmax_prepare (vector): per step, scale, mask the columns past the context length with -inf,
  row max, subtract, exp, round P to bf16, row sum of the rounded P.
- pv_matmul (cube): per step, P and V blocks to L1 and L0, P @ V with the second block of a pair
  accumulated into the first (mmad acc), fixpipe to the output workspace.
- online_update (vector): folds the chunk's steps into the running max, sum and o (the alpha/beta
  rescale), and divides o / l after the q-tile's last step. The q-tile's first step is the running
  state the others fold into.

Variants: `1block` takes one KV block per step (width block_size); `2block` ("multitier") takes
pairs (width 2 x block_size): one score tile, one mmad and one softmax cover both blocks, the two K
(and V) blocks are loaded independently from their own block-table entries, and there are half as
many steps to fold. When a request has an odd number of blocks, its last step is a 1-block tail,
a chunk of its own.

The task graph is built from the block table and context lengths (as a host-side orchestrator
does); the kernels never read those two tensors, which are in the program so that its GM holds the
whole vLLM input. Every step has its own workspace slot, so the only orders between tasks are the
data hand-offs above (and each q-tile's chain of online updates).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

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
from isa.collector import gc_paused
from programs.convert import to_numpy, to_torch
from programs.target import Hardware, align_up, strictest_alignment

if TYPE_CHECKING:  # torch loads in the functions that draw inputs or compute references
    import torch

VARIANTS = ("1block", "2block")
STEPS_PER_TASK = 4  # steps of one q-tile that each task walks, its K/V loads running ahead of its compute

BF16, FP32 = DType.BF16, DType.FP32


@dataclass(frozen=True)
class Layout:
    """How the kernels sit on the target's cores; the defaults are the 910B's (`Layout.of(None)`)."""

    q_tile: int = 16  # query heads per q-tile: the cube's m0, the rows of one fractal
    align: int = 512  # every on-chip tile starts on a multiple of this: the strictest buffer alignment
    # Bytes of each buffer and event ids per pipe pair: how many of a task's steps can be in flight.
    l1: int = 524288
    l0a: int = 65536
    l0b: int = 65536
    l0c: int = 131072
    ub: int = 196608
    events: int = 8

    @classmethod
    def of(cls, config: Hardware | None) -> Layout:
        """The layout for `config`'s cube fractal and buffers (None: the 910B's)."""
        if config is None:
            return cls()
        cores = config.limits_by_kind().values()
        size = {space: min(c.capacity[space] for c in cores if space in c.capacity)
                for space in (Space.L1, Space.L0A, Space.L0B, Space.L0C, Space.UB)}
        return cls(config.cube.m0, strictest_alignment(config), size[Space.L1], size[Space.L0A],
                   size[Space.L0B], size[Space.L0C], size[Space.UB], min(c.num_events for c in cores))


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


@dataclass(frozen=True)
class Blocks:
    """A problem's shape and block table, without its data: all a timing-only run needs."""

    shape: Shape
    block_table: np.ndarray  # [batch, max_blocks_per_seq] int32
    context_lens: np.ndarray  # [batch] int32
    scale: float
    num_blocks: int


def _draw_table(shape: Shape, lens: Sequence[int], spare_blocks: int,
                permutation: Callable[[int], list[int]]) -> tuple[np.ndarray, int]:
    """The block table, a random permutation of a pool of exactly the blocks needed (plus spares);
    `permutation(n)` draws the permutation of range(n)."""
    per_request = [-(-n // shape.block_size) for n in lens]
    num_blocks = sum(per_request) + spare_blocks
    order = permutation(num_blocks)
    table = np.zeros((shape.batch, max(per_request)), dtype=np.int32)
    taken = 0
    for b, count in enumerate(per_request):
        table[b, :count] = order[taken:taken + count]
        taken += count
    return table, num_blocks


# torch.randperm on the CPU shuffles with 32-bit draws below this size, and by another algorithm
# from it on (ATen's randperm_cpu). A block pool that large would hold 200 million blocks.
_TORCH_SHUFFLE_BELOW = (2**32 - 1) // 20


def _torch_mt19937(seed: int) -> np.random.MT19937:
    """numpy's MT19937 in the state of `torch.Generator().manual_seed(seed)`: torch seeds its
    Mersenne Twister with the seed's low 32 bits by the reference init_genrand, written out here."""
    if not isinstance(seed, int) or isinstance(seed, bool):  # torch refuses these too
        raise TypeError(f"seed must be an integer, got {seed!r}")
    if not -(2**63) <= seed < 2**64:  # as torch, which takes a signed or unsigned 64-bit seed
        raise ValueError(f"seed {seed} is out of range; valid: -2**63 to 2**64 - 1")
    key, x = np.empty(624, dtype=np.uint32), seed & 0xFFFFFFFF
    for i in range(624):
        key[i] = x
        x = (1812433253 * (x ^ (x >> 30)) + i + 1) & 0xFFFFFFFF
    bits = np.random.MT19937()
    bits.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": 624}}  # 624: regenerate first
    return bits


def torch_randperm(n: int, seed: int) -> list[int]:
    """`torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()`, drawn by numpy.

    A timing-only run needs the block table that `make_case` draws but none of torch, which takes
    seconds to import. Below `_TORCH_SHUFFLE_BELOW`, torch swaps entry i with entry i + r % (n - i)
    for i = 0 .. n - 2, r its generator's next 32-bit output, and numpy's MT19937 from the same state
    gives the same outputs; from there on torch itself draws it.
    """
    if n >= _TORCH_SHUFFLE_BELOW:
        import torch  # a pool no block table meets; then torch's own algorithm, whatever it is

        return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    draws = _torch_mt19937(seed).random_raw(max(n - 1, 0))
    targets = (np.arange(n - 1, dtype=np.uint64) + draws % np.arange(n, 1, -1, dtype=np.uint64)).tolist()
    order = list(range(n))
    for i, z in enumerate(targets):
        order[i], order[z] = order[z], order[i]
    return order


def make_blocks(shape: Shape, context_lens: int | Sequence[int], seed: int = 0, scale: float | None = None,
                spare_blocks: int = 0) -> Blocks:
    """The block table `make_case` draws for the same arguments, without drawing the data (or
    importing torch: see `torch_randperm`)."""
    lens = context_list(context_lens, shape.batch)
    table, num_blocks = _draw_table(shape, lens, spare_blocks, lambda n: torch_randperm(n, seed))
    return Blocks(shape, table, np.asarray(lens, dtype=np.int32),
                  1.0 / math.sqrt(shape.head_dim) if scale is None else float(scale), num_blocks)


def make_case(shape: Shape, context_lens: int | Sequence[int], seed: int = 0, scale: float | None = None,
              spare_blocks: int = 0) -> Case:
    """Random inputs with a block table drawn as a random permutation of the block pool.

    The pool holds exactly the blocks the requests need (plus `spare_blocks`), so a request's blocks
    are scattered over the pool, never contiguous by construction.
    """
    import torch  # here, not at the top: `npusim --help` never loads it

    lens = context_list(context_lens, shape.batch)
    gen = torch.Generator().manual_seed(seed)
    table, num_blocks = _draw_table(shape, lens, spare_blocks,
                                    lambda n: torch.randperm(n, generator=gen).tolist())
    kv = (num_blocks, shape.block_size, shape.num_kv_heads, shape.head_dim)
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


@dataclass(frozen=True)
class Step:
    """One step of a q-tile: the cache blocks it takes, its workspace slot, its tokens in the context."""

    blocks: tuple[int, ...]  # cache block ids (one, or a pair), each from its own block-table entry
    slot: int  # the row block of every workspace tensor that holds this step's results
    valid: int  # tokens of the step inside the context: fewer than its width only in a partial last block


@dataclass(frozen=True)
class _Ring:
    """`count` buffers of `nbytes` from `base` that a task's steps take in turn: step j uses j % count.

    A step refills a buffer only once the pipe that read it for the step `count` earlier lets it go:
    `acquire` (on the pipe that fills it) waits for that step's `release` (set by the pipe that read
    it), with the buffer's index as event id. With count 1, every step waits for the one before.
    """

    base: int
    nbytes: int
    count: int

    def at(self, j: int) -> int:
        return self.base + (j % self.count) * self.nbytes

    def acquire(self, reader: Pipe, writer: Pipe, j: int) -> list[Instruction]:
        return [WaitFlag(reader, writer, j % self.count)] if j >= self.count else []

    def release(self, reader: Pipe, writer: Pipe, j: int, steps: int) -> list[Instruction]:
        return [SetFlag(reader, writer, j % self.count)] if j + self.count < steps else []


class _Builder:
    """Writes the four kernels of every task of every q-tile, with their workspace slots."""

    def __init__(self, case: Case | Blocks, context_lens: Sequence[int], variant: str, layout: Layout,
                 steps_per_task: int) -> None:
        self.shape, self.table, self.lens, self.variant = case.shape, case.block_table, context_lens, variant
        s = case.shape
        self.scale, self.kv_shape = case.scale, (case.num_blocks, s.block_size, s.num_kv_heads, s.head_dim)
        self.width = case.shape.block_size * (2 if variant == "2block" else 1)  # widest step, in tokens
        self.layout, self.q_tile, self.align = layout, layout.q_tile, layout.align
        self.per_task = steps_per_task
        self._pool: dict[Instruction, Instruction] = {}
        self._made: dict[tuple[Any, ...], list[Instruction]] = {}

    def _align(self, n: int) -> int:
        return align_up(n, self.align)

    def _kernel(self, name: str, body: Sequence[Instruction]) -> Kernel:
        """A kernel whose instructions equal to earlier ones are those same objects.

        The tasks repeat the same on-chip moves, mmads, vector ops and flags thousands of times: one
        object each keeps a long-context program's memory to its distinct instructions, and lets the
        checks, the decoder and the sanitizer, which cache by identity, hit without comparing values.
        """
        pool = self._pool
        return Kernel(name, tuple(pool.setdefault(i, i) for i in body))

    def _shared(self, make: Callable[..., list[Instruction]], *args: Any) -> list[Instruction]:
        """`make(*args)`'s instructions, pooled, made once per builder for equal arguments.

        Every step of every task runs the same softmax and fold sequences over the same few UB
        buffers: making each sequence once spares constructing and pooling its equal instructions
        again for each of thousands of steps.
        """
        key = (make, args)
        made = self._made.get(key)
        if made is None:
            pool = self._pool
            made = self._made[key] = [pool.setdefault(i, i) for i in make(*args)]
        return made

    def _ring(self, base: int, nbytes: int, capacity: int, steps: int, most: int = 2) -> _Ring:
        """As many buffers of `nbytes` (aligned) as fit from `base` in `capacity`, at most `most` and
        `steps`, and at least one (a buffer too large is then refused by the static checks, by name)."""
        size = self._align(nbytes)
        return _Ring(base, size, max(1, min(steps, most, (capacity - base) // size)))

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

    # --- cube kernels ---------------------------------------------------------------------------

    def qk_matmul(self, name: str, tile: QTile, steps: Sequence[Step]) -> Kernel:
        """q @ K^T for each step: K streams through a ring of L1 buffers while earlier steps compute."""
        s, qt, d, n, lay = self.shape, tile.rows, self.shape.head_dim, len(steps), self.layout
        width = len(steps[0].blocks) * s.block_size
        q1, q0 = Tile(Space.L1, 0, BF16, (qt, d)), Tile(Space.L0A, 0, BF16, (qt, d))
        # MTE2 -> MTE1 event 0 says q has landed; events 1.. say a K buffer has.
        k1 = self._ring(self._align(q1.nbytes), width * d * BF16.itemsize, lay.l1, n, lay.events - 1)
        kt0 = self._ring(0, d * width * BF16.itemsize, lay.l0b, n)
        sc0 = self._ring(0, qt * width * FP32.itemsize, lay.l0c, n)
        body: list[Instruction] = [
            Load(q1, self.heads("query", tile, BF16)), SetFlag(Pipe.MTE2, Pipe.MTE1, 0),
            *self._k_loads(tile, steps, 0, k1), WaitFlag(Pipe.MTE2, Pipe.MTE1, 0), Move(q0, q1),
        ]
        for j, step in enumerate(steps):
            kt = Tile(Space.L0B, kt0.at(j), BF16, (d, width))
            scores = Tile(Space.L0C, sc0.at(j), FP32, (qt, width))
            body += [
                WaitFlag(Pipe.MTE2, Pipe.MTE1, 1 + j % k1.count), *kt0.acquire(Pipe.M, Pipe.MTE1, j),
                Move(kt, Tile(Space.L1, k1.at(j), BF16, (width, d)), transpose=True),
                *k1.release(Pipe.MTE1, Pipe.MTE2, j, n),
                SetFlag(Pipe.MTE1, Pipe.M, j % kt0.count), WaitFlag(Pipe.MTE1, Pipe.M, j % kt0.count),
                *sc0.acquire(Pipe.FIX, Pipe.M, j), Mmad(scores, q0, kt),
                *kt0.release(Pipe.M, Pipe.MTE1, j, n),
                SetFlag(Pipe.M, Pipe.FIX, j % sc0.count), WaitFlag(Pipe.M, Pipe.FIX, j % sc0.count),
                Fixpipe(self.ws("ws_scores", step.slot, tile, width), scores),
                *sc0.release(Pipe.FIX, Pipe.M, j, n),
            ]
            if j + 1 < n:  # issued behind step j's compute: MTE2 runs ahead as far as the ring allows
                body += self._k_loads(tile, steps, j + 1, k1)
        return self._kernel(name, body)

    def _k_loads(self, tile: QTile, steps: Sequence[Step], j: int, ring: _Ring) -> list[Instruction]:
        """Step j's K blocks into its L1 buffer, stacked by rows, each from its own table entry."""
        s = self.shape
        block_bytes = s.block_size * s.head_dim * BF16.itemsize
        loads = [Load(Tile(Space.L1, ring.at(j) + i * block_bytes, BF16, (s.block_size, s.head_dim)),
                      self.kv_rows("key_cache", block, tile.kv_head))
                 for i, block in enumerate(steps[j].blocks)]
        return [*ring.acquire(Pipe.MTE1, Pipe.MTE2, j), *loads,
                SetFlag(Pipe.MTE2, Pipe.MTE1, 1 + j % ring.count)]

    def pv_matmul(self, name: str, tile: QTile, steps: Sequence[Step]) -> Kernel:
        """P @ V for each step (a pair's second block accumulates into the first), V streamed through L1."""
        qt, bs, d, n, lay = tile.rows, self.shape.block_size, self.shape.head_dim, len(steps), self.layout
        nb = len(steps[0].blocks)
        # Each block's P and V start aligned (blocks of a pair are loaded and moved independently).
        p_bytes, v_bytes = self._align(qt * bs * BF16.itemsize), self._align(bs * d * BF16.itemsize)
        l1 = self._ring(0, nb * (p_bytes + v_bytes), lay.l1, n, lay.events)
        # P in L0A and V in L0B take turns together: M lets both go with one flag.
        both = min(self._ring(0, nb * p_bytes, lay.l0a, n).count,
                   self._ring(0, nb * v_bytes, lay.l0b, n).count)
        pa0, vb0 = _Ring(0, nb * p_bytes, both), _Ring(0, nb * v_bytes, both)
        o0 = self._ring(0, qt * d * FP32.itemsize, lay.l0c, n)
        body = self._pv_loads(tile, steps, 0, l1, p_bytes, v_bytes)
        for j, step in enumerate(steps):
            out = Tile(Space.L0C, o0.at(j), FP32, (qt, d))
            moves: list[Instruction] = []
            mmads: list[Instruction] = []
            for i in range(nb):
                p0 = Tile(Space.L0A, pa0.at(j) + i * p_bytes, BF16, (qt, bs))
                v0 = Tile(Space.L0B, vb0.at(j) + i * v_bytes, BF16, (bs, d))
                moves += [Move(p0, Tile(Space.L1, l1.at(j) + i * p_bytes, BF16, (qt, bs))),
                          Move(v0, Tile(Space.L1, l1.at(j) + nb * p_bytes + i * v_bytes, BF16, (bs, d)))]
                mmads.append(Mmad(out, p0, v0, accumulate=i > 0))  # the second block adds into the first
            body += [
                WaitFlag(Pipe.MTE2, Pipe.MTE1, j % l1.count), *pa0.acquire(Pipe.M, Pipe.MTE1, j),
                *moves, *l1.release(Pipe.MTE1, Pipe.MTE2, j, n),
                SetFlag(Pipe.MTE1, Pipe.M, j % both), WaitFlag(Pipe.MTE1, Pipe.M, j % both),
                *o0.acquire(Pipe.FIX, Pipe.M, j), *mmads, *pa0.release(Pipe.M, Pipe.MTE1, j, n),
                SetFlag(Pipe.M, Pipe.FIX, j % o0.count), WaitFlag(Pipe.M, Pipe.FIX, j % o0.count),
                Fixpipe(self.ws("ws_o", step.slot, tile, d), out), *o0.release(Pipe.FIX, Pipe.M, j, n),
            ]
            if j + 1 < n:
                body += self._pv_loads(tile, steps, j + 1, l1, p_bytes, v_bytes)
        return self._kernel(name, body)

    def _pv_loads(self, tile: QTile, steps: Sequence[Step], j: int, ring: _Ring, p_bytes: int,
                  v_bytes: int) -> list[Instruction]:
        """Step j's P slices (one per block) and V blocks into its L1 buffer: P first, then V."""
        s, qt, bs, nb = self.shape, tile.rows, self.shape.block_size, len(steps[j].blocks)
        loads: list[Instruction] = []
        for i, block in enumerate(steps[j].blocks):
            loads += [Load(Tile(Space.L1, ring.at(j) + i * p_bytes, BF16, (qt, bs)),
                           self.ws("ws_p", steps[j].slot, tile, bs, col=i * bs, dtype=BF16)),
                      Load(Tile(Space.L1, ring.at(j) + nb * p_bytes + i * v_bytes, BF16, (bs, s.head_dim)),
                           self.kv_rows("value_cache", block, tile.kv_head))]
        return [*ring.acquire(Pipe.MTE1, Pipe.MTE2, j), *loads, SetFlag(Pipe.MTE2, Pipe.MTE1, j % ring.count)]

    # --- vector kernels -------------------------------------------------------------------------

    def softmax_prepare(self, name: str, tile: QTile, steps: Sequence[Step]) -> Kernel:
        """Scores to P (bf16), row max and row sum of P for each step, through a ring of UB buffers."""
        qt, n = tile.rows, len(steps)
        width = len(steps[0].blocks) * self.shape.block_size
        sc_bytes, p_bytes = self._align(qt * width * FP32.itemsize), self._align(qt * width * BF16.itemsize)
        col_bytes = self._align(qt * FP32.itemsize)
        ring = self._ring(0, sc_bytes + p_bytes + 2 * col_bytes, self.layout.ub, n, self.layout.events)
        body = self._score_load(tile, steps, 0, ring, width)
        for j, step in enumerate(steps):
            sc = Tile(Space.UB, ring.at(j), FP32, (qt, width))
            p = Tile(Space.UB, sc.offset + sc_bytes, BF16, (qt, width))
            m = Tile(Space.UB, p.offset + p_bytes, FP32, (qt, 1))
            total = Tile(Space.UB, m.offset + col_bytes, FP32, (qt, 1))
            body += [
                WaitFlag(Pipe.MTE2, Pipe.V, j % ring.count),
                *self._shared(self._softmax, sc, p, m, total, step.valid),
                SetFlag(Pipe.V, Pipe.MTE3, j % ring.count), WaitFlag(Pipe.V, Pipe.MTE3, j % ring.count),
                Store(self.ws("ws_p", step.slot, tile, width, dtype=BF16), p),
                Store(self.ws("ws_max", step.slot, tile, 1), m),
                Store(self.ws("ws_sum", step.slot, tile, 1), total),
                *ring.release(Pipe.MTE3, Pipe.MTE2, j, n),
            ]
            if j + 1 < n:
                body += self._score_load(tile, steps, j + 1, ring, width)
        return self._kernel(name, body)

    def _score_load(self, tile: QTile, steps: Sequence[Step], j: int, ring: _Ring,
                    width: int) -> list[Instruction]:
        sc = Tile(Space.UB, ring.at(j), FP32, (tile.rows, width))
        return [*ring.acquire(Pipe.MTE3, Pipe.MTE2, j),
                Load(sc, self.ws("ws_scores", steps[j].slot, tile, width)),
                SetFlag(Pipe.MTE2, Pipe.V, j % ring.count)]

    def _softmax(self, sc: Tile, p: Tile, m: Tile, total: Tile, valid: int) -> list[Instruction]:
        """One step's softmax numerator: P = bf16(exp(s * scale - rowmax)), m and the row sum of P."""
        v = Barrier(Pipe.V)
        ops: list[Instruction] = [VecScalar(ScalarOp.MULS, sc, sc, self.scale), v]
        if valid < sc.cols:  # the tokens past the context length of a partial last block
            ops += [FillPad(sc, sc, valid, -math.inf), v]
        return ops + [
            RowReduce(ReduceOp.MAX, m, sc), v,
            RowExpand(RowExpandOp.SUB, sc, sc, m), v,
            VecUnary(UnaryOp.EXP, sc, sc), v,
            Cast(p, sc), v,  # P as the cube will read it
            Cast(sc, p), v,  # ... and back to fp32, so that l sums exactly what P @ V weights
            RowReduce(ReduceOp.SUM, total, sc),
        ]

    def online_update(self, name: str, tile: QTile, index: int, fresh: Step | None, fold: Sequence[Step],
                      last: bool) -> Kernel:
        """Fold steps' (max, sum, o) into q-tile `index`'s running state; at the last, write o / l.

        The running state is `fresh`'s results (the q-tile's first step, when no update ran before)
        or else the state tensors; the steps' results stream through a ring of UB buffers.
        """
        d, qt, n = self.shape.head_dim, tile.rows, len(fold)
        o_bytes, col_bytes = self._align(qt * d * FP32.itemsize), self._align(qt * FP32.itemsize)
        o_run = Tile(Space.UB, 0, FP32, (qt, d))
        l_run, m_a, m_b, alpha, beta = (Tile(Space.UB, o_bytes + i * col_bytes, FP32, (qt, 1))
                                        for i in range(5))
        lay = self.layout
        ring = self._ring(o_bytes + 5 * col_bytes, o_bytes + 2 * col_bytes, lay.ub, n, lay.events)
        if fresh is not None:
            src = [self.ws(t, fresh.slot, tile, c) for t, c in (("ws_max", 1), ("ws_sum", 1), ("ws_o", d))]
        else:
            src = [self.ws(t, index, tile, c)
                   for t, c in (("state_max", 1), ("state_sum", 1), ("state_o", d))]
        body: list[Instruction] = [Load(m_a, src[0]), Load(l_run, src[1]), Load(o_run, src[2]),
                                   *self._partial_loads(tile, fold, 0, ring, o_bytes)]
        runs = (m_a, m_b)  # the running max and its update take turns
        for j in range(n):
            o_j = Tile(Space.UB, ring.at(j), FP32, (qt, d))
            l_j, m_j = (Tile(Space.UB, ring.at(j) + o_bytes + i * col_bytes, FP32, (qt, 1)) for i in range(2))
            body += [WaitFlag(Pipe.MTE2, Pipe.V, j % ring.count),
                     *self._shared(self._fold, runs[j % 2], runs[(j + 1) % 2], l_run, o_run,
                                   (m_j, l_j, o_j), (alpha, beta)),
                     *ring.release(Pipe.V, Pipe.MTE2, j, n)]
            if j + 1 < n:
                body += self._partial_loads(tile, fold, j + 1, ring, o_bytes)
        flag_out = [SetFlag(Pipe.V, Pipe.MTE3, 0), WaitFlag(Pipe.V, Pipe.MTE3, 0)]
        if last:
            body += [Barrier(Pipe.V), RowExpand(RowExpandOp.DIV, o_run, o_run, l_run), *flag_out,
                     Store(self.heads("out", tile, FP32), o_run)]
        else:
            body += [*flag_out, Store(self.ws("state_max", index, tile, 1), runs[n % 2]),
                     Store(self.ws("state_sum", index, tile, 1), l_run),
                     Store(self.ws("state_o", index, tile, d), o_run)]
        return self._kernel(name, body)

    def _partial_loads(self, tile: QTile, fold: Sequence[Step], j: int, ring: _Ring,
                       o_bytes: int) -> list[Instruction]:
        """Step j's max, sum and o into its UB buffer (o first, then sum and max)."""
        qt, d, col_bytes = tile.rows, self.shape.head_dim, self._align(tile.rows * FP32.itemsize)
        slot, base = fold[j].slot, ring.at(j)
        l_j, m_j = (Tile(Space.UB, base + o_bytes + i * col_bytes, FP32, (qt, 1)) for i in range(2))
        return [*ring.acquire(Pipe.V, Pipe.MTE2, j),
                Load(m_j, self.ws("ws_max", slot, tile, 1)), Load(l_j, self.ws("ws_sum", slot, tile, 1)),
                Load(Tile(Space.UB, base, FP32, (qt, d)), self.ws("ws_o", slot, tile, d)),
                SetFlag(Pipe.MTE2, Pipe.V, j % ring.count)]

    @staticmethod
    def _fold(m_old: Tile, m_new: Tile, l_run: Tile, o_run: Tile, step: tuple[Tile, Tile, Tile],
              scratch: tuple[Tile, Tile]) -> list[Instruction]:
        """m = max(m, m_j), alpha = exp(m_old - m), beta = exp(m_j - m), l = alpha l + beta l_j,
        o = alpha o + beta o_j: the reference's fp32 operations in its order."""
        (m_j, l_j, o_j), (alpha, beta), v = step, scratch, Barrier(Pipe.V)
        # No barrier first: the previous fold's last writes (l, o) are read only after its barriers,
        # and the m this one reads was written by the previous fold's vmax, fenced there already.
        return [
            VecBinary(BinaryOp.MAX, m_new, m_old, m_j), v,
            VecBinary(BinaryOp.SUB, alpha, m_old, m_new), VecBinary(BinaryOp.SUB, beta, m_j, m_new), v,
            VecUnary(UnaryOp.EXP, alpha, alpha), VecUnary(UnaryOp.EXP, beta, beta), v,
            VecBinary(BinaryOp.MUL, l_run, l_run, alpha), VecBinary(BinaryOp.MUL, l_j, l_j, beta),
            RowExpand(RowExpandOp.MUL, o_run, o_run, alpha), RowExpand(RowExpandOp.MUL, o_j, o_j, beta), v,
            VecBinary(BinaryOp.ADD, l_run, l_run, l_j), VecBinary(BinaryOp.ADD, o_run, o_run, o_j),
        ]

    def divide_only(self, name: str, tile: QTile, step: Step) -> Kernel:
        """A q-tile of a single step: its own results are final, o / l to `out`."""
        d, qt = self.shape.head_dim, tile.rows
        o = Tile(Space.UB, 0, FP32, (qt, d))
        total = Tile(Space.UB, self._align(o.nbytes), FP32, (qt, 1))
        return self._kernel(name, (
            Load(o, self.ws("ws_o", step.slot, tile, d)), Load(total, self.ws("ws_sum", step.slot, tile, 1)),
            SetFlag(Pipe.MTE2, Pipe.V, 0), WaitFlag(Pipe.MTE2, Pipe.V, 0),
            RowExpand(RowExpandOp.DIV, o, o, total),
            SetFlag(Pipe.V, Pipe.MTE3, 0), WaitFlag(Pipe.V, Pipe.MTE3, 0),
            Store(self.heads("out", tile, FP32), o),
        ))

    # --- the program ----------------------------------------------------------------------------

    def steps(self, tile: QTile, first_slot: int) -> list[Step]:
        """The q-tile's steps in order, with consecutive workspace slots from `first_slot`."""
        bs, n = self.shape.block_size, self.lens[tile.request]
        return [Step(tuple(int(self.table[tile.request, i]) for i in plan), first_slot + k,
                     min(len(plan) * bs, n - plan[0] * bs))
                for k, plan in enumerate(steps_of(-(-n // bs), self.variant))]

    def chunks(self, steps: Sequence[Step]) -> list[list[Step]]:
        """The steps each task walks: runs of equal width (pairs, then a 1-block tail), at most
        `steps_per_task` each."""
        out: list[list[Step]] = []
        for step in steps:
            if out and len(out[-1]) < self.per_task and len(out[-1][0].blocks) == len(step.blocks):
                out[-1].append(step)
            else:
                out.append([step])
        return out

    def tasks(self, index: int, tile: QTile, chunks: Sequence[Sequence[Step]],
              c: int) -> tuple[list[Task], list[Task]]:
        """The tasks of q-tile `index`'s chunk `c`: (qk and softmax, then pv and the update, if any)."""
        steps, nb, tag = chunks[c], f"{len(chunks[c][0].blocks)}b", f"r{tile.request}h{tile.head0}s{c}"
        scores = [Task(f"qk_{tag}", self.qk_matmul(f"qk_matmul_{nb}", tile, steps), CoreKind.CUBE),
                  Task(f"sm_{tag}", self.softmax_prepare(f"softmax_prepare_{nb}", tile, steps),
                       CoreKind.VECTOR)]
        outputs = [Task(f"pv_{tag}", self.pv_matmul(f"pv_matmul_{nb}", tile, steps), CoreKind.CUBE)]
        last, first = c == len(chunks) - 1, chunks[0][0]
        fold = steps[1:] if c == 0 else steps  # the q-tile's first step is the running state to fold into
        if not fold and not last:
            return scores, outputs
        if not fold:
            update = self.divide_only("online_update", tile, first)
        else:
            fresh = c == 0 or (c == 1 and len(chunks[0]) == 1)  # no update has run before this one
            update = self.online_update("online_update", tile, index, first if fresh else None, fold, last)
        return scores, [*outputs, Task(f"up_{tag}", update, CoreKind.VECTOR)]

    def program(self) -> Program:
        tiles = q_tiles(self.shape, self.q_tile)
        per_tile, slots = [], 0
        for t, tile in enumerate(tiles):
            steps = self.steps(tile, slots)
            chunks = self.chunks(steps)
            per_tile.append([self.tasks(t, tile, chunks, c) for c in range(len(chunks))])
            slots += len(steps)
        tasks: list[Task] = []
        # Pipelined over chunks: wave w lists every q-tile's qk and softmax of chunk w, then every
        # q-tile's pv and update of chunk w - 1. The scheduler prefers earlier tasks, so a cube core
        # computes chunk w's scores before chunk w - 1's P @ V: the vector cores turn scores into P
        # while the cube cores go on streaming K, and the run ends with only pv and update to drain.
        for w in range(max(len(chunks) for chunks in per_tile) + 1):
            tasks += [task for chunks in per_tile if w < len(chunks) for task in chunks[w][0]]
            tasks += [task for chunks in per_tile if 0 < w <= len(chunks) for task in chunks[w - 1][1]]
        return Program(f"paged_attention_{self.variant}", self.tensors(len(tiles), slots), tuple(tasks))

    def tensors(self, tiles: int, slots: int) -> tuple[Tensor, ...]:
        s, d, rows = self.shape, self.shape.head_dim, self.q_tile
        return (
            Tensor("query", BF16, (s.batch, s.num_heads, d), Role.INPUT),
            # K and V are read once: the L2 cache hint keeps them from pushing the workspace out.
            Tensor("key_cache", BF16, self.kv_shape, Role.INPUT, l2=False),
            Tensor("value_cache", BF16, self.kv_shape, Role.INPUT, l2=False),
            Tensor("block_table", DType.INT32, tuple(self.table.shape), Role.INPUT),
            Tensor("context_lens", DType.INT32, (s.batch,), Role.INPUT),
            Tensor("out", FP32, (s.batch, s.num_heads, d), Role.OUTPUT),
            Tensor("ws_scores", FP32, (slots, rows, self.width), Role.WORKSPACE),
            Tensor("ws_p", BF16, (slots, rows, self.width), Role.WORKSPACE),
            Tensor("ws_max", FP32, (slots, rows, 1), Role.WORKSPACE),
            Tensor("ws_sum", FP32, (slots, rows, 1), Role.WORKSPACE),
            Tensor("ws_o", FP32, (slots, rows, d), Role.WORKSPACE),
            Tensor("state_max", FP32, (tiles, rows, 1), Role.WORKSPACE),
            Tensor("state_sum", FP32, (tiles, rows, 1), Role.WORKSPACE),
            Tensor("state_o", FP32, (tiles, rows, d), Role.WORKSPACE),
        )


def build(case: Case | Blocks, variant: str, config: Hardware | None = None,
          steps_per_task: int = STEPS_PER_TASK) -> Program:
    """The `variant` ("1block" or "2block") program for this case's shapes, block table and lengths.

    Its q-tiles, tile offsets and buffer rings follow `config`'s cube and buffers (None: the 910B's,
    see `Layout`). Each task walks up to `steps_per_task` steps of one q-tile.
    """
    steps_of(1, variant)  # rejects an unknown variant before any work
    if not isinstance(steps_per_task, int) or isinstance(steps_per_task, bool) or steps_per_task < 1:
        raise ValueError(f"steps_per_task must be a positive integer, got {steps_per_task!r}")
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
    with gc_paused():
        return _Builder(case, lens, variant, Layout.of(config), steps_per_task).program()


def kv_bytes(shape: Shape, context_lens: int | Sequence[int]) -> int:
    """Bytes of K and V that any run must read from HBM: every context token's K and V rows, once."""
    tokens = sum(context_list(context_lens, shape.batch))
    return 2 * tokens * shape.num_kv_heads * shape.head_dim * BF16.itemsize


# --- references ---------------------------------------------------------------------------------

def _kv_request(cache: torch.Tensor, case: Case, b: int, blocks: int) -> torch.Tensor:
    """Request b's first `blocks` blocks as fp32, gathered at once: [kv heads, tokens, head_dim],
    each head's rows contiguous (so a step's rows are the matrix a per-block gather would give)."""
    import torch  # here, not at the top: `npusim --help` never loads it

    s = case.shape
    ids = torch.as_tensor(np.asarray(case.block_table)[b, :blocks].astype(np.int64))
    rows = cache[ids].float().permute(2, 0, 1, 3)  # [kv heads, blocks, block_size, head_dim]
    return rows.reshape(s.num_kv_heads, blocks * s.block_size, s.head_dim)


def _kv_heads(case: Case) -> Iterator[tuple[int, slice, int, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """For each request b and KV head: (b, its query heads, the context length n, their queries
    [group, head_dim] and the head's K and V [whole blocks of tokens, head_dim]), all fp32."""
    s = case.shape
    q_all, kc, vc = to_torch(case.query).float(), to_torch(case.key_cache), to_torch(case.value_cache)
    for b in range(s.batch):
        n = int(case.context_lens[b])
        blocks = -(-n // s.block_size)
        k, v = _kv_request(kc, case, b, blocks), _kv_request(vc, case, b, blocks)
        for kh in range(s.num_kv_heads):
            heads = slice(kh * s.group, (kh + 1) * s.group)
            yield b, heads, n, q_all[b, heads], k[kh], v[kh]


def _online(case: Case, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n: int,
            variant: str) -> torch.Tensor:
    """One KV head's query group over one request's n tokens (k, v: [tokens, head_dim]), in steps."""
    import torch  # here, not at the top: `npusim --help` never loads it

    m = total = o = None
    for blocks in steps_of(k.shape[0] // case.shape.block_size, variant):
        lo, hi = blocks[0] * case.shape.block_size, (blocks[-1] + 1) * case.shape.block_size
        sc = (q @ k[lo:hi].T) * case.scale
        sc[:, n - lo:] = -math.inf
        m_j = sc.amax(dim=1, keepdim=True)
        p = torch.exp(sc - m_j).to(torch.bfloat16).float()
        l_j, o_j = p.sum(dim=1, keepdim=True), p @ v[lo:hi]
        if m is None:
            m, total, o = m_j, l_j, o_j
        else:
            m_new = torch.maximum(m, m_j)
            alpha, beta = torch.exp(m - m_new), torch.exp(m_j - m_new)
            m, total, o = m_new, total * alpha + l_j * beta, o * alpha + o_j * beta
    return o / total


def reference_online(case: Case, variant: str = "1block") -> np.ndarray:
    """The per-block online-softmax golden with P rounded to bf16, stepping as `variant` does.

    Per step: s = (q @ K^T) * scale with the tokens past the context masked to -inf, m_j = rowmax(s),
    P = bf16(exp(s - m_j)), l_j = rowsum(P), o_j = P @ V; then m = max(m, m_j), alpha = exp(m_old - m),
    beta = exp(m_j - m), l = alpha l + beta l_j, o = alpha o + beta o_j; finally o / l. All in fp32,
    on one torch thread: its bits do not depend on the machine's core count, and thousands of
    block-sized operations run faster without threads.
    """
    import torch  # here, not at the top: `npusim --help` never loads it

    s = case.shape
    out = torch.empty(s.batch, s.num_heads, s.head_dim, dtype=torch.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for b, heads, n, q, k, v in _kv_heads(case):
            out[b, heads] = _online(case, q, k, v, n, variant)
    finally:
        torch.set_num_threads(threads)
    return out.numpy()


def reference_fp32(case: Case) -> np.ndarray:
    """Plain attention in fp32: softmax(q K^T * scale) V over each request's context."""
    import torch  # here, not at the top: `npusim --help` never loads it

    s = case.shape
    out = torch.empty(s.batch, s.num_heads, s.head_dim, dtype=torch.float32)
    for b, heads, n, q, k, v in _kv_heads(case):
        out[b, heads] = torch.softmax((q @ k[:n].T) * case.scale, dim=1) @ v[:n]
    return out.numpy()
