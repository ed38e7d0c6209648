"""Hardware flags between pipes: set by set_flag on the source pipe, consumed by wait_flag."""

from __future__ import annotations

import simpy

from isa.errors import IsaError
from isa.types import Pipe

FlagKey = tuple[Pipe, Pipe, int]


class SyncError(IsaError):
    """A kernel broke a synchronisation rule while running (a flag set twice, a deadlock)."""


class Flag:
    """One hardware flag (source pipe, destination pipe, event id): at most one set pending."""

    __slots__ = ("visible_at", "setter", "waiter", "sets", "waits")

    def __init__(self) -> None:
        self.visible_at = -1  # cycle the pending set becomes visible to the waiter; -1 while clear
        self.setter = -1  # index of the set_flag that set it
        self.waiter: simpy.Event | None = None  # a wait_flag blocked before any set arrived
        self.sets = 0
        self.waits = 0

    @property
    def pending(self) -> bool:
        """A set is waiting for its wait_flag."""
        return self.visible_at >= 0

    def set(self, visible_at: int, setter: int) -> int:
        """Set it from cycle `visible_at`; returns the index of an earlier unconsumed set, or -1."""
        self.sets += 1
        waiter = self.waiter
        if waiter is not None:  # a wait is already blocked on it: hand the set straight over
            self.waiter = None
            self.waits += 1
            waiter.succeed((visible_at, setter))
            return -1
        if self.visible_at >= 0:
            return self.setter
        self.visible_at, self.setter = visible_at, setter
        return -1

    def wait(self, env: simpy.Environment) -> tuple[int, int] | simpy.Event:
        """Consume it: (visible_at, setter) if it is set, else an event that yields them later."""
        if self.visible_at >= 0:
            got = (self.visible_at, self.setter)
            self.visible_at = self.setter = -1
            self.waits += 1
            return got
        self.waiter = env.event()
        return self.waiter


class Flags:
    """The flags of one core, created on first use, by key."""

    __slots__ = ("_flags",)

    def __init__(self) -> None:
        self._flags: dict[FlagKey, Flag] = {}

    def get(self, key: FlagKey) -> Flag:
        flag = self._flags.get(key)
        if flag is None:
            flag = self._flags[key] = Flag()
        return flag

    def describe(self) -> str:
        """One line per key ever used: how often it was set and waited, and whether it is set now."""
        lines = []
        for (src, dst, event), f in sorted(self._flags.items(), key=_order):
            state = "set" if f.visible_at >= 0 else ("waited on, never set" if f.waiter else "clear")
            name = f"({src.value} -> {dst.value}, event {event})"
            lines.append(f"{name}: set {f.sets}x, waited {f.waits}x, {state}")
        return "\n".join(lines)


def _order(item: tuple[FlagKey, Flag]) -> tuple[str, str, int]:
    (src, dst, event), _ = item
    return (src.value, dst.value, event)
