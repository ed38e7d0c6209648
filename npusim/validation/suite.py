"""Run the published-measurement suite on a configuration and judge each row against its tolerance."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from isa.errors import CheckError
from npusim.config import HardwareConfig
from npusim.validation.measurements import Measurement
from npusim.validation.replay import ValidationError

__all__ = ["Outcome", "ValidationError", "check", "mean_abs_error", "run", "select"]


@dataclass(frozen=True)
class Outcome:
    """A measurement and what the simulator gives for it."""

    measurement: Measurement
    simulated: float

    @property
    def ratio(self) -> float:
        """simulated / published: above 1, the simulator is slower (or a rate or share is higher)."""
        return self.simulated / self.measurement.published

    @property
    def error(self) -> float:
        """|simulated / published - 1|."""
        return abs(self.ratio - 1)

    @property
    def ok(self) -> bool:
        return self.error <= self.measurement.tolerance + 1e-12  # a ratio on the bound passes

    def as_json(self) -> dict[str, Any]:
        m = self.measurement
        return {"name": m.name, "group": m.group, "source": m.source, "published": m.published,
                "simulated": self.simulated, "unit": m.unit, "ratio": self.ratio, "error": self.error,
                "tolerance": m.tolerance, "ok": self.ok, "replay": m.replay.how}


def mean_abs_error(outcomes: Sequence[Outcome]) -> float:
    """The mean of |simulated / published - 1| over the rows (0 for none)."""
    return sum(o.error for o in outcomes) / len(outcomes) if outcomes else 0.0


def select(measurements: Iterable[Measurement], quick: bool = False,
           only: Sequence[str] = ()) -> tuple[list[Measurement], list[Measurement]]:
    """(rows to run, rows left out): `quick` leaves out the slow rows, `only` keeps rows whose name
    contains one of its texts (case-insensitive). Raises ValidationError if no row is left to run."""
    wanted = [m for m in measurements
              if not only or any(text.lower() in m.name.lower() for text in only)]
    run = [m for m in wanted if not (quick and m.replay.slow)]
    if not run:
        what = f"no row's name contains {' or '.join(map(repr, only))}" if only else "no row to run"
        raise ValidationError(what + ("" if not quick else " (--quick leaves out the slow rows)"))
    return run, [m for m in wanted if m not in run]


def check(measurements: Iterable[Measurement], config: HardwareConfig) -> None:
    """Raise ValidationError if a row's small program does not fit `config` (found before any runs)."""
    for m in measurements:
        try:
            m.replay.check(config)
        except ValidationError as err:
            raise ValidationError(f"row {m.name!r}: {err}") from None


def run(measurements: Sequence[Measurement], config: HardwareConfig,
        on_row: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Replay every measurement on `config`, in order; `on_row` sees each outcome as it is known.

    Raises ValidationError, before anything runs where it can, when a row's program does not fit
    `config` (a buffer overridden smaller than the row's tile, say). Other IsaErrors propagate.
    """
    check(measurements, config)
    memo: dict[Any, Any] = {}
    outcomes = []
    for m in measurements:
        try:
            simulated = m.replay.figure(config, memo)
        except CheckError as err:
            raise ValidationError(f"row {m.name!r} does not fit preset {config.name}: {err.first}") from None
        outcome = Outcome(m, simulated)
        outcomes.append(outcome)
        if on_row is not None:
            on_row(outcome)
    return outcomes
