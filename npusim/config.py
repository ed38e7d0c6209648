"""Hardware configuration: frozen dataclasses loaded from TOML presets, with dotted-name overrides.

A preset is a TOML file shipped in `npusim/presets/` (or any path). Every field must be present and
of the right type; unknown keys are errors that list the valid ones. Overrides use dotted names,
`config.replace({"buffers.ub_bytes": 262144})`, or strings from the command line (`parse_override`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from isa.cores import CoreKind
from isa.limits import CoreLimits
from isa.types import Space


class ConfigError(ValueError):
    """A preset or an override names an unknown key or gives a value of the wrong type."""


@dataclass(frozen=True)
class Chip:
    """How many cores of each kind the chip has and how tasks reach them."""

    coupled: bool  # true: one core kind with every pipe (310P-like); false: split AIC + AIV
    cube_cores: int  # AIC on a split chip; the core count on a coupled chip
    vector_cores: int  # AIV on a split chip; 0 on a coupled chip
    dispatch_cycles: int  # from a task becoming ready to its first instruction issuing on a core
    launch_cycles: int  # per run, before its first task: the kernel launch a profiler's task time counts


@dataclass(frozen=True)
class Frontend:
    """The scalar front-end that issues each core's instructions in program order."""

    issue_cycles: int  # per instruction issued
    queue_depth: int  # instructions each pipe's queue holds before issue stalls


@dataclass(frozen=True)
class Buffers:
    """On-chip buffer capacities and start-address alignments, in bytes."""

    l1_bytes: int
    l0a_bytes: int
    l0b_bytes: int
    l0c_bytes: int
    ub_bytes: int
    l1_align: int
    l0a_align: int
    l0b_align: int
    l0c_align: int
    ub_align: int


@dataclass(frozen=True)
class Sync:
    """Hardware synchronisation resources and costs."""

    event_ids: int  # event ids per (source pipe, destination pipe) pair
    flag_cycles: int  # from a flag firing on its source pipe to the waiting pipe seeing it


@dataclass(frozen=True)
class Mte2:
    """GM -> L1 / UB transfers."""

    latency_cycles: int  # fixed cost of a transfer, overlapped with later transfers
    gm_to_l1_bytes_per_cycle: float
    gm_to_ub_bytes_per_cycle: float
    burst_bytes: int  # a GM row moves in whole bursts: short rows waste the rest of theirs
    row_cycles: float  # extra per row when rows are not contiguous in GM (strided or partial)


@dataclass(frozen=True)
class Mte1:
    """L1 -> L0A / L0B moves."""

    latency_cycles: int
    l1_to_l0a_bytes_per_cycle: float
    l1_to_l0b_bytes_per_cycle: float


@dataclass(frozen=True)
class Mte3:
    """UB -> GM transfers."""

    latency_cycles: int
    ub_to_gm_bytes_per_cycle: float
    row_cycles: float  # extra per row when rows are not contiguous in GM


@dataclass(frozen=True)
class Fixpipe:
    """L0C -> GM (or UB on a coupled core) with on-the-fly conversion."""

    latency_cycles: int
    l0c_to_gm_bytes_per_cycle: float
    l0c_to_ub_bytes_per_cycle: float
    row_cycles: float  # extra per row when rows are not contiguous in GM


@dataclass(frozen=True)
class Cube:
    """The cube unit: one m0 x k0 x n0 fractal step per cycle (fp32: fp32_step_cycles), k0 = k0_bytes / size.
    """

    m0: int
    n0: int
    k0_bytes: int  # 32: 16 fp16/bf16 elements, 32 int8, 8 fp32
    fp32_step_cycles: int  # cycles per fractal step with fp32 inputs (1 for the others)
    startup_cycles: int  # per mmad, occupies the pipe
    latency_cycles: int  # pipeline drain after the last fractal, does not occupy the pipe


@dataclass(frozen=True)
class VectorOp:
    """One family of vector instructions: startup + rows x row_cycles + repeats x repeat_cycles.

    Repeats are the largest operand's 256-byte repeats, counted per row for row-wise families
    (reductions and row expansions each take every row in its own repeats).
    """

    startup_cycles: float
    repeat_cycles: float
    row_cycles: float


@dataclass(frozen=True)
class Vector:
    """The vector unit: an op's occupancy by family (`VectorOp`); a repeat is `bytes_per_repeat` bytes."""

    bytes_per_repeat: int
    latency_cycles: int
    binary: VectorOp  # vadd vsub vmul vmax vmin
    div: VectorOp  # vdiv
    scalar: VectorOp  # vadds vmuls vmaxs vmins
    exp: VectorOp
    copy: VectorOp
    cast: VectorOp
    dup: VectorOp
    fillpad: VectorOp
    rowmax: VectorOp  # vrowmax, per row of the source
    rowsum: VectorOp  # vrowsum, per row of the source
    rowexpand: VectorOp  # vrowexpandsub / mul / div, per row


@dataclass(frozen=True)
class Hbm:
    """Chip-wide high-bandwidth memory, shared by every core's GM traffic."""

    bandwidth_gbps: float  # its latency is part of each DMA engine's measured latency_cycles


@dataclass(frozen=True)
class L2:
    """Chip-wide L2 cache in front of HBM."""

    capacity_bytes: int
    line_bytes: int
    bandwidth_gbps: float
    hit_latency_cycles: int  # replaces the DMA engine's latency_cycles on a hit
    hints: bool  # honour the tensors' L2 cache hints (false: every tensor is cached, a what-if)


@dataclass(frozen=True)
class HardwareConfig:
    """A whole chip's description; every number comes from a preset file."""

    name: str
    description: str
    clock_ghz: float
    chip: Chip
    frontend: Frontend
    buffers: Buffers
    sync: Sync
    mte2: Mte2
    mte1: Mte1
    mte3: Mte3
    fixpipe: Fixpipe
    cube: Cube
    vector: Vector
    hbm: Hbm
    l2: L2

    def core_limits(self, kind: CoreKind | None = None) -> CoreLimits:
        """What `isa.check` needs of the core that runs `kind` kernels (None: every buffer and pipe).

        A split chip runs each kind on a core of that kind, with the pipes and buffers `isa.cores`
        gives it (its cube core, AIC, has no UB and no V); a coupled chip runs every kind on its one
        kind of core, which has everything (MIXED). The sizes come from `buffers`.
        """
        if kind is CoreKind.MIXED and not self.chip.coupled:
            raise ConfigError(f"{self.name} is a split chip: no core runs mixed cube and vector kernels")
        core = CoreKind.MIXED if kind is None or self.chip.coupled else kind
        b = self.buffers
        capacity = {Space.L1: b.l1_bytes, Space.L0A: b.l0a_bytes, Space.L0B: b.l0b_bytes,
                    Space.L0C: b.l0c_bytes, Space.UB: b.ub_bytes}
        alignment = {Space.L1: b.l1_align, Space.L0A: b.l0a_align, Space.L0B: b.l0b_align,
                     Space.L0C: b.l0c_align, Space.UB: b.ub_align}
        return CoreLimits({s: v for s, v in capacity.items() if s in core.spaces},
                          {s: v for s, v in alignment.items() if s in core.spaces},
                          self.sync.event_ids, core.pipes, core.label)

    def limits_by_kind(self) -> dict[CoreKind, CoreLimits]:
        """The core that runs each kind of kernel on this chip (a split chip has none for MIXED)."""
        kinds = [k for k in CoreKind if self.chip.coupled or k is not CoreKind.MIXED]
        return {kind: self.core_limits(kind) for kind in kinds}

    def replace(self, overrides: Mapping[str, Any]) -> HardwareConfig:
        """A copy with fields changed by dotted name, e.g. {"buffers.ub_bytes": 262144}."""
        data = dataclasses.asdict(self)
        for key, value in overrides.items():
            *path, leaf = key.split(".")
            table = data
            for part in path:
                if not isinstance(table.get(part), dict):
                    raise _unknown_key(key)
                table = table[part]
            if leaf not in table or isinstance(table[leaf], dict):
                raise _unknown_key(key)
            table[leaf] = value
        return _build(HardwareConfig, data, "override")

    def get(self, key: str) -> Any:
        """The value of a dotted key."""
        value: Any = self
        for part in key.split("."):
            if not dataclasses.is_dataclass(value) or not hasattr(value, part):
                raise _unknown_key(key)
            value = getattr(value, part)
        return value


def _unknown_key(key: str) -> ConfigError:
    """An error for an unknown dotted key: the closest valid keys, or those of its section."""
    valid = keys()
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
    section = key.split(".", 1)[0] + "."
    near = close or [k for k in valid if k.startswith(section)] or valid
    hint = "did you mean" if close else "valid keys"
    return ConfigError(f"unknown config key {key!r}; {hint}: {', '.join(near)} "
                       f"(`npusim presets --keys` lists them all)")


def keys(cls: type = HardwareConfig, prefix: str = "") -> list[str]:
    """Every dotted key a preset has, in declaration order."""
    out: list[str] = []
    for f in dataclasses.fields(cls):
        t = _hints(cls)[f.name]
        if dataclasses.is_dataclass(t):
            out += keys(t, f"{prefix}{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


# Fields that must be strictly positive (everything numeric must at least not be negative): sizes,
# rates and counts a division or a loop depends on. Zero is meaningful for the others (no latency,
# no path: fixpipe.l0c_to_ub_bytes_per_cycle = 0 on split cores, no vector cores on a coupled chip).
_POSITIVE = frozenset({
    "clock_ghz", "cube_cores", "queue_depth", "l1_bytes", "l0a_bytes", "l0b_bytes", "l0c_bytes", "ub_bytes",
    "l1_align", "l0a_align", "l0b_align", "l0c_align", "ub_align", "event_ids", "gm_to_l1_bytes_per_cycle",
    "gm_to_ub_bytes_per_cycle", "burst_bytes", "l1_to_l0a_bytes_per_cycle", "l1_to_l0b_bytes_per_cycle",
    "ub_to_gm_bytes_per_cycle", "l0c_to_gm_bytes_per_cycle", "m0", "n0", "k0_bytes", "bytes_per_repeat",
    "fp32_step_cycles",
    "bandwidth_gbps", "capacity_bytes", "line_bytes",
})


def _check_scalar(value: Any, t: type, where: str) -> Any:
    if t is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if t in (int, float) and (isinstance(value, bool) or not isinstance(value, t)):
        raise ConfigError(f"{where} must be {'an integer' if t is int else 'a number'}, got {value!r}")
    if t is str and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    if t is bool and not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if t is float and not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    if t in (int, float) and value < 0:
        raise ConfigError(f"{where} must not be negative, got {value!r}")
    if t in (int, float) and value == 0 and where.rsplit(": ", 1)[-1] in _POSITIVE:
        raise ConfigError(f"{where} must be positive, got {value!r}")
    return value


def _build(cls: type, table: Mapping[str, Any], where: str) -> Any:
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(table) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(names)}")
    missing = [n for n in names if n not in table]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    kwargs = {}
    for name in names:
        t, value, at = hints[name], table[name], f"{where}: {name}"
        if dataclasses.is_dataclass(t):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{at} must be a table [{name}]")
            kwargs[name] = _build(t, value, f"{where}: [{name}]")
        else:
            kwargs[name] = _check_scalar(value, t, at)
    return cls(**kwargs)


def available_presets() -> list[str]:
    """Names of the presets shipped with npusim."""
    folder = resources.files("npusim") / "presets"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A config dataclass's field types (resolving them compiles code: done once per class)."""
    return typing.get_type_hints(cls)


def load_preset(name_or_path: str | Path = "910b2") -> HardwareConfig:
    """Load a shipped preset by name or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"preset file {path} does not exist")
        return _parse(path.read_text(), str(path))
    return _shipped(str(name_or_path))


@functools.cache
def _shipped(name: str) -> HardwareConfig:
    """A shipped preset, parsed once per process (configs are immutable, so sharing is safe)."""
    names = available_presets()
    if name not in names:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(names)}")
    return _parse((resources.files("npusim") / "presets" / f"{name}.toml").read_text(), f"preset {name}")


def _parse(text: str, where: str) -> HardwareConfig:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    return _build(HardwareConfig, table, where)


def parse_override(text: str, config: HardwareConfig) -> tuple[str, Any]:
    """Parse `key=value` from the command line into a typed (key, value) pair for `replace`."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. buffers.ub_bytes=262144")
    current = config.get(key.strip())
    if dataclasses.is_dataclass(current):
        first = dataclasses.fields(current)[0].name
        raise ConfigError(f"{key} is a section; set one of its keys, e.g. {key}.{first}")
    raw = raw.strip()
    try:
        if isinstance(current, bool):
            if raw.lower() not in ("true", "false"):
                raise ValueError
            return key.strip(), raw.lower() == "true"
        if isinstance(current, int):
            return key.strip(), int(raw, 0)
        if isinstance(current, float):
            return key.strip(), float(raw)
    except ValueError:
        raise ConfigError(f"{key} takes {type(current).__name__} values, got {raw!r}") from None
    return key.strip(), raw
