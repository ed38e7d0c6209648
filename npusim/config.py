"""Hardware configuration: frozen dataclasses loaded from TOML presets, with dotted-name overrides.

A preset is a TOML file shipped in `npusim/presets/` (or any path). Every field must be present and
of the right type; unknown keys are errors that list the valid ones. Overrides use dotted names,
`config.replace({"buffers.ub_bytes": 262144})`, or strings from the command line (`parse_override`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from isa.cores import CoreKind
from isa.limits import CoreLimits
from isa.types import Space
from npusim import tomltext
from npusim.ranges import Valid, shown


class ConfigError(ValueError):
    """A preset or an override names an unknown key or gives a value of the wrong type or range."""


# What each kind of number may be (`npusim.ranges`): far beyond any real chip, inside what the model
# computes exactly. A run's cycle count must stay below 2^62 (int64 records; the functional state's
# final flush): one latency is at most 10^9 cycles and the slowest rate, 0.001 bytes per cycle, moves
# a full buffer in 1.7e10, so a run would need some 10^8 of them in a row to get there. A numeric run
# allocates every buffer at full size on each core it uses: 16 MiB, 16 times the largest real one.
Cycles = Annotated[int, Valid(0, 10**9)]
FracCycles = Annotated[float, Valid(0, 1e9)]  # per-row and per-repeat costs
StepCycles = Annotated[int, Valid(1, 10**9)]  # a step that takes no time would be free work
Rate = Annotated[float, Valid(1e-3, 1e6, unit="bytes per cycle")]
Gbps = Annotated[float, Valid(1e-3, 1e6, unit="GB/s")]
BufferBytes = Annotated[int, Valid(1, 1 << 24, unit="bytes")]
Align = Annotated[int, Valid(1, 1 << 16, power_of_two=True, unit="bytes")]
Cores = Annotated[int, Valid(1, 1 << 24)]  # a chip pools at most one core per task (npusim.chip)
# a power of two as every chip's (16): builders grow tiles from it by doubling (programs.target)
Fractal = Annotated[int, Valid(1, 256, power_of_two=True)]


@dataclass(frozen=True)
class Chip:
    """How many cores of each kind the chip has and how tasks reach them."""

    coupled: bool  # true: one core kind with every pipe (310P-like); false: split AIC + AIV
    cube_cores: Cores  # AIC on a split chip; the core count on a coupled chip
    vector_cores: Annotated[int, Valid(0, 1 << 24)]  # AIV on a split chip; 0 on a coupled chip
    dispatch_cycles: Cycles  # from a task becoming ready to its first instruction issuing on a core
    launch_cycles: Cycles  # per run, before its first task: the kernel launch a profiler's task time counts


@dataclass(frozen=True)
class Frontend:
    """The scalar front-end that issues each core's instructions in program order."""

    issue_cycles: Cycles  # per instruction issued
    queue_depth: Annotated[int, Valid(1, 1 << 16)]  # instructions each pipe's queue holds before issue stalls


@dataclass(frozen=True)
class Buffers:
    """On-chip buffer capacities and start-address alignments, in bytes."""

    l1_bytes: BufferBytes
    l0a_bytes: BufferBytes
    l0b_bytes: BufferBytes
    l0c_bytes: BufferBytes
    ub_bytes: BufferBytes
    l1_align: Align  # powers of two: a builder's strictest alignment is then a multiple of each
    l0a_align: Align
    l0b_align: Align
    l0c_align: Align
    ub_align: Align


@dataclass(frozen=True)
class Sync:
    """Hardware synchronisation resources and costs."""

    event_ids: Annotated[int, Valid(1, 1024)]  # event ids per (source pipe, destination pipe) pair
    flag_cycles: Cycles  # from a flag firing on its source pipe to the waiting pipe seeing it


@dataclass(frozen=True)
class Mte2:
    """GM -> L1 / UB transfers."""

    latency_cycles: Cycles  # fixed cost of a transfer, overlapped with later transfers
    gm_to_l1_bytes_per_cycle: Rate
    gm_to_ub_bytes_per_cycle: Rate
    # a GM row moves in whole bursts: short rows waste the rest of theirs
    burst_bytes: Annotated[int, Valid(1, 4096, power_of_two=True, unit="bytes")]
    row_cycles: FracCycles  # extra per row when rows are not contiguous in GM (strided or partial)


@dataclass(frozen=True)
class Mte1:
    """L1 -> L0A / L0B moves."""

    latency_cycles: Cycles
    l1_to_l0a_bytes_per_cycle: Rate
    l1_to_l0b_bytes_per_cycle: Rate


@dataclass(frozen=True)
class Mte3:
    """UB -> GM transfers."""

    latency_cycles: Cycles
    ub_to_gm_bytes_per_cycle: Rate
    row_cycles: FracCycles  # extra per row when rows are not contiguous in GM


@dataclass(frozen=True)
class Fixpipe:
    """L0C -> GM (or UB on a coupled core) with on-the-fly conversion."""

    latency_cycles: Cycles
    l0c_to_gm_bytes_per_cycle: Rate
    l0c_to_ub_bytes_per_cycle: Annotated[float, Valid(1e-3, 1e6, zero="no such path", unit="bytes per cycle")]
    row_cycles: FracCycles  # extra per row when rows are not contiguous in GM


@dataclass(frozen=True)
class Cube:
    """The cube unit: one m0 x k0 x n0 fractal step per cycle (fp32: fp32_step_cycles), k0 = k0_bytes / size.
    """

    m0: Fractal
    n0: Fractal
    # 32: 16 fp16/bf16 elements, 32 int8, 8 fp32
    k0_bytes: Annotated[int, Valid(1, 1024, power_of_two=True, unit="bytes")]
    fp32_step_cycles: StepCycles  # cycles per fractal step with fp32 inputs (1 for the others)
    startup_cycles: Cycles  # per mmad, occupies the pipe
    latency_cycles: Cycles  # pipeline drain after the last fractal, does not occupy the pipe


@dataclass(frozen=True)
class VectorOp:
    """One family of vector instructions: startup + rows x row_cycles + repeats x repeat_cycles.

    Repeats are the largest operand's 256-byte repeats, counted per row for row-wise families
    (reductions and row expansions each take every row in its own repeats).
    """

    startup_cycles: FracCycles
    repeat_cycles: FracCycles
    row_cycles: FracCycles


@dataclass(frozen=True)
class Vector:
    """The vector unit: an op's occupancy by family (`VectorOp`); a repeat is `bytes_per_repeat` bytes."""

    bytes_per_repeat: Annotated[int, Valid(1, 1 << 16, power_of_two=True, unit="bytes")]
    latency_cycles: Cycles
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

    bandwidth_gbps: Gbps  # its latency is part of each DMA engine's measured latency_cycles


@dataclass(frozen=True)
class L2:
    """Chip-wide L2 cache in front of HBM."""

    capacity_bytes: Annotated[int, Valid(1, 1 << 40, unit="bytes")]
    # a run tracks every line of its GM tensors: 32-byte lines already mean 8 bytes of state per 32 of GM
    line_bytes: Annotated[int, Valid(32, 4096, power_of_two=True, unit="bytes")]
    bandwidth_gbps: Gbps
    hit_latency_cycles: Cycles  # replaces the DMA engine's latency_cycles on a hit
    hints: bool  # honour the tensors' L2 cache hints (false: every tensor is cached, a what-if)


@dataclass(frozen=True)
class HardwareConfig:
    """A whole chip's description; every number comes from a preset file."""

    name: str
    description: str
    clock_ghz: Annotated[float, Valid(0.01, 100, unit="GHz")]
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
        """A copy with fields changed by dotted name, e.g. {"buffers.ub_bytes": 262144}.

        Raises ConfigError naming the key for an unknown key, a section, the preset's own name or
        description, or a value of the wrong type or outside the key's range.
        """
        data = dataclasses.asdict(self)
        for key, value in overrides.items():
            t, valid = _settable(key)
            *path, leaf = key.split(".")
            table = data
            for part in path:
                table = table[part]
            table[leaf] = _check_scalar(value, t, valid, key)
        return _build(HardwareConfig, data, "override")

    def get(self, key: str) -> Any:
        """The value of a dotted key (a section's key gives the section)."""
        _field(key)
        value: Any = self
        for part in key.split("."):
            value = getattr(value, part)
        return value


# The preset's identity, not hardware: an override that renamed the chip would be reported as a
# preset that does not exist.
_IDENTITY = ("name", "description")


def _field(key: Any) -> tuple[type, Valid | None]:
    """The type and range of a dotted key (a section's key: its dataclass, None); ConfigError if unknown."""
    if not isinstance(key, str):
        raise _unknown_key(str(key))
    found: tuple[type, Valid | None] = (HardwareConfig, None)
    for part in key.split("."):
        fields = _fields(found[0]) if dataclasses.is_dataclass(found[0]) else {}
        if part not in fields:
            raise _unknown_key(key)
        found = fields[part]
    return found


def _settable(key: Any) -> tuple[type, Valid | None]:
    """The type and range of a key an override may set: a leaf, and not the preset's identity."""
    t, valid = _field(key)
    if dataclasses.is_dataclass(t):
        first = dataclasses.fields(t)[0].name
        raise ConfigError(f"{key} is a section; set one of its keys, e.g. {key}.{first}")
    if key in _IDENTITY:
        raise ConfigError(f"{key} is the preset's own {key}, not a hardware value, and cannot be overridden; "
                          f"for a chip of your own, copy a preset file, edit it and load it by its path")
    return t, valid


def _unknown_key(key: str) -> ConfigError:
    """An error for an unknown dotted key: the closest valid keys, or those of its section."""
    valid = keys()
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
    section = key.split(".", 1)[0] + "."
    near = close or [k for k in valid if k.startswith(section)] or valid
    hint = "did you mean" if close else "valid keys"
    return ConfigError(f"unknown config key {shown(key)}; {hint}: {', '.join(near)} "
                       f"(`npusim presets --keys` lists them all)")


def keys(cls: type = HardwareConfig, prefix: str = "") -> list[str]:
    """Every dotted key a preset has, in declaration order."""
    out: list[str] = []
    for name, (t, _) in _fields(cls).items():
        if dataclasses.is_dataclass(t):
            out += keys(t, f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


def valid_values(key: str) -> str:
    """What a leaf key accepts, in words: "an integer from 1 to 65536", "true or false", "text"."""
    t, valid = _field(key)
    if valid is not None:
        return valid.describe(t is int)
    return {bool: "true or false", str: "text"}.get(t, "a table")


@functools.cache
def _fields(cls: type) -> dict[str, tuple[type, Valid | None]]:
    """A config dataclass's fields: (type, declared range) by name, in declaration order.

    Resolving the annotations compiles code: done once per class. A numeric field without a
    range is a bug in this module, found on first use.
    """
    hints = typing.get_type_hints(cls, include_extras=True)
    out: dict[str, tuple[type, Valid | None]] = {}
    for f in dataclasses.fields(cls):
        t, valid = hints[f.name], None
        if typing.get_origin(t) is Annotated:
            t, valid = typing.get_args(t)[:2]
        if t in (int, float) and not isinstance(valid, Valid):
            raise TypeError(f"{cls.__name__}.{f.name} declares no range: Annotated[{t.__name__}, Valid(...)]")
        out[f.name] = (t, valid)
    return out


def _check_scalar(value: Any, t: type, valid: Valid | None, name: str) -> Any:
    """`value` as field type `t` (an int is a float too), or ConfigError naming `name` and what is valid."""
    if t is bool and not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {shown(value)}")
    if t is str and not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {shown(value)}")
    if t not in (int, float) or valid is None:
        return value
    if isinstance(value, bool) or not isinstance(value, int if t is int else (int, float)):
        raise ConfigError(f"{name} must be {'an integer' if t is int else 'a number'}, got {shown(value)}")
    if not valid.accepts(value):
        raise ConfigError(f"{name} must be {valid.describe(t is int)}, got {shown(value)}")
    return float(value) if t is float else value


def _build(cls: type, table: Mapping[str, Any], where: str, prefix: str = "") -> Any:
    """A config dataclass from a table (a preset's TOML or a config's dict), every value checked."""
    fields = _fields(cls)
    section = f"[{prefix[:-1]}]: " if prefix else ""
    unknown = [k if k.isidentifier() else shown(k) for k in sorted(map(str, set(table) - set(fields)))]
    if unknown:
        raise ConfigError(f"{where}: {section}unknown key(s) {', '.join(unknown)}; "
                          f"valid: {', '.join(fields)}")
    missing = [n for n in fields if n not in table]
    if missing:
        raise ConfigError(f"{where}: {section}missing key(s) {', '.join(missing)}")
    kwargs = {}
    for name, (t, valid) in fields.items():
        value, dotted = table[name], prefix + name
        if dataclasses.is_dataclass(t):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: {dotted} must be a table [{dotted}], got {shown(value)}")
            kwargs[name] = _build(t, value, where, dotted + ".")
        else:
            kwargs[name] = _check_scalar(value, t, valid, f"{where}: {dotted}")
    return cls(**kwargs)


def available_presets() -> list[str]:
    """Names of the presets shipped with npusim."""
    folder = resources.files("npusim") / "presets"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def load_preset(name_or_path: str | Path = "910b2") -> HardwareConfig:
    """Load a shipped preset by name or a TOML file by path.

    Raises ConfigError for an unknown name, a path that is missing, a directory or not a regular
    file, and a file that is not UTF-8 TOML holding every key with a valid value; OSError when an
    existing file cannot be read (the caller names its path).
    """
    if "\0" in str(name_or_path):
        raise ConfigError(f"unknown preset {shown(str(name_or_path))}: a name or a path has no NUL character")
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return _parse(_read(path), str(path))
    return _shipped(str(name_or_path))


def _read(path: Path) -> str:
    """A preset file's text: refused before reading unless it is a non-empty regular UTF-8 file."""
    if path.is_dir():
        raise ConfigError(f"preset file {path} is a directory")
    if not path.exists():
        raise ConfigError(f"preset file {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"preset file {path} is not a regular file")
    data = path.read_bytes()
    if not data:
        raise ConfigError(f"preset file {path} is empty")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:  # the user's bytes, decoded here: nothing deeper runs
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"preset file {path} is not UTF-8 TOML text: byte 0x{data[err.start]:02x} "
                          f"at line {line} cannot be decoded") from None


@functools.cache
def _shipped(name: str) -> HardwareConfig:
    """A shipped preset, parsed once per process (configs are immutable, so sharing is safe)."""
    names = available_presets()
    if name not in names:
        raise ConfigError(f"unknown preset {shown(name)}; available: {', '.join(names)}")
    return _parse((resources.files("npusim") / "presets" / f"{name}.toml").read_text(), f"preset {name}")


def _parse(text: str, where: str) -> HardwareConfig:
    """A config from TOML text; `where` (the file or preset) opens every error message."""
    problem = tomltext.problem(text)
    if problem:
        raise ConfigError(f"{where}: not a preset: {problem}")
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    return _build(HardwareConfig, table, where)


def parse_override(text: str, config: HardwareConfig) -> tuple[str, Any]:
    """Parse `key=value` from the command line into a typed, checked (key, value) pair for `replace`.

    Every preset has the same keys, so `config` only names the preset overridden. Raises
    ConfigError for text that is not key=value, a key `replace` refuses, or a value that is not of
    the key's type or not in its range.
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ConfigError(f"override {shown(text)} must look like key=value, e.g. buffers.ub_bytes=262144")
    t, valid = _settable(key)
    digits = raw.lstrip("+-")
    if t is int and valid is not None and digits.isascii() and digits.isdigit() and len(digits) > 100:
        # out of every range, and int() refuses more than 4300 digits
        raise ConfigError(f"{key} must be {valid.describe(True)}, got an integer of {len(digits)} digits")
    return key, _check_scalar(_from_text(raw, t, key), t, valid, key)


def _from_text(raw: str, t: type, key: str) -> Any:
    """The value `raw` spells for a key of type `t` (ints in Python's notation: 0x40000, 1_000)."""
    if t is str:
        return raw
    if t is bool:
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
    else:
        try:
            return int(raw, 0) if t is int else float(raw)
        except ValueError:
            pass
    raise ConfigError(f"{key} takes {t.__name__} values, got {shown(raw)}; valid: {valid_values(key)}")
