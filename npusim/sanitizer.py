"""The sanitizer's findings in a run: placed on the cores that ran them, as text, JSON and trace marks.

The analysis itself is `isa.sanitize` (from the instruction lists alone); this module shows its
findings beside a run's timing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from isa.sanitize import Finding, Kind
from npusim.results import Result

SHOWN = 3  # findings of each kind printed in full; the rest are counted


def place(result: Result, findings: Sequence[Finding]) -> Result:
    """`result` with `findings` as its `sanitizer`, each naming the cores its tasks ran on."""
    core_of = {t.task: t.core for t in result.traces}
    placed = tuple(dataclasses.replace(f, cores=tuple(core_of.get(t, "") for t in f.tasks)) for f in findings)
    return dataclasses.replace(result, sanitizer=placed)


def report(findings: Sequence[Finding], shown: int = SHOWN) -> str:
    """The findings grouped by kind: the first `shown` of each in full, a count of the rest."""
    if not findings:
        return "sanitizer: no findings (racecheck, synccheck, initcheck)"
    kernels = len({f.kernel for f in findings})
    lines = [f"sanitizer: {len(findings)} finding(s) in {kernels} kernel(s)"]
    for kind in Kind:
        of_kind = [f for f in findings if f.kind is kind]
        if not of_kind:
            continue
        lines.append(f"  {kind.value} ({len(of_kind)}):")
        lines += ["    " + str(f).replace("\n", "\n    ") for f in of_kind[:shown]]
        if len(of_kind) > shown:
            rest = of_kind[shown:]
            lines.append(f"    ... and {len(rest)} more {kind.value} finding(s) in "
                         f"{len({f.kernel for f in rest})} kernel(s) (--json lists them all)")
    return "\n".join(lines)


def record(f: Finding) -> dict[str, Any]:
    """One finding as JSON."""
    def access(a: Any) -> dict[str, Any] | None:
        return None if a is None else {"index": a.index, "text": a.text, "pipe": a.pipe.value}

    return {"kind": f.kind.value, "what": f.what, "kernel": f.kernel, "tasks": list(f.tasks),
            "cores": list(f.cores), "first": access(f.first), "second": access(f.second), "where": f.where,
            "fix": f.fix}


def trace_marks(result: Result, pid_of: dict[str, int], tid_of: Any, us: Any) -> list[dict[str, Any]]:
    """An instant event per finding and task, on the pipe of its later instruction, when that starts."""
    if not result.sanitizer:
        return []
    by_task = {t.task: t for t in result.traces}
    out = []
    for f in result.sanitizer:
        at = f.second or f.first
        for task in f.tasks:
            trace = by_task.get(task)
            if trace is None:
                continue
            out.append({"ph": "i", "s": "t", "name": f"{f.kind.value}: {f.what}", "cat": "sanitizer",
                        "pid": pid_of[trace.core], "tid": tid_of(at.pipe),
                        "ts": us(int(trace.start[at.index])), "args": {"finding": str(f), "task": task}})
    return out
