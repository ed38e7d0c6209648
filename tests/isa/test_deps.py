"""Tests of isa.deps: exact GM region overlap and the kernel ordering derived from it."""

from __future__ import annotations

import random

from isa import (
    Barrier,
    BinaryOp,
    DType,
    Fixpipe,
    GmRegion,
    Kernel,
    Load,
    Mmad,
    Pipe,
    SetFlag,
    Space,
    Store,
    Tile,
    VecBinary,
)
from isa.deps import Footprint, dependencies, footprint, overlaps

BF16 = DType.BF16

# A paged-attention-like KV cache [NUM_BLOCKS, BLOCK_SIZE, KV_HEADS, HEAD_DIM] seen as a matrix of
# NUM_BLOCKS * BLOCK_SIZE * KV_HEADS rows: one head of one block is BLOCK_SIZE rows, KV_HEADS apart.
NUM_BLOCKS, BLOCK_SIZE, KV_HEADS, HEAD_DIM = 1024, 128, 8, 128


def gm(tensor: str, row: int, rows: int, *, col: int = 0, cols: int = 16, step: int = 1) -> GmRegion:
    return GmRegion(tensor, row, col, rows, cols, BF16, step)


def kv(tensor: str, block: int, head: int) -> GmRegion:
    return gm(tensor, block * BLOCK_SIZE * KV_HEADS + head, BLOCK_SIZE, cols=HEAD_DIM, step=KV_HEADS)


def ub(region: GmRegion) -> Tile:
    return Tile(Space.UB, 0, region.dtype, region.shape)


def kernel(name: str, reads: tuple[GmRegion, ...] = (), writes: tuple[GmRegion, ...] = ()) -> Kernel:
    """A kernel that loads each of `reads` and stores each of `writes` (not meant to pass isa.check)."""
    loads = tuple(Load(ub(r), r) for r in reads)
    stores = tuple(Store(w, ub(w)) for w in writes)
    return Kernel(name, loads + stores)


def cells(r: GmRegion) -> set[tuple[str, int, int]]:
    return {(r.tensor, row, col) for row in range(r.row, r.last_row + 1, r.row_step)
            for col in range(r.col, r.col + r.cols)}


def reference_dependencies(kernels: list[Kernel]) -> tuple[tuple[int, ...], ...]:
    """Every pair compared: the definition `dependencies` must match, at quadratic cost."""
    fps = [footprint(k) for k in kernels]
    out = []
    for j, later in enumerate(fps):
        deps = []
        for i, earlier in enumerate(fps[:j]):
            raw = any(overlaps(r, w) for r in later.reads for w in earlier.writes)
            war_waw = any(overlaps(w, x) for w in later.writes for x in earlier.reads + earlier.writes)
            if raw or war_waw:
                deps.append(i)
        out.append(tuple(deps))
    return tuple(out)


# --- footprint --------------------------------------------------------------------------------


def test_footprint_lists_each_gm_region_once_and_skips_on_chip_tiles() -> None:
    a, b, out, acc = gm("a", 0, 16), gm("b", 16, 16), gm("out", 0, 16), gm("acc", 0, 16)
    t = ub(a)
    k = Kernel("k", (
        Load(t, a), Load(t, b), Load(t, a),
        VecBinary(BinaryOp.ADD, t, t, t),
        Fixpipe(Tile(Space.UB, 0, BF16, (16, 16)), Tile(Space.L0C, 0, DType.FP32, (16, 16))),
        Store(out, t), Fixpipe(acc, Tile(Space.L0C, 0, DType.FP32, (16, 16))), Store(out, t),
    ))
    assert footprint(k) == Footprint(reads=(a, b), writes=(out, acc))


# --- overlaps ---------------------------------------------------------------------------------


def test_overlaps_contiguous_rows() -> None:
    assert overlaps(gm("x", 0, 16), gm("x", 8, 16))
    assert overlaps(gm("x", 0, 16), gm("x", 15, 1))
    assert not overlaps(gm("x", 0, 16), gm("x", 16, 16))  # adjacent
    assert not overlaps(gm("x", 0, 16), gm("y", 0, 16))  # other tensor


def test_overlaps_needs_a_shared_column() -> None:
    assert not overlaps(gm("x", 0, 16, col=0, cols=16), gm("x", 0, 16, col=16, cols=16))
    assert overlaps(gm("x", 0, 16, col=0, cols=17), gm("x", 0, 16, col=16, cols=16))
    assert not overlaps(gm("x", 0, 16, col=32, cols=8), gm("x", 0, 16, col=0, cols=32))


def test_overlaps_interleaved_kv_heads() -> None:
    # Heads of one block interleave row by row: their row spans overlap, their rows never meet.
    assert not overlaps(kv("k", 3, 0), kv("k", 3, 1))
    assert not overlaps(kv("k", 3, 2), kv("k", 3, 7))
    assert overlaps(kv("k", 3, 2), kv("k", 3, 2))
    assert not overlaps(kv("k", 3, 2), kv("k", 4, 2))
    # Half a block of head 5 (rows 64..127 of the block) against the whole block of head 5.
    half = gm("k", 3 * BLOCK_SIZE * KV_HEADS + 64 * KV_HEADS + 5, 64, cols=HEAD_DIM, step=KV_HEADS)
    assert overlaps(half, kv("k", 3, 5))
    assert not overlaps(half, kv("k", 3, 4))


def test_overlaps_strided_against_contiguous_and_other_steps() -> None:
    strided = gm("x", 1, 10, step=8)  # rows 1, 9, 17, ..., 73
    assert not overlaps(strided, gm("x", 2, 7))  # rows 2..8 fall between 1 and 9
    assert overlaps(strided, gm("x", 2, 8))  # rows 2..9 reach 9
    assert overlaps(gm("x", 2, 8), strided)
    assert not overlaps(strided, gm("x", 74, 100))  # past the last row 73
    assert overlaps(gm("x", 1, 10, step=4), gm("x", 3, 10, step=6))  # 1, 5, 9 and 3, 9
    assert not overlaps(gm("x", 0, 10, step=4), gm("x", 1, 10, step=6))  # even against odd
    assert not overlaps(gm("x", 1, 2, step=4), gm("x", 3, 10, step=6))  # 1, 5 end before 9


def test_overlaps_matches_cell_intersection_on_random_regions() -> None:
    rng = random.Random(1234)
    outcomes = {True: 0, False: 0}
    for _ in range(20_000):
        a, b = (
            GmRegion(rng.choice("xxxy"), rng.randrange(40), rng.randrange(6), rng.randrange(1, 9),
                     rng.randrange(1, 5), BF16, rng.randrange(1, 8))
            for _ in range(2)
        )
        expected = bool(cells(a) & cells(b))
        assert overlaps(a, b) is expected, (a, b)
        assert overlaps(b, a) is expected, (b, a)
        outcomes[expected] += 1
    assert min(outcomes.values()) > 1_500  # both answers were exercised


# --- dependencies -----------------------------------------------------------------------------


def test_read_after_write() -> None:
    ks = [kernel("w", writes=(gm("x", 0, 16),)), kernel("r", reads=(gm("x", 8, 16),))]
    assert dependencies(ks) == ((), (0,))


def test_write_after_read_points_back_only() -> None:
    ks = [kernel("r", reads=(gm("x", 0, 16),)), kernel("w", writes=(gm("x", 15, 4),))]
    assert dependencies(ks) == ((), (0,))


def test_write_after_write() -> None:
    ks = [kernel("w0", writes=(gm("x", 0, 16, step=2),)), kernel("w1", writes=(gm("x", 30, 1),))]
    assert dependencies(ks) == ((), (0,))


def test_reads_of_one_region_are_not_ordered() -> None:
    ks = [kernel(f"r{i}", reads=(kv("k", 3, 1), gm("x", 0, 16))) for i in range(3)]
    assert dependencies(ks) == ((), (), ())


def test_disjoint_writes_to_one_tensor_are_not_ordered() -> None:
    ks = [
        kernel("rows0", writes=(gm("out", 0, 16),)),
        kernel("rows1", writes=(gm("out", 16, 16),)),
        kernel("cols1", writes=(gm("out", 0, 16, col=16),)),
        kernel("head0", writes=(kv("cache", 0, 0),)),
        kernel("head1", writes=(kv("cache", 0, 1),)),
        kernel("block1", writes=(kv("cache", 1, 0),)),
    ]
    assert dependencies(ks) == ((),) * 6


def test_chain_lists_every_conflict_not_only_the_nearest() -> None:
    ks = [
        kernel("a", writes=(gm("a", 0, 16),)),
        kernel("b", reads=(gm("a", 0, 16),), writes=(gm("b", 0, 16),)),
        kernel("c", reads=(gm("b", 0, 16),), writes=(gm("a", 0, 16),)),
        kernel("d", reads=(gm("a", 4, 1),)),
    ]
    # c rewrites a: after a (write after write) and b (write after read, and it reads b's output).
    # d reads a, written by both a and c.
    assert dependencies(ks) == ((), (0,), (0, 1), (0, 2))


def test_a_kernel_never_waits_for_itself_and_shared_kernel_objects_still_order() -> None:
    k = kernel("update", reads=(gm("acc", 0, 16),), writes=(gm("acc", 0, 16),))
    assert dependencies([k]) == ((),)
    assert dependencies([k, k, k]) == ((), (0,), (0, 1))


def test_matches_all_pairs_reference_on_random_programs() -> None:
    # Spans up to a few hundred rows with steps up to 100 cross many index buckets, in both the
    # contiguous-range and the listed-rows way of filing them; a pool of regions is reused, as an
    # accumulator is rewritten once per KV block.
    rng = random.Random(99)

    def fresh() -> GmRegion:
        return GmRegion(rng.choice("pq"), rng.randrange(300), rng.randrange(4), rng.randrange(1, 12),
                        rng.randrange(1, 3), BF16, rng.choice((1, 1, 2, 7, 64, 100)))

    pool = [fresh() for _ in range(8)]

    def region() -> GmRegion:
        return rng.choice(pool) if rng.random() < 0.3 else fresh()

    edges = 0
    for _ in range(60):
        ks = [kernel(f"k{j}", tuple(region() for _ in range(rng.randrange(3))),
                     tuple(region() for _ in range(rng.randrange(2))))
              for j in range(30)]
        expected = reference_dependencies(ks)
        assert dependencies(ks) == expected
        edges += sum(map(len, expected))
    assert edges > 300  # the programs do conflict


# --- dependencies against the definition, element by element -------------------------------------


def elementwise_dependencies(kernels: list[Kernel]) -> tuple[tuple[int, ...], ...]:
    """The definition spelled out on sets of GM elements, sharing no code with `isa.deps`.

    Kernel j waits for i < j iff some element is touched by both and written by at least one.
    """
    touched = []
    for k in kernels:
        reads: set[tuple[str, int, int]] = set()
        writes: set[tuple[str, int, int]] = set()
        for ins in k.instructions:
            for r in ins.reads:
                if isinstance(r, GmRegion):
                    reads |= cells(r)
            for w in ins.writes:
                if isinstance(w, GmRegion):
                    writes |= cells(w)
        touched.append((reads, writes))
    return tuple(
        tuple(i for i, (r_i, w_i) in enumerate(touched[:j]) if r_j & w_i or w_j & (r_i | w_i))
        for j, (r_j, w_j) in enumerate(touched)
    )


def assert_matches_definition(ks: list[Kernel]) -> tuple[tuple[int, ...], ...]:
    deps = dependencies(ks)
    assert deps == elementwise_dependencies(ks)
    assert type(deps) is tuple and all(type(d) is tuple and all(type(i) is int for i in d) for d in deps)
    return deps


L0C = Tile(Space.L0C, 0, DType.FP32, (16, 16))
SYNC = (SetFlag(Pipe.MTE2, Pipe.V, 0), Barrier(Pipe.V), VecBinary(BinaryOp.ADD, ub(gm("x", 0, 16)),
                                                                   ub(gm("x", 0, 16)), ub(gm("x", 0, 16))))


def test_edge_cases_match_the_definition() -> None:
    x, y = gm("x", 0, 16), gm("y", 0, 16)
    ks = [
        kernel("write x", writes=(x,)),
        kernel("read x (after write)", reads=(gm("x", 15, 1, col=15, cols=1),)),  # one corner element
        kernel("rows touching x", reads=(gm("x", 16, 16),), writes=(gm("x", 16, 4),)),
        kernel("cols touching x", writes=(gm("x", 0, 16, col=16),)),
        Kernel("no GM access", SYNC),
        Kernel("nothing at all", ()),
        kernel("rewrite x part (after write and reads)", writes=(gm("x", 8, 8, col=8, cols=16),)),
        kernel("read and write y", reads=(y,), writes=(y,)),
        kernel("other tensor, same rows", writes=(gm("z", 0, 16),)),
        kernel("read y again", reads=(gm("y", 0, 2, col=14, cols=4),)),
        kernel("write y (after two readers)", writes=(gm("y", 0, 1),)),
        Kernel("fixpipe to x", (Fixpipe(gm("x", 12, 1, col=20, cols=1), L0C), *SYNC)),
        kernel("empty regions", reads=(gm("x", 0, 0),), writes=(gm("x", 0, 16, cols=0),)),
    ]
    assert assert_matches_definition(ks) == (
        (), (0,), (), (), (), (), (0, 1, 3), (), (), (7,), (7, 9), (3, 6), (),
    )


def test_shared_kernel_objects_and_pooled_instructions_match_the_definition() -> None:
    acc = gm("acc", 0, 16)
    load, store = Load(ub(acc), acc), Store(acc, ub(acc))
    update = Kernel("update", (load, *SYNC, store, load, *SYNC, store))  # one object, twice
    other = Kernel("update again", (Load(ub(acc), gm("acc", 0, 16)), store))  # equal, not the same
    reader = kernel("reader", reads=(acc,))
    assert assert_matches_definition([update, reader, update, other, reader, update]) == (
        (), (0,), (0, 1), (0, 1, 2), (0, 2, 3), (0, 1, 2, 3, 4),
    )


def test_regions_far_apart_in_rows_across_tensors_match_the_definition() -> None:
    # A huge row in one tensor must not reach into another tensor's rows.
    far, near = gm("far", 10**9, 4), gm("near", 0, 4)
    ks = [kernel("a", writes=(far,)), kernel("b", writes=(near,)), kernel("c", reads=(gm("near", 3, 1),)),
          kernel("d", reads=(gm("far", 10**9 + 3, 8, step=1000),)), kernel("e", writes=(gm("far", 0, 1),))]
    assert assert_matches_definition(ks) == ((), (), (1,), (0,), ())


def random_program(rng: random.Random, n: int) -> list[Kernel]:
    """`n` kernels over three tensors with contiguous and strided regions, some reused, some shared."""

    def fresh() -> GmRegion:
        return GmRegion(rng.choice("pqr"), rng.randrange(40), rng.randrange(4), rng.randrange(0, 9),
                        rng.randrange(0, 5), BF16, rng.choice((1, 1, 1, 2, 3, 8, 25)))

    pool = [fresh() for _ in range(6)]  # accumulators and workspaces, touched again and again

    def region() -> GmRegion:
        return rng.choice(pool) if rng.random() < 0.4 else fresh()

    def instructions() -> tuple:
        out: list = []
        for _ in range(rng.randrange(6)):
            roll = rng.random()
            if roll < 0.4:
                r = region()
                out.append(Load(ub(r), r))
            elif roll < 0.6:
                w = region()
                out.append(Store(w, ub(w)))
            elif roll < 0.7:
                out.append(Fixpipe(region(), L0C))
            elif roll < 0.8:
                out.append(Mmad(L0C, L0C, L0C, accumulate=True))
            else:
                out.append(rng.choice(SYNC))
        return tuple(out)

    ks: list[Kernel] = []
    for j in range(n):
        ks.append(rng.choice(ks) if ks and rng.random() < 0.1 else Kernel(f"k{j}", instructions()))
    return ks


def test_random_programs_match_the_definition() -> None:
    rng = random.Random(2024)
    edges = empty = 0
    for _ in range(150):
        deps = assert_matches_definition(random_program(rng, rng.randrange(1, 40)))
        edges += sum(map(len, deps))
        empty += deps.count(())
    assert edges > 2500 and empty > 1000  # the programs both conflict and leave tasks free


# --- scale: a paged-attention-sized program ---------------------------------------------------

N_KERNELS = 5000


def _attention_reads(j: int) -> tuple[GmRegion, ...]:
    """Two KV blocks of one head from K and V, plus a block-table row: read-only inputs."""
    head = j % KV_HEADS
    blocks = ((j * 37) % NUM_BLOCKS, (j * 37 + 11) % NUM_BLOCKS)
    return (*(kv(name, b, head) for name in ("k", "v") for b in blocks), gm("table", j // KV_HEADS, 1))


def test_scale_kernels_sharing_read_only_inputs_have_no_edges() -> None:
    ks = [kernel(f"pa{j}", _attention_reads(j), (gm("out", 16 * j, 16, cols=HEAD_DIM),))
          for j in range(N_KERNELS)]
    assert dependencies(ks) == ((),) * N_KERNELS


def test_scale_each_kernel_reads_the_previous_output() -> None:
    def out(j: int) -> GmRegion:
        return gm("out", 16 * j, 16, cols=HEAD_DIM)

    ks = [kernel(f"pa{j}", (*_attention_reads(j), *((out(j - 1),) if j else ())), (out(j),))
          for j in range(N_KERNELS)]
    assert dependencies(ks) == ((), *((j - 1,) for j in range(1, N_KERNELS)))


def test_scale_rewriting_one_kv_head_waits_for_exactly_its_readers() -> None:
    ks = [kernel(f"pa{j}", _attention_reads(j), (gm("out", 16 * j, 16, cols=HEAD_DIM),))
          for j in range(N_KERNELS)]
    # Head 3 of every block of the K cache: one strided region of NUM_BLOCKS * BLOCK_SIZE rows.
    head3 = gm("k", 3, NUM_BLOCKS * BLOCK_SIZE, cols=HEAD_DIM, step=KV_HEADS)
    ks.append(kernel("refill", writes=(head3,)))
    deps = dependencies(ks)
    assert deps[:N_KERNELS] == ((),) * N_KERNELS
    assert deps[N_KERNELS] == tuple(j for j in range(N_KERNELS) if j % KV_HEADS == 3)
