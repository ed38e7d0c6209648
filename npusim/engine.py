"""The timing engine of one core on SimPy: an in-order front-end, bounded pipe queues, pipe executors.

The front-end issues instructions in program order, one every `issue_cycles`, into a bounded queue
per pipe; a full queue stalls issue. It keeps its own issue clock and runs ahead of simulated time,
synchronising only when a queue may be full, at `wait_flag ... S`, at a `set_flag S ...` whose flag is
still set, and at `barrier ALL`: a queue's length can only shrink while the front-end is not adding to
it, so running ahead never misses a stall, and flags on S are judged at their own issue cycle.

Each pipe executor takes its queue in order: an instruction starts at max(its issue, the end of the
previous one's occupancy) and is handed to the handler of its kind (`Kind`), which records its
cycles and returns the cycle its pipe is free again, or an event it must wait for first (a flag not
yet set, a GM transfer whose time depends on other cores' traffic) and then a resume step:

- compute (mmad, vector, MTE1 moves): holds the pipe for its occupancy, completes after its latency;
- GM transfer: the memory system (`npusim.memsys`) says when the DMA engine is free and the data
  has landed;
- set_flag: fires at max(now, the pipe's latest completion) + flag_cycles (`npusim.flags`);
- wait_flag: holds the pipe until the oldest pending set of its flag is visible;
- barrier P: holds P until every earlier P instruction has completed; barrier ALL (on the
  front-end) until every instruction issued before it has, waits and sets included.

Completion needs no event. The numbers, when a run computes them, are kept by the functional state
(`npusim.functional`): read when an instruction starts, written when it completes.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import simpy
from simpy.core import NORMAL, URGENT

from isa.memory import MachineState
from isa.types import Pipe
from npusim.config import HardwareConfig
from npusim.decode import DecodedKernel, Kind
from npusim.flags import Flags, SyncError
from npusim.functional import FunctionalState
from npusim.memsys import GmTiming, MemorySystem

PIPES: tuple[Pipe, ...] = tuple(Pipe)
_COMPUTE, _GM, _SET, _WAIT, _BARRIER, _BARRIER_ALL = (int(k) for k in Kind)


def fail_later(env: simpy.Environment, exc: Exception) -> None:
    """Raise `exc` out of the run at the next event of this cycle, as SimPy raises the error of a
    failed process: other events already due this cycle run first. For errors in callbacks, which
    SimPy would otherwise raise at once, from the middle of whatever event ran them."""
    env.event().fail(exc)


class Urgent(simpy.Event):
    """An event triggered when made, whose callbacks run at the current cycle before any other event
    not yet begun: the way SimPy starts a process, without the process."""

    def __init__(self, env: simpy.Environment, callbacks: list[Callable[[simpy.Event], None]]):
        self.env, self.callbacks = env, callbacks
        self._ok, self._value = True, None
        env.schedule(self, URGENT)


class _Alarm(simpy.Event):
    """A timeout one pipe executor reuses: it waits on at most one at a time, and making a fresh
    Timeout and its callback list for every wait costs more than the wait's own scheduling."""

    def __init__(self, env: simpy.Environment, callback: Callable[[simpy.Event], None]):
        self.env, self.callbacks = env, None  # type: ignore[assignment]  # not scheduled
        self._ok, self._value = True, None
        self._callbacks = [callback]  # the same list each time: SimPy only iterates it

    def after(self, delay: float) -> None:
        """Run the callback `delay` cycles from now, in order with the timeouts of that cycle."""
        self.callbacks = self._callbacks
        self.env.schedule(self, NORMAL, delay)


class _PipeState:
    __slots__ = ("pipe", "queue", "done_at", "synced_at", "wake", "busy", "blocked", "finished", "value",
                 "current", "resume", "landed", "alarm")

    def __init__(self, pipe: Pipe):
        self.pipe = pipe
        self.queue: deque[tuple[int, int]] = deque()  # (instruction index, issue cycle)
        self.done_at = 0  # latest completion cycle of any instruction started so far, waits included
        self.synced_at = 0  # latest cycle a set_flag of this pipe fires
        self.wake: simpy.Event | None = None  # the executor sleeps on this while its queue is empty
        self.busy = 0  # cycles of occupancy
        self.blocked = -1  # index of a wait_flag the pipe is blocked on
        self.finished = False
        self.value: Any = None  # what the GM transfer in flight read, to land when it completes
        self.current = -1  # index of the instruction whose event the executor waits on
        # The executor's callbacks (`CoreRun._execute`, `CoreRun._landed`) and its alarm.
        self.resume: Callable[[simpy.Event], None] | None = None
        self.landed: Callable[[simpy.Event], None] | None = None
        self.alarm: _Alarm | None = None


class CoreRun:
    """One kernel on one core: runs its front-end and pipe executors and records when each instruction ran.

    Records per instruction (arrays indexed by instruction index): issue, start, busy_end (end of
    occupancy), end (completion), bytes, flops, and for each wait_flag the set_flag that released it.
    """

    def __init__(self, env: simpy.Environment, name: str, decoded: DecodedKernel, config: HardwareConfig,
                 memsys: MemorySystem, state: MachineState | None, functional: FunctionalState | None):
        self.env, self.name, self.kernel, self.config = env, name, decoded.kernel, config
        self.memsys, self.state, self.functional = memsys, state, functional
        self.done = env.event()  # succeeds with the cycle the last instruction completes
        self.flags = Flags()
        self.pipes = {p: _PipeState(p) for p in PIPES}
        n = len(decoded)
        zeros = bytes(8 * n)
        self.issue, self.start, self.busy_end, self.end = (array("q", zeros) for _ in range(4))
        self.released_by = array("i", [-1]) * n
        self.kinds, self.occupancy, self.latency = decoded.kinds, decoded.occupancy, decoded.latency
        self.nbytes, self.flops, self.pipe_of = decoded.nbytes, decoded.flops, decoded.pipe_of
        # Per instruction: a GM access's Transfer, a set/wait_flag's index into `flag_list` (this
        # run's flags), else None. Shared by every run of the kernel: read, never written.
        self.aux: list[Any] = decoded.aux
        self.flag_list = [self.flags.get(key) for key in decoded.flag_keys]
        self._issue_cycles = config.frontend.issue_cycles
        self.flag_cycles = config.sync.flag_cycles
        # Per kind, the handler that starts an instruction and the one that resumes it after the
        # event the first returned (None for kinds that never wait on one).
        self._handlers: list[Callable[[_PipeState, int, int], Any]] = [
            self._compute, self._gm, self._set, self._wait, self._barrier, self._no_executor]
        self._resumers: list[Callable[[_PipeState, int, Any], int] | None] = [
            None, self._gm_landed, None, self._wait_released, None, None]
        self._executors = [ps for p, ps in self.pipes.items() if p is not Pipe.S]
        for ps in self._executors:
            ps.resume = partial(self._execute, ps)
            ps.landed = partial(self._landed, ps)
            ps.alarm = _Alarm(env, ps.resume)
        self.issue_done = False
        self._next = 0  # index of the next instruction to issue
        self._clock = 0  # issue cycle of the last issued instruction (the front-end runs ahead)
        self._blocked_on: _PipeState | None = None  # the pipe whose full queue stalls issue
        self._barrier_pending = False  # a barrier ALL waits for every pipe to go idle

    def start_processes(self) -> None:
        """Start one executor per pipe and issue what can be issued at the current cycle.

        The executors take their first steps in pipe order, after the front-end's, before any other
        event of this cycle: where SimPy would start one process per pipe.
        """
        self._start_executors()
        self._clock = self.env.now
        executor_of = {ps.pipe: ps for ps in self._executors}
        state_of = list(map(executor_of.get, self.pipe_of))  # type: ignore[arg-type]  # None for S
        self._frontend_locals = (state_of, self._issue_cycles, self.config.frontend.queue_depth, self.issue,
                                 len(self.kinds))
        self._advance()

    def _start_executors(self) -> None:
        """Schedule the executors' first steps: one urgent event whose callbacks run them in order."""
        Urgent(self.env, [ps.resume for ps in self._executors])  # type: ignore[misc]

    # --- front-end ------------------------------------------------------------------------------
    # The front-end is not a process: `_advance` issues in order until an instruction cannot issue
    # yet, and whoever unblocks it calls `_advance` again (the executor that frees a queue slot, a
    # flag's event, the last pipe to go idle before `barrier ALL`). A stall on a full queue ends at
    # the first pop of that queue after it began, at max(the instruction's issue cycle, the pop): so
    # no event is spent on the front-end unless it truly waits.

    def _advance(self) -> None:
        # One tuple of locals: an executor resumes the front-end at nearly every pop of a full queue.
        state_of, issue_cycles, depth, issue, n = self._frontend_locals
        idx, t = self._next, self._clock
        while idx < n:
            t_issue = t + issue_cycles
            ps = state_of[idx]
            if ps is None:  # instructions on S run on the front-end itself
                done = self._scalar(idx, t, t_issue)
                if done < 0:
                    return
                idx, t = idx + 1, done
                continue
            queue = ps.queue
            if len(queue) >= depth:
                self._next, self._clock, self._blocked_on = idx, t, ps
                return
            issue[idx] = t_issue
            queue.append((idx, t_issue))
            if ps.wake is not None:
                ps.wake.succeed()
                ps.wake = None
            idx, t = idx + 1, t_issue
        self._next, self._clock = idx, t
        self.issue_done = True
        for ps in self.pipes.values():
            if ps.wake is not None:
                ps.wake.succeed()
                ps.wake = None

    def _scalar(self, idx: int, t: int, t_issue: int) -> int:
        """Run instruction `idx` on S at `t_issue`: the cycle it completes, or -1 if issue stops here
        (to be resumed by a timeout, a flag or the last pipe going idle)."""
        kind, env = self.kinds[idx], self.env
        flag = self.flag_list[self.aux[idx]] if kind in (_SET, _WAIT) else None
        if flag is not None and t_issue > env.now and (kind == _WAIT or flag.pending):
            # A flag is judged in cycle order: a wait may consume it, and a set find it still
            # pending, only once simulated time has reached the cycle the front-end issues them.
            self._next, self._clock = idx, t
            env.timeout(t_issue - env.now).callbacks.append(self._resume_issue)
            return -1
        done = t_issue
        if kind == _SET:
            self._set_flag(idx, t_issue, t_issue + self.flag_cycles)
        elif kind == _WAIT:
            got = flag.wait(env)  # type: ignore[union-attr]
            if isinstance(got, simpy.Event):
                self._next, self._clock = idx, t
                got.callbacks.append(self._on_frontend_flag)
                return -1
            self.released_by[idx] = got[1]
            done = max(t_issue, got[0])
        elif kind == _BARRIER_ALL:
            if not self._all_idle():
                self._next, self._clock, self._barrier_pending = idx, t, True
                return -1
            done = max(t_issue, *(max(ps.done_at, ps.synced_at) for ps in self.pipes.values()))
        self.issue[idx] = self.start[idx] = t_issue
        if kind != _SET:  # a set's end is when it fires, as `_set_flag` recorded
            self.busy_end[idx] = self.end[idx] = done
        return done

    def _resume_issue(self, event: simpy.Event) -> None:
        self._advance()

    def _on_frontend_flag(self, event: simpy.Event) -> None:
        idx = self._next
        t_issue = self._clock + self._issue_cycles
        visible_at, setter = event.value
        self.released_by[idx] = setter
        self.issue[idx] = self.start[idx] = t_issue
        self.busy_end[idx] = self.end[idx] = self._clock = max(t_issue, visible_at)
        self._next = idx + 1
        self._advance()

    def _all_idle(self) -> bool:
        """Every executor sleeps on an empty queue or has finished (S has no executor)."""
        return all(ps.wake is not None or ps.finished for ps in self._executors)

    def _on_pipe_idle(self) -> None:
        if self._barrier_pending and self._all_idle():
            self._barrier_pending = False
            self._advance()  # issues the barrier ALL it stopped at, now that every pipe is idle

    # --- pipe executors ---------------------------------------------------------------------------
    # An executor is a state machine on callbacks, not a SimPy process (a callback costs less than
    # resuming a generator): `_execute` takes the pipe's queue in order until it must wait, then
    # leaves one callback on what it waits for: its alarm at the cycle the next instruction issues
    # or the pipe is free, the event a handler returned (a flag, a GM transfer), or the front-end's
    # wake-up while its queue is empty. Each event is made where a process would make it, so the
    # events of one cycle keep their order, and an error surfaces one event later, as a process's.

    def _execute(self, ps: _PipeState, event: simpy.Event | None) -> None:
        """Run pipe `ps` at the current cycle until it must wait for something: the callback of its
        start, its alarm and its wake-up (`event`)."""
        try:
            now, queue, start = self.env.now, ps.queue, self.start
            kinds, handlers = self.kinds, self._handlers
            while queue:
                idx, issued = queue[0]
                if issued > now:
                    ps.alarm.after(issued - now)  # type: ignore[union-attr]
                    return
                queue.popleft()
                if self._blocked_on is ps:  # the front-end stalled on this full queue: issue resumes now
                    self._blocked_on = None
                    resumed = now - self._issue_cycles
                    if resumed > self._clock:
                        self._clock = resumed
                    self._advance()
                start[idx] = now
                free = handlers[kinds[idx]](ps, idx, now)
                if type(free) is not int:  # it waits on an event first
                    ps.current = idx
                    free.callbacks.append(ps.landed)
                    return
                if free > now:
                    ps.alarm.after(free - now)  # type: ignore[union-attr]
                    return
            self._idle(ps)
        except Exception as exc:
            fail_later(self.env, exc)

    def _idle(self, ps: _PipeState) -> None:
        """Pipe `ps` has drained its queue: it finishes if issue is done, else sleeps until woken."""
        if self.issue_done:
            ps.finished = True
            self._on_pipe_idle()
            if self.finished:
                self._finish()
            return
        wake = ps.wake = self.env.event()
        wake.callbacks.append(ps.resume)  # type: ignore[arg-type]
        if self._barrier_pending:  # may issue more (and trigger `wake`) before it sleeps
            self._on_pipe_idle()

    def _landed(self, ps: _PipeState, event: simpy.Event) -> None:
        """Finish the instruction pipe `ps` waited on (a flag, a GM transfer) and continue."""
        try:
            idx, now = ps.current, self.env.now
            free = self._resumers[self.kinds[idx]](ps, idx, event.value)  # type: ignore[misc]
            if free > now:
                ps.alarm.after(free - now)  # type: ignore[union-attr]
            else:
                self._execute(ps, event)
        except Exception as exc:
            fail_later(self.env, exc)

    # --- handlers: each records its instruction's cycles and returns when the pipe is free -------

    def _compute(self, ps: _PipeState, idx: int, now: int) -> int:
        occupancy = self.occupancy[idx]
        done = now + self.latency[idx]
        if done > ps.done_at:
            ps.done_at = done
        free = self.busy_end[idx] = now + occupancy
        self.end[idx] = done
        ps.busy += occupancy
        if self.state is not None:
            self._compute_numbers(idx, now, done)
        return free

    def _compute_numbers(self, idx: int, now: int, done: int) -> None:
        instr, functional = self.kernel.instructions[idx], self.functional
        functional.land(instr, self.state, functional.start(instr, self.state, now), done)  # type: ignore[union-attr]

    def _gm(self, ps: _PipeState, idx: int, now: int) -> int | simpy.Event:
        if self.state is not None:
            instr = self.kernel.instructions[idx]
            ps.value = self.functional.start(instr, self.state, now)  # type: ignore[union-attr]
        timing = self.memsys.start(self.aux[idx])
        if timing.pending is not None:  # other cores' traffic decides when its bytes have moved
            return timing.pending
        return self._gm_timed(ps, idx, now, timing)

    def _gm_landed(self, ps: _PipeState, idx: int, flow: Any) -> int:
        return self._gm_timed(ps, idx, self.start[idx], flow.timing)

    def _gm_timed(self, ps: _PipeState, idx: int, now: int, timing: GmTiming) -> int:
        occupied, done = timing.occupied, timing.done
        if done > ps.done_at:
            ps.done_at = done
        self.busy_end[idx], self.end[idx] = occupied, done
        ps.busy += occupied - now
        if self.state is not None:
            self.functional.land(self.kernel.instructions[idx], self.state, ps.value, done)  # type: ignore[union-attr]
        return occupied

    def _set(self, ps: _PipeState, idx: int, now: int) -> int:
        done_at = ps.done_at
        fire = (now if now > done_at else done_at) + self.flag_cycles
        if fire > ps.synced_at:
            ps.synced_at = fire
        self._set_flag(idx, now, fire)
        return now

    def _set_flag(self, idx: int, now: int, fire: int) -> None:
        self.busy_end[idx], self.end[idx] = now, fire
        earlier = self.flag_list[self.aux[idx]].set(fire, idx)
        if earlier >= 0:
            self._double_set(idx, earlier, now)

    def _wait(self, ps: _PipeState, idx: int, now: int) -> int | simpy.Event:
        got = self.flag_list[self.aux[idx]].wait(self.env)
        if type(got) is not tuple:  # not set yet: sleep until a set_flag hands it over
            ps.blocked = idx
            return got
        return self._waited(ps, idx, now, got)

    def _wait_released(self, ps: _PipeState, idx: int, got: tuple[int, int]) -> int:
        ps.blocked = -1
        return self._waited(ps, idx, self.env.now, got)

    def _waited(self, ps: _PipeState, idx: int, now: int, got: tuple[int, int]) -> int:
        visible_at, self.released_by[idx] = got
        done = visible_at if visible_at > now else now
        self.busy_end[idx] = self.end[idx] = done
        if done > ps.done_at:  # a barrier ALL after it waits for it too
            ps.done_at = done
        return done

    def _barrier(self, ps: _PipeState, idx: int, now: int) -> int:
        done = ps.done_at if ps.done_at > now else now
        self.busy_end[idx] = self.end[idx] = done
        return done

    def _no_executor(self, ps: _PipeState, idx: int, now: int) -> int:
        raise AssertionError(f"instruction {idx} runs on the front-end, not on pipe {ps.pipe.value}")

    # --- flags ------------------------------------------------------------------------------------

    def _double_set(self, idx: int, earlier: int, now: int) -> None:
        instr, first = self.kernel.instructions[idx], self.kernel.instructions[earlier]
        src, dst, event = self.kernel.instructions[idx].key  # type: ignore[attr-defined]
        raise SyncError(
            f"core {self.name}, kernel {self.kernel.name}: instruction {idx} `{instr}` sets flag "
            f"({src.value} -> {dst.value}, event {event}) at cycle {now} while the set by instruction "
            f"{earlier} `{first}` is still unconsumed; hardware forbids a second set before a "
            f"wait_flag takes the first"
        )

    def _finish(self) -> None:
        """Every pipe has drained: the kernel is done when its last result lands."""
        last = max(self._clock, self.env.now, *(ps.done_at for ps in self.pipes.values()))
        if last > self.env.now:
            self.env.timeout(last - self.env.now).callbacks.append(lambda _: self.done.succeed(last))
        else:
            self.done.succeed(last)

    # --- after the run ----------------------------------------------------------------------------

    @property
    def issued(self) -> int:
        """Instructions issued so far (the front-end issues in order)."""
        return self._next

    @property
    def finished(self) -> bool:
        return self.issue_done and all(ps.finished for ps in self._executors)

    def stall_report(self) -> str:
        """Why this core cannot advance: each blocked pipe, the instruction it waits on, the flags."""
        instrs = self.kernel.instructions
        lines = [f"core {self.name}, kernel {self.kernel.name}:"]
        if not self.issue_done:
            at = f"instruction {self._next} `{instrs[self._next]}`"
            if self._blocked_on is not None:
                why = f"issue of {at}: the {self._blocked_on.pipe.value} queue is full"
            elif self._barrier_pending:
                why = f"{at}: pipes still busy"
            else:
                why = at
            lines.append(f"  front-end (S) waits on {why}")
        for p, ps in self.pipes.items():
            if p is Pipe.S:
                continue
            if ps.blocked >= 0:
                lines.append(f"  pipe {p.value} blocked at instruction {ps.blocked} `{instrs[ps.blocked]}`")
            elif ps.queue:
                idx = ps.queue[0][0]
                lines.append(f"  pipe {p.value}: {len(ps.queue)} queued, next {idx} `{instrs[idx]}`")
        flags = self.flags.describe()
        lines.append("  flags: " + (flags.replace("\n", "\n         ") if flags else "none used"))
        return "\n".join(lines)
