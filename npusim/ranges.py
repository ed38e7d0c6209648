"""The values a numeric hardware-config field accepts, declared once beside the field.

A config field is annotated `Annotated[int, Valid(...)]` (or float); the same declaration checks
preset files, `--set` overrides and `HardwareConfig.replace`, and writes the message that names the
range. The bounds keep every quantity the model computes from the config inside what it computes
exactly (cycle counts in int64, buffer images in memory) and stay far beyond any real chip, so a
what-if is never refused for being bold, only for being impossible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_SIZE_UNITS = ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"))


@dataclass(frozen=True)
class Valid:
    """A closed range [lo, hi] of numbers, optionally only powers of two, optionally 0 as well.

    `zero`, when set, says what 0 means (e.g. "no L0C -> UB path") for a field that accepts 0
    below a strictly positive range. `unit` is printed after the range ("bytes" also prints the
    upper bound in KiB/MiB/GiB).
    """

    lo: float
    hi: float
    power_of_two: bool = False
    zero: str = ""
    unit: str = ""

    def accepts(self, value: float) -> bool:
        """Whether `value` (an int or a float, possibly huge, nan or infinite) is in the range."""
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if value == 0 and self.zero:
            return True
        if not self.lo <= value <= self.hi:
            return False
        return not self.power_of_two or (isinstance(value, int) and value & (value - 1) == 0)

    def describe(self, is_int: bool) -> str:
        """The range in words, e.g. "an integer from 1 to 67108864 (64 MiB)"."""
        kind = "a power of two" if self.power_of_two else ("an integer" if is_int else "a number")
        text = f"{kind} from {_number(self.lo)} to {_number(self.hi)}"
        if self.unit == "bytes":
            text += f" ({_size(int(self.hi))})" if self.hi >= 1024 else ""
        elif self.unit:
            text += f" {self.unit}"
        return f"0 ({self.zero}) or {text}" if self.zero else text


def _number(x: float) -> str:
    """A bound as a person writes it: 1000000 rather than 1e+06, 0.001 rather than 1e-03."""
    if isinstance(x, int) or x.is_integer():
        return str(int(x))
    return repr(x)


def _size(n: int) -> str:
    """Whole KiB/MiB/GiB/TiB where `n` is a power-of-two multiple of one."""
    for scale, unit in _SIZE_UNITS:
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"


def shown(value: object) -> str:
    """A value for an error message: short, and never itself an error (huge ints, long strings)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
