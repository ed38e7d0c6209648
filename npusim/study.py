"""A sweep study: what a sweep file and the command line ask for, checked before any point runs.

The file's tables come first ([options], [vary], [set], baseline, zip, numerics, metric) and the
command line goes on top. `build` turns them into the points of `npusim.sweep` and finds every
mistake there, as a SweepError naming it: an unknown option or key, a value an option cannot take,
a baseline that is not one of its key's swept values, --zip with --baseline, a metric that needs
a baseline. A value the program refuses only when it builds a point (batch=0) is no mistake of
the study: that point fails, keeps its reason in the table, and the sweep goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from npusim import sweep
from npusim.config import ConfigError, HardwareConfig, load_preset, parse_override
from npusim.sweep import SweepError

if TYPE_CHECKING:  # npusim loads programs by registry name, from the command line and sweeps only
    from programs import registry

DEFAULT_PRESET = "910b2"


@dataclass(frozen=True)
class Request:
    """What the command line adds on top of a sweep file: texts as typed, empty or None if not given."""

    vary: Sequence[str] = ()  # OPTION=V1,V2
    sets: Sequence[str] = ()  # KEY=V1,V2 (preset keys)
    baseline: Sequence[str] = ()  # KEY=VALUE
    options: Mapping[str, Any] = field(default_factory=dict)  # fixed program options, already typed
    zip: bool = False
    numerics: bool = False
    preset: str | None = None
    metric: str | None = None
    x_key: str | None = None


@dataclass(frozen=True)
class Study:
    """A sweep as its file and the command line describe it, checked before any point runs."""

    workload: registry.Workload
    preset: str
    config: HardwareConfig
    points: list[sweep.Point]
    swept: list[str]  # swept keys: program options, then preset keys
    baseline: dict[str, Any]  # swept key -> the value other points are compared with
    numerics: bool
    metric: str
    x_key: str | None

    def specs(self) -> list[sweep.Spec]:
        return sweep.specs(self.workload.name, self.preset, self.points, self.numerics)

    def rows(self, outcome: sweep.Outcome) -> list[dict[str, Any]]:
        """The outcome's rows, with each point's speedup over its baseline point if there is a baseline."""
        return sweep.with_speedup(self.points, outcome.rows, self.baseline) if self.baseline else outcome.rows

    def plot_order(self) -> list[str]:
        """The swept keys as the plot takes them: the x axis first, then the keys of its lines."""
        return [self.x_key, *(k for k in self.swept if k != self.x_key)] if self.x_key else self.swept


def build(workload: registry.Workload, request: Request, file: Mapping[str, Any] | None = None,
          source: str = "the sweep file", load: Callable[[str], HardwareConfig] = load_preset) -> Study:
    """The study of `file` (as `sweep.read_file` returns it) with `request` on top; SweepError for a mistake.

    `load` reads the preset (the command line's own, to name a file it cannot read).
    """
    file = file or {}
    if file.get("program", workload.name) != workload.name:
        raise SweepError(f"{source} is a sweep of {file['program']}, not {workload.name}")
    preset = request.preset or file.get("preset", DEFAULT_PRESET)
    config = load(preset)
    options = _Options(workload)
    vary = options.swept(file, request)
    sets = _swept_keys(config, file, request)
    fixed = options.fixed(file, request)
    for name in vary:  # a swept option overrides its fixed value
        fixed.pop(name, None)
    baseline = _baseline(options, config, file, request, vary, sets)
    zipped = request.zip or bool(file.get("zip", False))
    if zipped and baseline:
        raise SweepError("--baseline compares each point with the one that differs only in the baseline's "
                         "value, which a --zip sweep does not have; drop one of the two")
    points = sweep.expand(vary, sets, fixed, zipped=zipped)
    numerics = request.numerics or bool(file.get("numerics", False))
    metric = request.metric or file.get("metric") or ("speedup" if baseline else "microseconds")
    if metric not in sweep.METRICS:
        raise SweepError(f"metric {metric!r}; valid: {', '.join(sweep.METRICS)}")
    if metric == "speedup" and not baseline:
        raise SweepError("the speedup metric needs a baseline, e.g. --baseline variant=1block")
    swept = [*vary, *sets]
    x_key = request.x_key
    if x_key is not None:
        x_key = x_key.replace("-", "_") if x_key.replace("-", "_") in vary else x_key
        if x_key not in swept:
            raise SweepError(f"--x {x_key}: not a swept key; swept: {', '.join(swept)}")
    return Study(workload, preset, config, points, swept, baseline, numerics, metric, x_key)


class _Options:
    """A workload's program options as a study names and types them."""

    def __init__(self, workload: registry.Workload) -> None:
        self.workload = workload
        self.by_name = {o.name: o for o in workload.options}

    def get(self, name: str, where: str) -> registry.Option:
        found = self.by_name.get(name.replace("-", "_"))
        if found is None:
            raise SweepError(f"{where}: {self.workload.name} has no option {name!r}; "
                             f"options: {', '.join(self.by_name)}")
        return found

    def typed(self, opt: registry.Option, value: Any, where: str) -> Any:
        """`value` as the option takes it, or SweepError naming `where` and what is valid.

        A sweep file's values (TOML numbers, booleans, lists) are checked as their text on the
        command line would be: `seed = -1` or `m = 256.0` is refused like `--vary seed=-1`.
        """
        if not isinstance(value, str):
            value = _as_text(value)
        if opt.parse is not str:
            value = _parsed(opt, value, where)
        if opt.choices is not None and value not in opt.choices:
            raise SweepError(f"{where}: {value!r} is not a {opt.name}; valid: {', '.join(opt.choices)}")
        return value

    def swept(self, file: Mapping[str, Any], request: Request) -> dict[str, list[Any]]:
        """Swept program options: the file's [vary], then each --vary OPTION=V1,V2."""
        vary: dict[str, list[Any]] = {}
        for name, values in file.get("vary", {}).items():
            opt = self.get(name, "[vary]")
            vary[opt.name] = [self.typed(opt, v, f"[vary] {opt.name}") for v in values]
        for text in request.vary:
            name, sep, raw = text.partition("=")
            if not sep:
                raise SweepError(f"--vary {text!r} must look like OPTION=V1,V2, e.g. variant=1block,2block")
            opt = self.get(name, "--vary")
            vary[opt.name] = [self.typed(opt, v.strip(), f"--vary {text}") for v in raw.split(",")]
        return vary

    def fixed(self, file: Mapping[str, Any], request: Request) -> dict[str, Any]:
        """Program options every point shares: the file's [options], then the command line's flags."""
        fixed = {}
        for name, value in file.get("options", {}).items():
            opt = self.get(name, "[options]")
            fixed[opt.name] = self.typed(opt, value, f"[options] {opt.name}")
        return fixed | {name: value for name, value in request.options.items() if name in self.by_name}


def _as_text(value: Any) -> str:
    """A sweep file's value as it would be written after --vary or an option: a list as V1,V2."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(_as_text(v) for v in value)
    return str(value)


def _parsed(opt: registry.Option, text: str, where: str) -> Any:
    """An option's value from its text; an integer option says so in the project's words."""
    if opt.parse is int:
        try:
            return int(text)
        except ValueError:
            raise SweepError(f"{where}: {text!r} is not a whole number; {opt.name} takes integers, "
                             f"e.g. {opt.name}=1,2") from None
    try:
        return opt.parse(text)
    except ValueError as err:  # Option.parse's contract: ValueError with a message for the user
        raise SweepError(f"{where}: {err}") from None


def _swept_keys(config: HardwareConfig, file: Mapping[str, Any], request: Request) -> dict[str, list[Any]]:
    """Swept preset keys: the file's [set], then each --set KEY=V1,V2; ConfigError names a bad one."""
    sets: dict[str, list[Any]] = {}
    for key, values in file.get("set", {}).items():
        for v in values:
            config.replace({key: v})
        sets[key] = list(values)
    for text in request.sets:
        key, sep, raw = text.partition("=")
        if not sep:
            raise SweepError(f"--set {text!r} must look like KEY=V1,V2, e.g. hbm.bandwidth_gbps=800,1600")
        parsed = [parse_override(f"{key}={v}", config) for v in raw.split(",")]
        for k, v in parsed:
            config.replace({k: v})
        sets[key.strip()] = [v for _, v in parsed]
    return sets


def _baseline(options: _Options, config: HardwareConfig, file: Mapping[str, Any], request: Request,
              vary: Mapping[str, list[Any]], sets: Mapping[str, list[Any]]) -> dict[str, Any]:
    """The baseline values, from the file then --baseline, each matched to one of its key's swept values."""
    baseline: dict[str, Any] = dict(file.get("baseline", {}))
    for text in request.baseline:
        key, sep, raw = text.partition("=")
        if not sep:
            raise SweepError(f"--baseline {text!r} must look like KEY=VALUE, e.g. variant=1block")
        name = key.strip().replace("-", "_")
        baseline[name if name in vary else key.strip()] = raw
    swept_names = [*vary, *sets]
    for key, value in list(baseline.items()):
        if key not in swept_names:
            raise SweepError(f"--baseline {key}: not a swept key; swept: {', '.join(swept_names) or 'none'}")
        choices = vary.get(key, sets.get(key, []))
        typed = _typed_baseline(options, config, key, value, key in vary)
        match = [c for c in choices if c == typed or str(c) == str(value)]
        if not match:
            raise SweepError(f"--baseline {key}={value}: not one of the swept values "
                             f"{', '.join(map(str, choices))}")
        baseline[key] = match[0]
    return baseline


def _typed_baseline(options: _Options, config: HardwareConfig, key: str, value: Any, is_option: bool) -> Any:
    """A baseline value as the swept values are typed (`800` matches a swept float 800.0)."""
    if not isinstance(value, str):
        return value
    try:
        if is_option:
            return options.by_name[key].parse(value)
        return parse_override(f"{key}={value}", config)[1]
    except (ValueError, ConfigError):
        return value  # no match below, and the message lists the valid values
