"""Hardware flags between pipes: set by set_flag on the source pipe, consumed by wait_flag."""

from __future__ import annotations

from dataclasses import dataclass

import simpy

from isa.errors import IsaError
from isa.types import Pipe

FlagKey = tuple[Pipe, Pipe, int]


class SyncError(IsaError):
    """A kernel broke a synchronisation rule while running (a flag set twice, a deadlock)."""


@dataclass(slots=True)
class _Flag:
    visible_at: int = -1  # cycle the set becomes visible to the waiter; -1 while clear
    setter: int = -1  # index of the set_flag that set it
    waiter: simpy.Event | None = None  # a wait_flag blocked before any set arrived
    sets: int = 0
    waits: int = 0


class Flags:
    """The flag state of one core: at most one pending set per key, as on hardware."""

    __slots__ = ("_env", "_flags")

    def __init__(self, env: simpy.Environment):
        self._env = env
        self._flags: dict[FlagKey, _Flag] = {}

    def set(self, key: FlagKey, visible_at: int, setter: int) -> int:
        """Set `key` from cycle `visible_at`; returns the index of an earlier unconsumed set, or -1."""
        flag = self._flags.get(key)
        if flag is None:
            flag = self._flags[key] = _Flag()
        flag.sets += 1
        if flag.waiter is not None:  # a wait is already blocked on this key: hand the set straight over
            waiter, flag.waiter = flag.waiter, None
            flag.waits += 1
            waiter.succeed((visible_at, setter))
            return -1
        if flag.visible_at >= 0:
            return flag.setter
        flag.visible_at, flag.setter = visible_at, setter
        return -1

    def wait(self, key: FlagKey) -> tuple[int, int] | simpy.Event:
        """Consume `key`: (visible_at, setter) if it is set, else an event that yields them later."""
        flag = self._flags.get(key)
        if flag is None:
            flag = self._flags[key] = _Flag()
        if flag.visible_at >= 0:
            got = (flag.visible_at, flag.setter)
            flag.visible_at, flag.setter = -1, -1
            flag.waits += 1
            return got
        flag.waiter = self._env.event()
        return flag.waiter

    def describe(self) -> str:
        """One line per key ever used: how often it was set and waited, and whether it is set now."""
        lines = []
        for (src, dst, event), f in sorted(self._flags.items(), key=_order):
            state = "set" if f.visible_at >= 0 else ("waited on, never set" if f.waiter else "clear")
            name = f"({src.value} -> {dst.value}, event {event})"
            lines.append(f"{name}: set {f.sets}x, waited {f.waits}x, {state}")
        return "\n".join(lines)


def _order(item: tuple[FlagKey, _Flag]) -> tuple[str, str, int]:
    (src, dst, event), _ = item
    return (src.value, dst.value, event)
