"""How a published figure is replayed on the simulator: one small program per kind of measurement.

Each replay is a frozen description (`Alone`, `LineFit`, `Gemm`) whose `figure(config, memo)`
simulates what it describes, timing only, and returns one number in the row's unit. `memo` is
shared by the rows of one suite run, so rows that read the same simulation (a GEMM's time and
its busy shares, a line fit's rate and latency) simulate it once.

- `Alone`: a one-instruction kernel (assembly text) alone on an idle core. Its figure is the
  instruction's occupancy (start to busy_end: how long it holds its pipe) or its completion time
  (start to end: until its result has landed), or the bytes it moved over either span (a rate).
- `LineFit`: the completion times of two transfers of different sizes on one path, read as the
  line t = latency + bytes / rate (the form in which Huawei's asc-devkit perf READMEs state an
  on-chip path); the figure is the line's rate or its latency.
- `Gemm`: the `matmul` program of the registry on the chip, numerics off; the figure is its time
  in microseconds or a pipe's busy share (as `npusim run` reports it) in percent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from isa.asm import parse_program
from isa.check import check_program
from isa.errors import CheckError
from isa.types import Pipe
from npusim.config import HardwareConfig
from npusim.results import Record
from npusim.simulate import simulate


class ValidationError(Exception):
    """A `npusim validate` request that cannot run: no row matches, or a row cannot run on the preset."""


class Span(enum.Enum):
    """Which part of an instruction's record a replay reads."""

    OCCUPANCY = "occupancy"  # start -> busy_end: the pipe is held
    COMPLETION = "completion"  # start -> end: the result has landed (a DMA's latency included)


def _check(text: str, config: HardwareConfig) -> None:
    """Raise ValidationError, on one line, if the program `text` does not fit `config`'s core."""
    try:
        check_program(parse_program(text, source="<validation>"), config.limits_by_kind())
    except CheckError as err:
        raise ValidationError(f"does not fit preset {config.name}: {err.first}") from None


def _alone(text: str, config: HardwareConfig, memo: dict[Any, Any]) -> Record:
    """The record of the one instruction of the program `text`, run alone on an idle core."""
    key = ("alone", text)
    if key not in memo:
        result = simulate(parse_program(text, source="<validation>"), config, numerics=False)
        memo[key] = result.traces[0].record(0)
    return memo[key]


@dataclass(frozen=True)
class Alone:
    """One instruction alone on an idle core: its span in cycles, or bytes moved per cycle of it."""

    text: str  # a program of one kernel of one instruction, with the .tensor lines it needs
    span: Span
    rate: bool = False  # figure = the record's bytes / span instead of the span

    slow = False

    @property
    def instruction(self) -> str:
        return self.text.strip().splitlines()[-1].strip()

    @property
    def how(self) -> str:
        what = "bytes / " if self.rate else ""
        return f"{what}{self.span.value} of `{self.instruction}` alone on an idle core"

    def check(self, config: HardwareConfig) -> None:
        _check(self.text, config)

    def figure(self, config: HardwareConfig, memo: dict[Any, Any]) -> float:
        record = _alone(self.text, config, memo)
        end = record.busy_end if self.span is Span.OCCUPANCY else record.end
        cycles = end - record.start
        return record.bytes / cycles if self.rate else float(cycles)


@dataclass(frozen=True)
class LineFit:
    """The line latency + bytes / rate through the completion times of a small and a large transfer."""

    small: str  # programs of one transfer each, as `Alone.text`
    large: str
    quantity: str  # "rate" (bytes per cycle) or "latency" (cycles)

    slow = False

    @property
    def how(self) -> str:
        small, large = (Alone(t, Span.COMPLETION).instruction for t in (self.small, self.large))
        return (f"{self.quantity} of the line through the completion times of `{small}` and `{large}`, "
                f"each alone on an idle core")

    def check(self, config: HardwareConfig) -> None:
        _check(self.small, config)
        _check(self.large, config)

    def figure(self, config: HardwareConfig, memo: dict[Any, Any]) -> float:
        a, b = (_alone(t, config, memo) for t in (self.small, self.large))
        rate = (b.bytes - a.bytes) / ((b.end - b.start) - (a.end - a.start))
        if self.quantity == "rate":
            return rate
        return (a.end - a.start) - a.bytes / rate


@dataclass(frozen=True)
class Gemm:
    """fp16 C[n,n] = A @ B by the registry's `matmul` on `cores` cube cores: time or a busy share."""

    size: int
    cores: int
    quantity: str  # "us", or a pipe's name ("M", "MTE2") for its busy share in percent

    @property
    def slow(self) -> bool:
        return self.size > 2048  # a minute or more: `--quick` leaves it out

    @property
    def how(self) -> str:
        what = ("end-to-end time (with `chip.launch_cycles`)" if self.quantity == "us"
                else f"{self.quantity} busy cycles per core over the end-to-end cycles")
        return (f"{what} of `npusim run matmul --m {self.size} --n {self.size} --k {self.size} --dtype fp16 "
                f"--cores {self.cores} --no-numerics`")

    def check(self, config: HardwareConfig) -> None:
        """Nothing before the run: the program is built for `config`, and `simulate` checks it."""

    def figure(self, config: HardwareConfig, memo: dict[Any, Any]) -> float:
        key = ("gemm", self.size, self.cores)
        if key not in memo:
            memo[key] = self._run(config)
        seconds, utilization = memo[key]
        if self.quantity == "us":
            return seconds * 1e6
        return 100 * utilization[Pipe(self.quantity)]

    def _run(self, config: HardwareConfig) -> tuple[float, dict[Pipe, float]]:
        from programs import registry  # the validate command runs a program by its registry name

        n = self.size
        try:
            options = {"m": n, "n": n, "k": n, "dtype": "fp16", "cores": self.cores}
            instance = registry.get("matmul").instance(options, config.chip.cube_cores, config)
        except ValueError as err:  # the registry's word for an option the program cannot take
            raise ValidationError(f"matmul {n}^3 on {self.cores} cores: {err}") from None
        result = simulate(instance.program, config, numerics=False)
        # a profiler's ratios count the cycles of the whole task on the core, its launch included
        kernel_share = result.cycles / (result.cycles + result.launch_cycles)
        return result.end_to_end_seconds, {p: u * kernel_share for p, u in result.utilization().items()}


Replay = Alone | LineFit | Gemm
