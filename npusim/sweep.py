"""Parameter sweeps: many simulations of one program over preset overrides and program options.

A sweep is a list of points, each (program options, preset overrides). `expand` builds them as the
cartesian product (or, with `zip`, the paired lists) of the swept values; `run` simulates every
point, in this process, in local worker processes, or on a Dask cluster, and returns one row per
point in point order. Each finished point is stored in a cache directory under a hash of
(program, every option value, the whole resolved config, numerics, simulator fingerprint), so an
interrupted or repeated sweep resumes without recomputing; a point that fails keeps its error in
its row and the others go on. The simulator is deterministic, so rows are the same whichever
executor computed them.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import itertools
import json
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from isa.errors import CheckError, IsaError
from isa.types import Pipe
from npusim.config import ConfigError, HardwareConfig, load_preset

ROW_PIPES = (Pipe.MTE2, Pipe.MTE1, Pipe.M, Pipe.FIX, Pipe.V, Pipe.MTE3)
METRICS = (
    "cycles",
    "microseconds",
    "speedup",
    "tasks",
    "instructions",
    "hbm_mb",
    "compute_pct",
    "memory_pct",
    *(f"{p.value.lower()}_busy_pct" for p in ROW_PIPES),
)


class SweepError(ValueError):
    """A sweep that cannot run as specified (no swept values, unequal zipped lists, a bad file)."""


@dataclass(frozen=True)
class Point:
    """One simulation of a sweep: its swept values, and the full options and overrides it runs with."""

    swept: tuple[tuple[str, Any], ...]  # (column name, value) in sweep order
    options: tuple[tuple[str, Any], ...]  # program options (not the defaults: those fill in later)
    overrides: tuple[tuple[str, Any], ...]  # preset keys

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={_text(v)}" for k, v in self.swept)


@dataclass(frozen=True)
class Spec:
    """Everything a worker needs to compute one point; picklable, no open resources."""

    program: str
    preset: str
    options: dict[str, Any]
    overrides: dict[str, Any]
    numerics: bool
    key: str = ""


@dataclass
class Outcome:
    """The rows of a sweep, and how they came to be."""

    rows: list[dict[str, Any]]
    computed: int = 0
    cached: int = 0
    failed: int = 0  # points the program or the chip refused: their rows say why
    mismatched: int = 0  # points whose outputs did not match their references (with numerics)
    interrupted: bool = False
    seconds: float = 0.0


def _failed(message: str) -> dict[str, Any]:
    return {"status": "error", "error": message.splitlines()[0]}


def _text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def expand(
    vary: Mapping[str, Sequence[Any]],
    sets: Mapping[str, Sequence[Any]],
    fixed: Mapping[str, Any],
    zipped: bool = False,
) -> list[Point]:
    """The points of a sweep: program options `vary` and preset keys `sets`, each a list of values.

    `fixed` are program options every point shares. Cartesian product in the order given (the last
    key varies fastest), or with `zipped`, the i-th value of every list together.
    """
    axes = [("option", k, list(v)) for k, v in vary.items()] + [("set", k, list(v)) for k, v in sets.items()]
    if not axes:
        raise SweepError(
            "nothing to sweep: give --vary OPTION=v1,v2 or --set KEY=v1,v2 (or a [vary] or "
            "[set] table in --file)"
        )
    for _, name, values in axes:
        if not values:
            raise SweepError(f"{name} has no values to sweep")
    if zipped:
        lengths = {name: len(values) for _, name, values in axes}
        if len(set(lengths.values())) > 1:
            raise SweepError(
                "--zip pairs the i-th values of every swept list, so they need one length; got "
                + ", ".join(f"{k}: {n}" for k, n in lengths.items())
            )
        combos: Iterable[tuple[Any, ...]] = zip(*(values for _, _, values in axes), strict=True)
    else:
        combos = itertools.product(*(values for _, _, values in axes))
    points = []
    for combo in combos:
        swept = tuple((name, value) for (_, name, _), value in zip(axes, combo, strict=True))
        options = dict(fixed) | {
            name: v for (kind, name, _), v in zip(axes, combo, strict=True) if kind == "option"
        }
        overrides = {name: v for (kind, name, _), v in zip(axes, combo, strict=True) if kind == "set"}
        points.append(Point(swept, tuple(options.items()), tuple(overrides.items())))
    return points


@cache
def fingerprint() -> str:
    """A hash of the simulator's sources and presets: a cached point is valid only for this code."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in ("isa", "npusim", "programs"):
        for path in sorted((root / package).rglob("*")):
            if path.suffix in (".py", ".toml", ".s") and "__pycache__" not in path.parts:
                digest.update(path.relative_to(root).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def point_key(program: str, options: Mapping[str, Any], config: HardwareConfig, numerics: bool) -> str:
    """The cache key: program, every option value, the whole resolved config, numerics, code version."""
    blob = json.dumps(
        {
            "program": program,
            "options": dict(sorted(options.items())),
            "config": dataclasses.asdict(config),
            "numerics": numerics,
            "simulator": fingerprint(),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def compute(spec: Spec) -> dict[str, Any]:
    """Simulate one point (in whichever process runs it); the metrics, or the user error it raised.

    A point the program or the chip refuses (an option value, a shape that does not fit, a preset
    value, a kernel that deadlocks) becomes a row with its reason, and the sweep goes on. Any other
    exception is a bug in the simulator and propagates.
    """
    from npusim.outputs import numerics_check
    from npusim.roofline import bounds
    from npusim.simulate import simulate
    from programs import registry

    workload = registry.get(spec.program)
    try:
        base = load_preset(spec.preset)
        config = base.replace(spec.overrides) if spec.overrides else base
        # Workload.instance's contract: ValueError (IsaError, ConfigError included) for values it refuses
        instance = workload.instance(spec.options, config.chip.cube_cores, config)
    except ValueError as err:
        return _failed(str(err))
    values = instance.inputs() if spec.numerics else None
    try:
        result = simulate(instance.program, config, inputs=values, numerics=spec.numerics)
    except CheckError as err:  # the shape does not fit this point's buffers
        return _failed(err.first)
    except (IsaError, ConfigError) as err:  # e.g. no core of a kind, no path, a deadlock
        return _failed(str(err))
    b, util = bounds(result), result.utilization()
    row: dict[str, Any] = {
        "status": "ok",
        "cycles": result.cycles,
        "microseconds": round(result.seconds * 1e6, 4),
        "tasks": len(result.traces),
        "instructions": result.instructions,
        "hbm_mb": round(result.memory.hbm_bytes / 1e6, 4),
        "compute_pct": round(100 * b.compute, 2),
        "memory_pct": round(100 * b.memory, 2),
        "bound_by": b.bound_by,
        **{f"{p.value.lower()}_busy_pct": round(100 * util[p], 2) for p in ROW_PIPES},
    }
    if values is not None:
        check = numerics_check(
            instance.references(values), result.tensors or {}, instance.rtol, instance.atol
        )
        row["numerics"] = "match" if check["match"] else "MISMATCH"
    return row


class Cache:
    """Finished points as one JSON file each, named by key; writes are atomic (rename)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.folder / f"{key}.json"
        try:
            return json.loads(path.read_text())["row"]
        except (OSError, ValueError, KeyError):
            return None  # absent or torn: compute again

    def put(self, key: str, spec: Spec, row: dict[str, Any]) -> None:
        path = self.folder / f"{key}.json"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        record = {
            "program": spec.program,
            "options": spec.options,
            "overrides": spec.overrides,
            "numerics": spec.numerics,
            "row": row,
        }
        try:
            tmp.write_text(json.dumps(record, default=str))
            tmp.replace(path)
        except OSError as err:  # the folder was writable when the sweep began: a full disk, say
            why = err.strerror or err
            raise SweepError(f"cache {self.folder}: cannot write a finished point: {why}") from None


def specs(program: str, preset: str, points: Sequence[Point], numerics: bool) -> list[Spec]:
    """A worker's spec per point, with its cache key (resolving each point's config here, once)."""
    from programs import registry

    workload = registry.get(program)
    base = load_preset(preset)
    out = []
    for point in points:
        overrides = dict(point.overrides)
        config = base.replace(overrides) if overrides else base
        options = {o.name: o.default for o in workload.options} | dict(point.options)
        out.append(
            Spec(program, preset, options, overrides, numerics, point_key(program, options, config, numerics))
        )
    return out


def run(
    points: Sequence[Point],
    specs_: Sequence[Spec],
    cache: Cache | None,
    jobs: int = 1,
    scheduler: str | None = None,
    on_done: Callable[[int, dict[str, Any]], None] | None = None,
) -> Outcome:
    """Compute every point not in the cache; rows in point order. Ctrl-C keeps what finished.

    `on_done(index, row)` is called as each point finishes (progress); `jobs` > 1 uses local worker
    processes, `scheduler` a Dask distributed scheduler at that address.
    """
    started = time.monotonic()
    outcome = Outcome(rows=[{} for _ in points])
    todo = []
    for i, spec in enumerate(specs_):
        row = cache.get(spec.key) if cache is not None else None
        if row is None:
            todo.append(i)
        else:
            outcome.rows[i] = row
            outcome.cached += 1
            if on_done:
                on_done(i, row)

    def finish(i: int, row: dict[str, Any]) -> None:
        outcome.rows[i] = row
        outcome.computed += 1
        if cache is not None:
            cache.put(specs_[i].key, specs_[i], row)
        if on_done:
            on_done(i, row)

    try:
        if scheduler is not None:
            _run_dask(scheduler, todo, specs_, finish)
        elif jobs > 1 and len(todo) > 1:
            _run_local(jobs, todo, specs_, finish)
        else:
            for i in todo:
                finish(i, compute(specs_[i]))
    except KeyboardInterrupt:
        outcome.interrupted = True
    outcome.failed = sum(row.get("status") == "error" for row in outcome.rows)
    outcome.mismatched = sum(row.get("numerics") == "MISMATCH" for row in outcome.rows)
    outcome.seconds = time.monotonic() - started
    return outcome


def _run_local(
    jobs: int, todo: Sequence[int], specs_: Sequence[Spec], finish: Callable[[int, dict], None]
) -> None:
    # spawn: workers start clean (no copy of this process's threads or BLAS state). Workers ignore
    # Ctrl-C, which reaches the whole process group: this process answers it and stops them, so an
    # interrupted sweep leaves no worker running. A worker that dies (out of memory) fails the sweep
    # with BrokenProcessPool rather than hanging it.
    pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_ignore_interrupts)
    try:
        futures = {pool.submit(compute, specs_[i]): i for i in todo}
        for future in cf.as_completed(futures):
            finish(futures[future], future.result())
    except KeyboardInterrupt:
        _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_workers(pool: cf.ProcessPoolExecutor) -> None:
    """Terminate the pool's workers at once, mid-point (`terminate_workers` from Python 3.14 on)."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list(pool._processes.values()):  # the executor's own table: 3.11-3.13 have no public way
        process.terminate()


def _run_dask(
    address: str, todo: Sequence[int], specs_: Sequence[Spec], finish: Callable[[int, dict], None]
) -> None:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise SweepError("--scheduler needs dask.distributed: pip install 'npusim[dask]'") from None
    try:
        client = Client(address, timeout="10s")
    except OSError as err:
        raise SweepError(f"--scheduler {address}: cannot reach a Dask scheduler there ({err})") from None
    try:
        futures = client.map(
            compute, [specs_[i] for i in todo], key=[f"npusim-{i}-{specs_[i].key[:16]}" for i in todo]
        )
        index = {f.key: i for f, i in zip(futures, todo, strict=True)}
        for future in as_completed(futures):
            finish(index[future.key], future.result())
    finally:
        client.close()


def with_speedup(
    points: Sequence[Point], rows: Sequence[dict[str, Any]], baseline: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Each row's speedup: cycles of the point that differs only in taking the baseline's values."""
    # Keyed on the values' text: swept values may be lists (context_lens), which do not hash.
    index = {tuple((k, _text(v)) for k, v in p.swept): i for i, p in enumerate(points)}
    out = []
    for point, row in zip(points, rows, strict=True):
        row = dict(row)
        base_key = tuple((k, _text(baseline.get(k, v))) for k, v in point.swept)
        j = index.get(base_key)
        base = rows[j] if j is not None else None
        if row.get("status") == "ok" and base is not None and base.get("status") == "ok":
            row["speedup"] = round(base["cycles"] / row["cycles"], 4)
        out.append(row)
    return out


def table_rows(points: Sequence[Point], rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Columns and values of the tidy table: swept values, then status, metrics, limiter, error."""
    swept = [k for k, _ in points[0].swept] if points else []
    present = [m for m in METRICS if any(m in r for r in rows)]
    extra = [c for c in ("bound_by", "numerics", "error") if any(c in r for r in rows)]
    columns = [*swept, "status", *present, *extra]
    values = []
    for point, row in zip(points, rows, strict=True):
        values.append(
            [_text(v) for _, v in point.swept]
            + [row.get("status", "not run")]
            + [row.get(c, "") for c in (*present, *extra)]
        )
    return columns, values


def write_csv(path: str | Path, columns: Sequence[str], values: Sequence[Sequence[Any]]) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(values)


def write_parquet(path: str | Path, columns: Sequence[str], values: Sequence[Sequence[Any]]) -> bool:
    """Parquet through pandas and pyarrow when both are installed; False when they are not."""
    try:
        import pandas as pd
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    pd.DataFrame(values, columns=list(columns)).to_parquet(path, index=False)
    return True


def format_table(columns: Sequence[str], values: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in columns]] + [
        [f"{v:,}" if isinstance(v, int) else str(v) for v in row] for row in values
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def read_file(path: str | Path) -> dict[str, Any]:
    """A TOML sweep file: [options] fixed program options, [vary] swept options, [set] swept preset
    keys (quote dotted keys), and optionally preset, zip, baseline (a table), numerics."""
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SweepError(f"{path}: not valid TOML: {err}") from None
    allowed = {"program", "preset", "options", "vary", "set", "zip", "baseline", "numerics", "metric"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SweepError(f"{path}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")
    for table in ("options", "vary", "set", "baseline"):
        if table in data and not isinstance(data[table], dict):
            raise SweepError(f"{path}: {table} must be a table ([{table}])")
    for table in ("vary", "set"):
        for key, values in data.get(table, {}).items():
            if not isinstance(values, list):
                data[table][key] = [values]
    return data


def default_jobs() -> int:
    return os.cpu_count() or 1
