"""The block table a timing-only run draws without torch is the one torch draws.

`paged_attention.torch_randperm` re-draws `torch.randperm` with numpy's Mersenne Twister, so
that `make_blocks` (timing only) and `make_case` (numerics, torch references) see one table.
Each case here would break if the seeding, the draws or the shuffle differed from torch's.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from programs import paged_attention as pa


def torch_draw(n: int, seed: int) -> list[int]:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 4096, 65536])
@pytest.mark.parametrize("seed", [0, 1, 6, 2**31 - 1, 2**32, 2**32 + 9, 2**64 - 1, -1, -(2**63)])
def test_the_permutation_is_torchs(n, seed):
    """Sizes from none to a batch 256 x 32768 pool; seeds at the edges of the 32 bits torch keeps."""
    assert pa.torch_randperm(n, seed) == torch_draw(n, seed)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 3000), seed=st.integers(-(2**63), 2**64 - 1))
def test_the_permutation_is_torchs_for_any_size_and_seed(n, seed):
    assert pa.torch_randperm(n, seed) == torch_draw(n, seed)


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1])
def test_a_seed_torch_refuses_is_refused(seed):
    with pytest.raises(ValueError):
        torch.Generator().manual_seed(seed)
    with pytest.raises(ValueError, match="out of range"):
        pa.torch_randperm(5, seed)


@pytest.mark.parametrize("seed", [True, np.int64(3), 2.0])
def test_a_seed_that_is_not_an_int_is_refused_as_torch_refuses_it(seed):
    with pytest.raises((TypeError, RuntimeError)):  # torch says "expected a long" or "an integer is required"
        torch.Generator().manual_seed(seed)
    with pytest.raises(TypeError, match="seed must be an integer"):
        pa.torch_randperm(5, seed)


@settings(max_examples=40, deadline=None)
@given(lens=st.lists(st.integers(1, 700), min_size=1, max_size=6), seed=st.integers(0, 2**40),
       spare=st.integers(0, 5))
def test_make_blocks_draws_the_table_of_make_case(lens, seed, spare):
    shape = pa.Shape(batch=len(lens), num_heads=2, num_kv_heads=1, head_dim=8, block_size=16)
    blocks = pa.make_blocks(shape, lens, seed=seed, spare_blocks=spare)
    case = pa.make_case(shape, lens, seed=seed, spare_blocks=spare)
    np.testing.assert_array_equal(blocks.block_table, case.block_table)
    assert blocks.num_blocks == case.num_blocks
