"""Paged attention, 1-block and 2-block, against both PyTorch references, and its task graph."""

import json
import math
import re

import numpy as np
import pytest

from isa import Load, Mmad
from isa.check import CheckError
from isa.interpret import interpret
from npusim import load_preset, simulate
from npusim.cli import main
from programs import paged_attention as pa
from programs import registry

CFG = load_preset("910b2")
TOL = {"rtol": 2e-2, "atol": 2e-2}


def run(shape: pa.Shape, lens, variant: str, seed: int = 0):
    case = pa.make_case(shape, lens, seed=seed)
    program = pa.build(case, variant)
    result = simulate(program, CFG, inputs=case.inputs())
    return case, program, result


def check_against_references(case, variant, out):
    np.testing.assert_allclose(out, pa.reference_online(case, variant), **TOL)
    np.testing.assert_allclose(out, pa.reference_fp32(case), **TOL)
    # The golden that steps as the program does computes the same fp32 operations in the same order;
    # only exp's last bit (numpy's vs torch's) can differ, and where it does, P's bf16 rounding may
    # go the other way (2^-8 of one weight): ten times tighter than the required tolerance.
    np.testing.assert_allclose(out, pa.reference_online(case, variant), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("variant", pa.VARIANTS)
@pytest.mark.parametrize(("head_dim", "block_size"), [(64, 64), (64, 128), (128, 64), (128, 128)])
def test_head_dims_and_block_sizes(variant, head_dim, block_size):
    shape = pa.Shape(batch=2, num_heads=16, num_kv_heads=1, head_dim=head_dim, block_size=block_size)
    lens = [3 * block_size, 2 * block_size + 5]  # three blocks each: a pair and a tail; a partial block
    case, _, result = run(shape, lens, variant, seed=head_dim + block_size)
    check_against_references(case, variant, result.tensors["out"])


@pytest.mark.parametrize("variant", pa.VARIANTS)
@pytest.mark.parametrize("lens", [[1, 7, 63], [64, 65, 128], [129, 200, 256], [300]])
def test_partial_and_short_contexts(variant, lens):
    shape = pa.Shape(batch=len(lens), num_heads=16, num_kv_heads=1, head_dim=64, block_size=64)
    case, _, result = run(shape, lens, variant, seed=sum(lens))
    check_against_references(case, variant, result.tensors["out"])


@pytest.mark.parametrize("variant", pa.VARIANTS)
@pytest.mark.parametrize(("num_heads", "num_kv_heads"), [
    (20, 1),  # MQA with a tail q-tile of 4 heads
    (8, 2),  # GQA: 4 query heads per KV head
    (40, 2),  # GQA with 20 heads per KV head: tiles of 16 and 4
    (4, 4),  # MHA: one head per q-tile
])
def test_gqa_mqa_and_tail_heads(variant, num_heads, num_kv_heads):
    shape = pa.Shape(batch=2, num_heads=num_heads, num_kv_heads=num_kv_heads, head_dim=64, block_size=64)
    case, program, result = run(shape, [150, 70], variant, seed=num_heads)
    check_against_references(case, variant, result.tensors["out"])
    tiles = pa.q_tiles(shape)
    assert sum(t.rows for t in tiles) == shape.batch * num_heads
    assert all(t.head0 // shape.group == t.kv_head for t in tiles)  # head h reads KV head h // group


def test_gqa_really_reads_each_heads_own_kv_head():
    """Swapping the two KV heads' data changes exactly the outputs of the heads that read them."""
    shape = pa.Shape(batch=1, num_heads=4, num_kv_heads=2, head_dim=64, block_size=64)
    case = pa.make_case(shape, 100, seed=3)
    swapped = pa.Case(shape, case.query, case.key_cache[:, :, ::-1].copy(), case.value_cache,
                      case.block_table, case.context_lens, case.scale)
    a = simulate(pa.build(case, "1block"), CFG, inputs=case.inputs()).tensors["out"]
    b = simulate(pa.build(swapped, "1block"), CFG, inputs=swapped.inputs()).tensors["out"]
    assert not np.allclose(a[0, :2], b[0, :2]) and not np.allclose(a[0, 2:], b[0, 2:])
    np.testing.assert_allclose(b, pa.reference_fp32(swapped), **TOL)


def test_timing_run_equals_the_interpreter_bit_for_bit():
    shape = pa.Shape(batch=3, num_heads=20, num_kv_heads=1, head_dim=64, block_size=64)
    case = pa.make_case(shape, [5, 130, 320], seed=9)
    for variant in pa.VARIANTS:
        program = pa.build(case, variant)
        timed = simulate(program, CFG, inputs=case.inputs()).tensors
        plain = interpret(program, case.inputs(), CFG.core_limits())
        np.testing.assert_array_equal(timed["out"], plain["out"])


def test_block_table_is_a_scattered_permutation_of_the_pool():
    shape = pa.Shape(batch=4, num_heads=16, num_kv_heads=1, head_dim=64, block_size=64)
    case = pa.make_case(shape, [640, 100, 64, 300], seed=5)
    counts = [10, 2, 1, 5]
    used = np.concatenate([case.block_table[b, :n] for b, n in enumerate(counts)])
    assert sorted(used.tolist()) == list(range(case.num_blocks)) == list(range(sum(counts)))
    assert not np.all(np.diff(case.block_table[0, :10]) == 1)  # the 10-block request is not contiguous
    assert case.key_cache.shape == (18, 64, 1, 64) and case.scale == 1 / math.sqrt(64)
    again = pa.make_case(shape, [640, 100, 64, 300], seed=5)
    np.testing.assert_array_equal(again.block_table, case.block_table)
    np.testing.assert_array_equal(again.query.view(np.uint16), case.query.view(np.uint16))


def chunks_of(program):
    """Per qk task (name, steps it walks, score width): one mmad per step."""
    return [(t.name, [i.dst.cols for i in t.kernel.instructions if isinstance(i, Mmad)])
            for t in program.tasks if t.name.startswith("qk_")]


def test_tasks_walk_up_to_four_steps_and_two_block_steps_halve_them():
    shape = pa.Shape(batch=2, num_heads=16, num_kv_heads=1, head_dim=128, block_size=128)
    case = pa.make_case(shape, [16 * 128, 9 * 128 - 3], seed=2)  # 16 blocks; 9 (4 pairs + tail)
    one, two = pa.build(case, "1block"), pa.build(case, "2block")
    assert pa.STEPS_PER_TASK == 4
    # listed chunk by chunk over the q-tiles (the 9th block is request 1's third chunk, alone)
    assert chunks_of(one) == [(f"qk_r{r}h0s{c}", [128] * 4) for c in range(2) for r in (0, 1)] + [
        ("qk_r0h0s2", [128] * 4), ("qk_r1h0s2", [128]), ("qk_r0h0s3", [128] * 4)]
    # pairs four at a time; request 1's odd block is a 1-block tail task of its own
    assert chunks_of(two) == [("qk_r0h0s0", [256] * 4), ("qk_r1h0s0", [256] * 4), ("qk_r0h0s1", [256] * 4),
                              ("qk_r1h0s1", [128])]
    # qk, softmax, pv and update per chunk: 7 chunks against 4
    assert (len(one.tasks), len(two.tasks)) == (4 * 7, 4 * 4)
    q_loads = [sum(isinstance(i, Load) and i.src.tensor == "query" for i in k.instructions)
               for k in two.kernels]
    assert sum(q_loads) == 4 and max(q_loads) == 1  # q is loaded once per qk task, not per step
    first = next(t.kernel for t in two.tasks if t.name == "qk_r0h0s0")
    k_loads = [i for i in first.instructions if isinstance(i, Load) and i.src.tensor == "key_cache"]
    assert [ld.src.row // 128 for ld in k_loads] == case.block_table[0, :8].tolist()  # own table entries
    pair_pv = next(t.kernel for t in two.tasks if t.name == "pv_r0h0s0")
    assert [i.accumulate for i in pair_pv.instructions if isinstance(i, Mmad)] == [False, True] * 4
    assert next(t.kernel.name for t in two.tasks if t.name == "qk_r1h0s1") == "qk_matmul_1b"


def test_one_step_per_task_is_the_per_step_program():
    shape = pa.Shape(batch=2, num_heads=16, num_kv_heads=1, head_dim=128, block_size=128)
    case = pa.make_case(shape, [5 * 128, 4 * 128 - 3], seed=2)  # 5 blocks (2 pairs + tail), 4 blocks
    one, two = (pa.build(case, v, steps_per_task=1) for v in pa.VARIANTS)
    steps1, steps2 = 5 + 4, 3 + 2
    # per step qk, softmax and pv; online updates on every step but each q-tile's first
    assert len(one.tasks) == 3 * steps1 + (steps1 - 2) and len(two.tasks) == 3 * steps2 + (steps2 - 2)
    assert [w for _, w in chunks_of(two)] == [[256]] * 4 + [[128]]
    with pytest.raises(ValueError, match="steps_per_task must be a positive integer, got 0"):
        pa.build(case, "1block", steps_per_task=0)
    # the command line's --steps-per-task (default: the program's)
    workload = registry.get("paged-attention")
    values = {"batch": 2, "context_lens": [5 * 128, 4 * 128 - 3], "seed": 2}  # the case above
    assert workload.instance(values | {"steps_per_task": 1}, 24).program.tasks == two.tasks
    assert workload.instance(values, 24).program.tasks == pa.build(case, "2block").tasks


@pytest.mark.parametrize("variant", pa.VARIANTS)
def test_long_tasks_reuse_their_buffers_in_turn(variant):
    """20 steps in one task: K, P/V and the vector buffers come round again (8 event ids per pipe pair)."""
    shape = pa.Shape(batch=2, num_heads=16, num_kv_heads=1, head_dim=64, block_size=64)
    case = pa.make_case(shape, [40 * 64 + 5, 64 * 3], seed=4)
    program = pa.build(case, variant, steps_per_task=20)
    qk = next(t.kernel for t in program.tasks if t.name == "qk_r0h0s0")
    k_buffers = {i.dst.offset for i in qk.instructions if isinstance(i, Load) and i.src.tensor == "key_cache"}
    assert len(qk.instructions) > 20 * 8 and len(k_buffers) == 7 * len(pa.steps_of(2, variant)[0])
    out = simulate(program, CFG, inputs=case.inputs()).tensors["out"]
    check_against_references(case, variant, out)
    np.testing.assert_array_equal(out, interpret(program, case.inputs(), CFG.core_limits())["out"])


def test_the_partial_block_is_masked_in_the_softmax():
    shape = pa.Shape(batch=1, num_heads=16, num_kv_heads=1, head_dim=64, block_size=64)
    case = pa.make_case(shape, 100, seed=1)
    two = pa.build(case, "2block")
    (sm,) = [t.kernel for t in two.tasks if t.name.startswith("sm_")]
    (pad,) = [i for i in sm.instructions if type(i).__name__ == "FillPad"]
    assert (pad.valid_cols, pad.value, pad.dst.shape) == (100, -math.inf, (16, 128))
    result = simulate(two, CFG, inputs=case.inputs())
    # Garbage K/V past the context must not leak: poison them and the output must not change.
    poisoned = {**case.inputs()}
    for name in ("key_cache", "value_cache"):
        cache = poisoned[name].copy()
        cache[case.block_table[0, 1], 100 - 64:] = 1e4
        poisoned[name] = cache
    again = simulate(two, CFG, inputs=poisoned)
    np.testing.assert_array_equal(again.tensors["out"], result.tensors["out"])


def test_two_block_runs_on_both_core_kinds_and_takes_fewer_cycles_at_long_context():
    shape = pa.Shape(batch=4, num_heads=16, num_kv_heads=1, head_dim=128, block_size=128)
    case = pa.make_case(shape, 2048, seed=0)
    one = simulate(pa.build(case, "1block"), CFG, numerics=False)
    two = simulate(pa.build(case, "2block"), CFG, numerics=False)
    assert {t.core[:3] for t in one.traces} == {"aic", "aiv"}
    assert two.cycles < one.cycles


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"num_heads": 12, "num_kv_heads": 8}, "not a multiple of num_kv_heads"),
    ({"head_dim": 0}, "head_dim must be a positive integer"),
    ({"batch": -1}, "batch must be a positive integer"),
])
def test_bad_shapes_are_rejected(kwargs, message):
    args = {"batch": 1, "num_heads": 16, "num_kv_heads": 1, "head_dim": 64, "block_size": 64, **kwargs}
    with pytest.raises(ValueError, match=message):
        pa.Shape(**args)


def test_bad_cases_are_rejected():
    shape = pa.Shape(batch=2, num_heads=16, num_kv_heads=1, head_dim=64, block_size=64)
    with pytest.raises(ValueError, match="request 1 has context length 0"):
        pa.make_case(shape, [10, 0])
    with pytest.raises(ValueError, match="3 context lengths given for batch 2"):
        pa.make_case(shape, [1, 2, 3])
    case = pa.make_case(shape, [10, 100])
    with pytest.raises(ValueError, match="unknown paged-attention variant '3block'; valid: 1block, 2block"):
        pa.build(case, "3block")
    short = pa.Case(shape, case.query, case.key_cache, case.value_cache, case.block_table[:, :1],
                    case.context_lens, case.scale)
    with pytest.raises(ValueError, match="request 1: context length 100 needs 2 blocks of 64"):
        pa.build(short, "1block")
    outside = pa.Case(shape, case.query, case.key_cache, case.value_cache, case.block_table + 5,
                      case.context_lens, case.scale)
    with pytest.raises(ValueError, match="fall outside the pool of 3 blocks"):
        pa.build(outside, "1block")


def test_a_shape_the_buffers_cannot_hold_names_the_buffer():
    shape = pa.Shape(batch=1, num_heads=16, num_kv_heads=1, head_dim=256, block_size=128)
    case = pa.make_case(shape, 300)
    with pytest.raises(CheckError, match=r"(?s)qk_matmul_2b.*L0B holds 65536 bytes"):
        simulate(pa.build(case, "2block"), CFG, numerics=False)
    simulate(pa.build(case, "1block"), CFG, numerics=False)  # K^T [256, 128] fits L0B


def test_the_roofline_is_k_and_v_read_once_worked_by_hand():
    # 300 + 513 tokens of one KV head of 64: K is 813 x 64 x 2 B = 104,064 B, and V as much.
    assert pa.kv_bytes(pa.Shape(2, 16, 1, 64, 64), [300, 513]) == 208_128
    assert pa.kv_bytes(pa.Shape(2, 16, 1, 64, 64), 100) == 2 * (200 * 64 * 2)  # one length for all
    # GQA, 8 heads on 2 KV heads: (150 + 70) tokens x 2 heads x 64 x 2 B = 56,320 B each for K and V.
    assert pa.kv_bytes(pa.Shape(2, 8, 2, 64, 64), [150, 70]) == 112_640
    workload = registry.get("paged-attention")
    # The seed configuration: 64 x 8192 tokens x 128 x 2 B x 2 = 268.4 MB, 167.8 us at 1.6 TB/s.
    assert workload.roofline_bytes({}) == 268_435_456
    assert workload.roofline_bytes({"context_lens": [300, 513], "batch": 2, "head_dim": 64}) == 208_128
    assert registry.get("matmul").roofline_bytes({}) is None


SMALL_GQA = ["--batch", "2", "--num-heads", "8", "--num-kv-heads", "2", "--head-dim", "64", "--block-size",
             "64", "--context-lens", "150,70", "--no-numerics", "--set", "hbm.bandwidth_gbps=800"]
ROOF_US = 112_640 / 800e9 * 1e6  # 0.1408 us: K and V of the case above at the --set bandwidth


def test_run_prints_its_share_of_the_roofline_in_text_and_json(capsys):
    assert main(["run", "paged-attention", *SMALL_GQA]) == 0
    out = capsys.readouterr().out
    run_us = int(re.search(r"timing: (\d+) cycles", out).group(1)) / (CFG.clock_ghz * 1e3)
    assert (f"  HBM roofline: 0.141 us (K and V read once at 800 GB/s); this run {run_us:.3f} us = "
            f"{100 * ROOF_US / run_us:.1f}% of it") in out
    assert main(["run", "paged-attention", *SMALL_GQA, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    roof = record["hbm_roofline"]
    assert (roof["bytes"], roof["what"], roof["gbps"]) == (112_640, "K and V read once", 800.0)
    assert roof["microseconds"] == pytest.approx(ROOF_US)
    assert roof["percent"] == pytest.approx(100 * ROOF_US / record["microseconds"])


def test_compare_gives_each_variant_its_share_of_the_roofline(capsys):
    assert main(["compare", "paged-attention", *SMALL_GQA]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = lines[1].split()
    assert head[-3:] == ["roofline", "%", "numerics"]
    for line in lines[3:5]:
        row = line.split()  # ... roofline %, "not checked"
        run_us = int(row[1].replace(",", "")) / (CFG.clock_ghz * 1e3)
        assert row[-3] == f"{100 * ROOF_US / run_us:.1f}"
    assert lines[-1] == ("HBM roofline: 0.141 us (K and V read once at 800 GB/s); roofline %: that time / "
                         "each variant's time")
    assert main(["compare", "paged-attention", *SMALL_GQA, "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["hbm_roofline"]["bytes"] for r in runs] == [112_640, 112_640]


def test_the_seed_configuration_runs_and_matches_for_both_variants():
    """batch 64, 16 heads (MQA), head_dim 128, block 128, context 8192, scattered block tables."""
    shape = pa.Shape(batch=64, num_heads=16, num_kv_heads=1, head_dim=128, block_size=128)
    case = pa.make_case(shape, 8192, seed=0)
    fp32 = pa.reference_fp32(case)
    cycles = {}
    for variant in pa.VARIANTS:
        result = simulate(pa.build(case, variant), CFG, inputs=case.inputs())
        out = result.tensors["out"]
        np.testing.assert_allclose(out, fp32, **TOL)
        np.testing.assert_allclose(out, pa.reference_online(case, variant), **TOL)
        cycles[variant] = result.cycles
    assert cycles["2block"] < cycles["1block"]
    # Issue 12: the 2-block run within 80% of the HBM roofline (K and V read once at 1.6 TB/s).
    roofline = pa.kv_bytes(shape, 8192) / (CFG.hbm.bandwidth_gbps / CFG.clock_ghz)
    assert roofline / cycles["2block"] >= 0.8


def test_a_timing_only_instance_draws_no_kv_cache(monkeypatch):
    """The program needs the block table only; the KV cache is drawn when inputs are asked for."""
    from programs import registry

    shape = pa.Shape(batch=3, num_heads=8, num_kv_heads=2, head_dim=32, block_size=16)
    case = pa.make_case(shape, [40, 7, 100], seed=6)
    blocks = pa.make_blocks(shape, [40, 7, 100], seed=6)
    np.testing.assert_array_equal(blocks.block_table, case.block_table)
    assert blocks.num_blocks == case.num_blocks and blocks.scale == case.scale
    assert pa.build(blocks, "2block") == pa.build(case, "2block")

    drawn = []
    real = pa.make_case
    monkeypatch.setattr(pa, "make_case", lambda *a, **k: drawn.append(1) or real(*a, **k))
    values = {"batch": 3, "num_heads": 8, "num_kv_heads": 2, "head_dim": 32, "block_size": 16,
              "context_lens": [40, 7, 100]}
    instance = registry.get("paged-attention").instance(values, 24)
    assert drawn == []
    inputs = instance.inputs()
    assert drawn == [1]
    np.testing.assert_array_equal(inputs["key_cache"], pa.make_case(shape, [40, 7, 100]).key_cache)


def _online_one_request_at_a_time(case: pa.Case, variant: str) -> np.ndarray:
    """The online-softmax golden written plainly: one request, one KV head, one step at a time, on
    one torch thread as the golden is (a matmul's bits may depend on how many threads split it)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _plain_online(case, variant)
    finally:
        torch.set_num_threads(threads)


def _plain_online(case: pa.Case, variant: str) -> np.ndarray:
    import torch

    s = case.shape
    q_all = torch.from_numpy(case.query.astype(np.float32))
    out = np.empty((s.batch, s.num_heads, s.head_dim), dtype=np.float32)
    for b in range(s.batch):
        n = int(case.context_lens[b])
        for kh in range(s.num_kv_heads):
            heads = slice(kh * s.group, (kh + 1) * s.group)
            m = total = o = None
            for blocks in pa.steps_of(-(-n // s.block_size), variant):
                ids = [int(case.block_table[b, j]) for j in blocks]
                k, v = (torch.from_numpy(c[ids, :, kh, :].astype(np.float32)).reshape(-1, s.head_dim)
                        for c in (case.key_cache, case.value_cache))
                sc = (q_all[b, heads] @ k.T) * case.scale
                sc[:, n - blocks[0] * s.block_size:] = -math.inf
                m_j = sc.amax(dim=1, keepdim=True)
                p = torch.exp(sc - m_j).to(torch.bfloat16).float()
                l_j, o_j = p.sum(dim=1, keepdim=True), p @ v
                if m is None:
                    m, total, o = m_j, l_j, o_j
                else:
                    m_new = torch.maximum(m, m_j)
                    alpha, beta = torch.exp(m - m_new), torch.exp(m_j - m_new)
                    m, total, o = m_new, total * alpha + l_j * beta, o * alpha + o_j * beta
            out[b, heads] = (o / total).numpy()
    return out


@pytest.mark.parametrize("variant", pa.VARIANTS)
def test_the_online_golden_gathering_each_request_once_equals_gathering_each_step(variant):
    # Lengths that end mid-block and on a block edge; GQA (five query heads per KV head); the same
    # fp32 operations on the same matrices, so the same bits.
    shape = pa.Shape(batch=4, num_heads=10, num_kv_heads=2, head_dim=128, block_size=16)
    case = pa.make_case(shape, [70, 64, 5, 33], seed=4)
    plain = _online_one_request_at_a_time(case, variant)
    np.testing.assert_array_equal(pa.reference_online(case, variant), plain)


def test_the_variants_of_one_comparison_draw_one_case_and_other_instances_their_own():
    workload, values = registry.get("paged-attention"), {"batch": 2, "context_len": 300}
    shared: dict = {}
    one, two = (workload.instance(values | {"variant": v}, 24, shared=shared) for v in pa.VARIANTS)
    alone = workload.instance(values | {"variant": "2block"}, 24)
    reseeded = workload.instance(values | {"variant": "2block", "seed": 1}, 24, shared=shared)
    assert one.inputs()["key_cache"] is two.inputs()["key_cache"]
    assert alone.inputs()["key_cache"] is not one.inputs()["key_cache"]
    np.testing.assert_array_equal(alone.inputs()["key_cache"], one.inputs()["key_cache"])
    assert not np.array_equal(reseeded.inputs()["key_cache"], one.inputs()["key_cache"])
    fp32 = "plain fp32 attention"
    assert one.references({})[fp32]["out"] is two.references({})[fp32]["out"]
