"""What a run leaves behind for scripts: the JSON record, the numerics check, GM dumps, progress."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from isa.types import DType, dtype_of
from npusim.results import PIPE_ORDER, Result
from npusim.roofline import bounds

PROGRESS_AFTER_SECONDS = 2.0
RULE = "|sim - ref| <= atol + rtol * |ref|"  # numpy's isclose/allclose, with ref the reference


class Numerics(NamedTuple):
    """A run's numerics check as shown to a reader: the lines the command printed and its verdict
    (None: no check ran), the verdict taken from the check itself, never read back from the text."""

    text: str
    matched: bool | None


def numerics_check(references: Mapping[str, Mapping[str, np.ndarray]], outputs: Mapping[str, np.ndarray],
                   rtol: float, atol: float) -> dict[str, Any]:
    """Every (reference, output tensor) pair: max absolute and relative error, the worst element,
    and whether every element satisfies RULE.

    The relative error is taken over the elements whose reference exceeds `atol` in magnitude. It
    can exceed rtol in a match: atol widens every element's allowance (`worst_element`).
    """
    rows = []
    for ref_name, expected in references.items():
        for name, want in expected.items():
            got = outputs[name].astype(np.float64)
            want64 = want.astype(np.float64)
            with np.errstate(invalid="ignore"):  # inf - inf: a NaN error, as numpy's isclose judges it
                err = np.abs(got - want64)
            # Relative error only where the reference is larger than atol: near zero it means nothing.
            sized = np.abs(want64) > atol
            rel = float((err[sized] / np.abs(want64[sized])).max()) if sized.any() else 0.0
            rows.append({"reference": ref_name, "tensor": name, "max_abs_error": float(err.max()),
                         "max_rel_error": rel,
                         "match": bool(np.allclose(got, want64, rtol=rtol, atol=atol)),
                         **worst_element(got, want64, rtol, atol)})
    return {"checked": True, "rtol": rtol, "atol": atol, "rule": RULE, "match": all(r["match"] for r in rows),
            "comparisons": rows}


def worst_element(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> dict[str, Any]:
    """The element nearest to failing RULE (or furthest past it), and how many fail.

    `margin` is the allowance atol + rtol * |ref| less |sim - ref|: positive, the element passes
    by that much; negative, it fails by that much. A NaN, or an infinity the reference does not
    share, fails without a margin (None); equal infinities pass, as numpy's isclose says.
    """
    close = np.isclose(got, want, rtol=rtol, atol=atol)
    with np.errstate(invalid="ignore"):
        error, allowed = np.abs(got - want), atol + rtol * np.abs(want)
        margin = allowed - error
    margin = np.where(close, np.nan_to_num(margin, nan=np.inf, posinf=np.inf),
                      np.nan_to_num(np.minimum(margin, 0.0), nan=-np.inf, neginf=-np.inf))
    k = int(np.argmin(margin))
    return {"worst": {"index": [int(i) for i in np.unravel_index(k, got.shape)], "sim": float(got.flat[k]),
                      "ref": float(want.flat[k]), "error": float(error.flat[k]),
                      "allowed": float(allowed.flat[k]),
                      "margin": float(margin.flat[k]) if np.isfinite(margin.flat[k]) else None},
            "failing": int(close.size - np.count_nonzero(close)), "elements": int(close.size)}


def comparison_text(row: Mapping[str, Any]) -> str:
    """Two lines on one compared tensor: its largest errors, then the rule and the element that
    decided it, so a relative error above rtol in a match reads as what it is (the tolerances
    themselves are in the heading above these lines)."""
    w = row["worst"]
    where = f"{row['tensor']}[{', '.join(map(str, w['index']))}]"
    if row["match"]:
        verdict = f"nearest to the limit: {where}"
        outcome = "within it" if w["margin"] is None else f"within by {w['margin']:.3e}"
        outcome += ": match"
    else:
        verdict = f"furthest past the limit: {where}"
        outcome = "not comparable (NaN or infinity)" if w["margin"] is None else f"over by {-w['margin']:.3e}"
        outcome += f"; {row['failing']} of {row['elements']} element(s) over: MISMATCH"
    return (f"    max |sim - ref| = {row['max_abs_error']:.3e}, max relative (where |ref| > atol) = "
            f"{row['max_rel_error']:.3e}\n"
            f"    rule {RULE}; {verdict}, sim {w['sim']:.6g}, ref {w['ref']:.6g}: |sim - ref| = "
            f"{w['error']:.3e}, allowed {w['allowed']:.3e}, {outcome}")


def record(result: Result, program: str, parameters: Mapping[str, Any], overrides: Mapping[str, Any],
           numerics: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run as one JSON-ready object: what ran, on what, how long, what bounded it, whether it matched."""
    util, busy = result.utilization(), result.busy
    b = bounds(result)
    limiter, share = b.limiter
    mem = result.memory
    return {
        "program": program,
        "variant": parameters.get("variant"),
        "parameters": dict(parameters),
        "preset": result.config.name,
        "overrides": dict(overrides),
        "cycles": result.cycles,
        "microseconds": result.seconds * 1e6,
        "launch_cycles": result.launch_cycles,  # chip.launch_cycles: not in "cycles"
        "end_to_end_microseconds": result.end_to_end_seconds * 1e6,
        "tasks": len(result.traces),
        "instructions": result.instructions,
        "cores": len(result.by_core()),
        "busy_cycles": {p.value: busy[p] for p in PIPE_ORDER if busy[p]},
        "busy_percent": {p.value: 100 * util[p] for p in PIPE_ORDER if busy[p]},
        "hbm": {"read_bytes": mem.hbm_read_bytes, "write_bytes": mem.hbm_write_bytes,
                "l2_hit_bytes": mem.l2_hit_bytes, "l2_hit_rate": mem.l2_hit_rate,
                "average_gbps": mem.average_gbps(result.cycles), "peak_gbps": mem.peak_gbps},
        "bounds": {"compute_percent": 100 * b.compute, "memory_percent": 100 * b.memory,
                   "pipe_percent": {p.value: 100 * b.fraction(c) for p, c in b.pipe_cycles.items()},
                   "limiter": limiter, "limiter_percent": 100 * share, "explanation": b.explain(),
                   "flops": b.flops},
        "numerics": dict(numerics) if numerics is not None else {"checked": False},
    }


def dump(directory: str | Path, result: Result, summary: Mapping[str, Any]) -> list[Path]:
    """Every GM tensor as DIRECTORY/NAME.npy and the summary as DIRECTORY/summary.json.

    bf16 tensors are saved as float32 (exactly: every bf16 is an fp32), since plain numpy cannot
    read ml_dtypes' bf16 back; `npusim asm --input` rounds them to bf16 again.
    """
    if result.tensors is None:
        raise ValueError("--dump needs the GM tensors, which only a run with numerics computes; "
                         "drop --no-numerics")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written, files = [], {}
    for name, value in result.tensors.items():
        dtype = dtype_of(value.dtype)
        saved = value.astype(np.float32) if dtype is DType.BF16 else value
        path = folder / f"{name}.npy"
        np.save(path, saved)
        written.append(path)
        files[name] = {"file": path.name, "dtype": dtype.value, "shape": list(value.shape),
                       "saved_as": str(saved.dtype)}
    path = folder / "summary.json"
    path.write_text(json.dumps({**summary, "tensors": files}, indent=1) + "\n")
    return [*written, path]


class Progress:
    """A tqdm bar on stderr that appears once a run has taken PROGRESS_AFTER_SECONDS of wall time."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled, self.label = enabled, label
        self.started = time.monotonic()
        self.bar: Any = None

    @classmethod
    def for_terminal(cls, quiet: bool, label: str) -> Progress:
        return cls(not quiet and sys.stderr.isatty(), label)

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if not self.enabled or time.monotonic() - self.started < PROGRESS_AFTER_SECONDS:
                return
            from tqdm import tqdm  # only when a bar is shown

            width = shutil.get_terminal_size((100, 24)).columns  # a pty may report 0 columns: fall back
            self.bar = tqdm(total=total, desc=self.label, unit=" instr", unit_scale=True, file=sys.stderr,
                            leave=False, ncols=min(width, 120))
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
