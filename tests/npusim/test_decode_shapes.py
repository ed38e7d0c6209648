"""Decoding by kernel shape (`DecodeCache`) must give every kernel what decoding each instruction alone gives.

The programs are the random ones of the check's shape test: tasks of a few shapes with pooled
on-chip instructions, GM accesses that differ in where their region starts, and now and then an
odd kernel (a GM access shared by two tasks, an equal copy of a pooled instruction, a GM access
and an on-chip instruction swapped, a new on-chip object where the shape has a GM access).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from isa.errors import IsaError
from isa.program import Kernel, Tensor
from npusim.config import HardwareConfig, load_preset
from npusim.decode import DecodeCache, DecodedKernel, decode_one
from tests.isa.test_check_program_shapes import random_program


def plain(kernel: Kernel, config: HardwareConfig, tensors: Mapping[str, Tensor]) -> dict[str, list]:
    """The decoded arrays made the plain way: the cost model asked for every instruction."""
    rows = [decode_one(i, config, tensors) for i in kernel.instructions]
    flag_keys = list(dict.fromkeys(d.flag for d in rows if d.flag is not None))
    return {"kinds": [d.kind for d in rows], "occupancy": [d.occupancy for d in rows],
            "latency": [d.latency for d in rows], "nbytes": [d.nbytes for d in rows],
            "flops": [d.flops for d in rows], "pipe_of": [d.pipe for d in rows], "flag_keys": flag_keys,
            "aux": [d.transfer if d.flag is None else flag_keys.index(d.flag) for d in rows]}


def arrays(decoded: DecodedKernel) -> dict[str, list]:
    return {name: list(getattr(decoded, name)) for name in
            ("kinds", "occupancy", "latency", "nbytes", "flops", "pipe_of", "flag_keys", "aux")}


def outcome(make: Callable[[], dict[str, list]]) -> dict[str, list] | type[Exception]:
    """What decoding gives, or the error it raises (the cost model refuses an undeclared tensor)."""
    try:
        return make()
    except (KeyError, IsaError) as e:
        return type(e)


@pytest.mark.parametrize("seed", range(120))
def test_a_shared_cache_decodes_each_kernel_as_the_cost_model_does(seed: int) -> None:
    program = random_program(seed)
    config = load_preset()
    tensors = {t.name: t for t in program.tensors}
    cache = DecodeCache()
    for kernel in program.kernels:
        expected = outcome(lambda k=kernel: plain(k, config, tensors))  # type: ignore[misc]
        assert outcome(lambda k=kernel: arrays(DecodedKernel(k, config, tensors, cache))) == expected
        if not isinstance(expected, type):
            assert len(DecodedKernel(kernel, config, tensors, cache)) == len(kernel)


def test_kernels_of_one_shape_share_their_arrays_and_keep_their_own_transfers() -> None:
    program = random_program(6)  # a clean one, of 37 tasks
    config = load_preset()
    tensors = {t.name: t for t in program.tensors}
    cache = DecodeCache()
    decoded = [DecodedKernel(k, config, tensors, cache) for k in program.kernels]
    assert len(cache.shapes) < len(decoded) / 3  # few shapes, many tasks
    pairs = [(a, b) for a in decoded for b in decoded if a is not b and a.occupancy is b.occupancy]
    assert pairs
    assert any(x != y for a, b in pairs for x, y in zip(a.aux, b.aux, strict=True))


def test_a_plain_dict_still_shares_decoded_instructions() -> None:
    program = random_program(7)  # a clean one
    config = load_preset()
    tensors = {t.name: t for t in program.tensors}
    seen: dict = {}
    for kernel in program.kernels:
        assert arrays(DecodedKernel(kernel, config, tensors, seen)) == plain(kernel, config, tensors)
        assert arrays(DecodedKernel(kernel, config, tensors)) == plain(kernel, config, tensors)
    assert seen
