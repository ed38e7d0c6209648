"""The kinds of core are declared once (`isa.cores`); the program format, the config and the chip read it."""

import pytest

from isa import Barrier, DType, GmRegion, Kernel, Load, Pipe, SetFlag, Space, Tile
from isa.cores import CORES, CoreKind
from isa.limits import CoreLimits
from npusim.chip import core_names
from npusim.config import ConfigError, available_presets, load_preset

ON_CHIP = [s for s in Space if s is not Space.GM]


def test_the_table_says_what_the_ascend_cores_have():
    # The split architecture as the Ascend C guide describes it: AIC runs the cube pipeline over
    # L1/L0A/L0B/L0C, AIV the vector pipeline over UB; a coupled core is both in one.
    assert CoreKind.CUBE.pipes == {Pipe.S, Pipe.MTE2, Pipe.MTE1, Pipe.M, Pipe.FIX}
    assert CoreKind.CUBE.spaces == {Space.L1, Space.L0A, Space.L0B, Space.L0C}
    assert CoreKind.VECTOR.pipes == {Pipe.S, Pipe.MTE2, Pipe.V, Pipe.MTE3}
    assert CoreKind.VECTOR.spaces == {Space.UB}
    assert CoreKind.MIXED.pipes == set(Pipe) and CoreKind.MIXED.spaces == set(ON_CHIP)
    assert [(k.label, k.prefix) for k in CoreKind] == [
        ("AIC (cube core)", "aic"), ("AIV (vector core)", "aiv"), ("core", "core")]
    assert set(CORES) == set(CoreKind)


def _only(kind: CoreKind) -> set:
    """What a core of `kind` has that the other split kind does not."""
    other = CoreKind.VECTOR if kind is CoreKind.CUBE else CoreKind.CUBE
    return (kind.pipes - other.pipes) | (kind.spaces - other.spaces)


@pytest.mark.parametrize("pipe", list(Pipe))
def test_a_kernel_on_one_pipe_is_of_the_kind_that_alone_has_it(pipe):
    want = CoreKind.VECTOR if pipe in _only(CoreKind.VECTOR) else CoreKind.CUBE  # shared pipes: cube
    assert CoreKind.of(Kernel("k", (Barrier(pipe),))) is want
    assert CoreKind.of(Kernel("k", (SetFlag(Pipe.S, pipe, 0),))) is want


@pytest.mark.parametrize("space", ON_CHIP)
def test_a_kernel_touching_one_buffer_is_of_the_kind_that_has_it(space):
    # MTE2, which both kinds have: the buffer alone decides.
    load = Load(Tile(space, 0, DType.FP32, (1, 8)), GmRegion("x", 0, 0, 1, 8, DType.FP32))
    want = CoreKind.CUBE if space in CoreKind.CUBE.spaces else CoreKind.VECTOR
    assert CoreKind.of(Kernel("k", (load,))) is want


def test_a_kernel_with_something_of_each_kind_is_mixed():
    for cube in _only(CoreKind.CUBE) & set(Pipe):
        for vector in _only(CoreKind.VECTOR) & set(Pipe):
            assert CoreKind.of(Kernel("k", (Barrier(cube), Barrier(vector)))) is CoreKind.MIXED


@pytest.mark.parametrize("preset", available_presets())
def test_the_config_gives_each_kind_the_pipes_and_buffers_of_the_table(preset):
    config = load_preset(preset)
    by_kind = config.limits_by_kind()
    for kind, limits in by_kind.items():
        core = CoreKind.MIXED if config.chip.coupled else kind  # a coupled chip's one core runs every kind
        assert limits.pipes == core.pipes and set(limits.capacity) == core.spaces == set(limits.alignment)
        assert limits.name == core.label
    assert set(by_kind) == (set(CoreKind) if config.chip.coupled else {CoreKind.CUBE, CoreKind.VECTOR})
    everything = config.core_limits()
    assert everything.pipes == set(Pipe) and set(everything.capacity) == set(ON_CHIP)


def test_a_split_chip_has_no_core_for_mixed_kernels():
    with pytest.raises(ConfigError, match="910b2 is a split chip: no core runs mixed cube and vector"):
        load_preset("910b2").core_limits(CoreKind.MIXED)


@pytest.mark.parametrize("preset", available_presets())
def test_the_chip_names_its_cores_by_the_prefix_of_their_kind(preset):
    config = load_preset(preset)
    chip = config.chip
    if chip.coupled:
        want = [f"core{i}" for i in range(chip.cube_cores)]
    else:
        want = [f"aic{i}" for i in range(chip.cube_cores)] + [f"aiv{i}" for i in range(chip.vector_cores)]
    assert core_names(config) == want


def test_limits_without_a_kind_are_a_core_with_every_pipe():
    limits = CoreLimits({Space.UB: 1024}, {Space.UB: 32}, 8)
    assert limits.pipes == set(Pipe) and limits.name == "core"
    assert not hasattr(limits, "spaces")  # the buffers a core has are the keys of `capacity`
