"""The timing engine of one core on SimPy: an in-order front-end, bounded pipe queues, pipe executors.

The front-end issues instructions in program order, one every `issue_cycles`, into a bounded queue
per pipe; a full queue stalls issue. It keeps its own issue clock and runs ahead of simulated time,
synchronising only when a queue may be full, at `wait_flag ... S`, at a `set_flag S ...` whose flag is
still set, and at `barrier ALL`: a queue's length can only shrink while the front-end is not adding to
it, so running ahead never misses a stall, and flags on S are judged at their own issue cycle.
Each pipe executor takes its queue in order: an instruction starts at max(its issue, the end of the
previous one's occupancy), holds the pipe for its occupancy (one SimPy timeout), and completes after
its latency. Completion needs no event: set_flag fires at max(now, the pipe's latest completion),
barrier P waits until then, and functional writes are queued by completion time and applied just
before any later read (reads happen when an instruction starts), so an unsynchronised consumer sees
stale data, as on hardware.
"""

from __future__ import annotations

import heapq
from array import array
from collections import deque
from collections.abc import Mapping
from itertools import count
from typing import Any

import numpy as np
import simpy

from isa.instructions import Barrier, Instruction, Mmad, SetFlag, WaitFlag
from isa.interpret import result
from isa.memory import MachineState
from isa.program import Kernel, Tensor
from isa.regions import Region
from isa.semantics import accumulate, mmad_product
from isa.types import Pipe
from npusim.config import HardwareConfig
from npusim.costs import cost
from npusim.flags import Flags, SyncError
from npusim.memsys import MemorySystem

PIPES: tuple[Pipe, ...] = tuple(Pipe)
_OP, _SET, _WAIT, _BARRIER, _BARRIER_ALL, _GM = range(6)
_KINDS = {SetFlag: _SET, WaitFlag: _WAIT, Barrier: _BARRIER}


class PendingWrites:
    """Functional results waiting for their instruction's completion cycle, applied in time order.

    An accumulating mmad's entry is its product alone: it is added to the accumulator when it lands,
    so back-to-back mmads into one L0C tile accumulate in order even while their latencies overlap,
    as the cube's accumulator does (no barrier is needed between them, unlike other same-pipe RAW).
    """

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Region, np.ndarray, MachineState, bool]] = []
        self._seq = count()  # ties at one cycle resolve in the order instructions started

    def push(self, at: int, state: MachineState, region: Region, value: np.ndarray,
             add: bool = False) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), region, value, state, add))

    def flush(self, now: int) -> None:
        """Apply every write that completes at or before `now` (a result is visible in its own cycle)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, region, value, state, add = heapq.heappop(heap)
            state.write(region, accumulate(state.view(region), value) if add else value)

    def flush_all(self) -> None:
        self.flush(1 << 62)


class _PipeState:
    __slots__ = ("pipe", "queue", "done_at", "wake", "busy", "blocked", "finished")

    def __init__(self, pipe: Pipe):
        self.pipe = pipe
        self.queue: deque[tuple[int, int]] = deque()  # (instruction index, issue cycle)
        self.done_at = 0  # latest completion cycle of any instruction started so far
        self.wake: simpy.Event | None = None  # the executor sleeps on this while its queue is empty
        self.busy = 0  # cycles of occupancy
        self.blocked = -1  # index of a wait_flag the pipe is blocked on
        self.finished = False


class CoreRun:
    """One kernel on one core: builds the SimPy processes and records when each instruction ran.

    Records per instruction (arrays indexed by instruction index): issue, start, busy_end (end of
    occupancy), end (completion), bytes, flops, and for each wait_flag the set_flag that released it.
    """

    def __init__(self, env: simpy.Environment, name: str, kernel: Kernel, config: HardwareConfig,
                 tensors: Mapping[str, Tensor], memsys: MemorySystem, state: MachineState | None,
                 writes: PendingWrites | None):
        self.env, self.name, self.kernel, self.config = env, name, kernel, config
        self.memsys, self.state, self.writes = memsys, state, writes
        self.done = env.event()  # succeeds with the cycle the last instruction completes
        self.flags = Flags()
        self.pipes = {p: _PipeState(p) for p in PIPES}
        n = len(kernel.instructions)
        zeros = bytes(8 * n)
        self.issue, self.start, self.busy_end, self.end = (array("q", zeros) for _ in range(4))
        self.released_by = array("i", [-1]) * n
        self._decode(tensors)
        self.issue_done = False
        self._next = 0  # index of the next instruction to issue
        self._clock = 0  # issue cycle of the last issued instruction (the front-end runs ahead)
        self._blocked_on: _PipeState | None = None  # the pipe whose full queue stalls issue
        self._barrier_pending = False  # a barrier ALL waits for every pipe to go idle

    def _decode(self, tensors: Mapping[str, Tensor]) -> None:
        """Everything the hot loops need per instruction, worked out once per distinct instruction."""
        by_id: dict[int, int] = {}
        by_value: dict[Instruction, int] = {}
        table: list[tuple[Any, ...]] = []  # one row per distinct instruction
        codes = array("l")  # each instruction's row
        for instr in self.kernel.instructions:
            code = by_id.get(id(instr))
            if code is None:
                code = by_value.get(instr)
                if code is None:
                    code = by_value[instr] = len(table)
                    table.append(self._decode_one(instr, tensors))
                by_id[id(instr)] = code
            codes.append(code)
        index = np.frombuffer(codes, dtype=np.int_)
        columns = list(zip(*table, strict=True)) if table else [()] * 7

        def gathered(column: tuple[Any, ...], typecode: str) -> array:
            return array(typecode, np.asarray(column, dtype=typecode)[index].tobytes())

        self.kinds = gathered(columns[0], "b")
        self.occupancy, self.latency = gathered(columns[1], "q"), gathered(columns[2], "q")
        self.nbytes, self.flops = gathered(columns[3], "q"), gathered(columns[4], "q")
        pipes, aux = columns[5], columns[6]
        self.pipe_of: list[Pipe] = [pipes[c] for c in codes]
        self.aux: list[Any] = [aux[c] for c in codes]  # a set/wait_flag's Flag, a GM access's Transfer

    def _decode_one(self, instr: Instruction, tensors: Mapping[str, Tensor]) -> tuple[Any, ...]:
        kind = _KINDS.get(type(instr), _OP)
        if kind == _BARRIER and instr.target is None:  # type: ignore[attr-defined]
            kind = _BARRIER_ALL
        c = cost(instr, self.config, tensors)
        aux: Any = None
        if kind in (_SET, _WAIT):
            aux = self.flags.get(instr.key)  # type: ignore[attr-defined]
        elif c.transfer is not None:
            kind, aux = _GM, c.transfer
        return (kind, c.occupancy, c.latency, c.bytes, c.flops, instr.pipe, aux)

    def start_processes(self) -> None:
        """Start one executor per pipe and issue what can be issued at the current cycle."""
        for p in PIPES:
            if p is not Pipe.S:
                self.env.process(self._executor(self.pipes[p]))
        self._clock = self.env.now
        state_of = [None if p is Pipe.S else self.pipes[p] for p in self.pipe_of]
        fe = self.config.frontend
        self._frontend_locals = (self.kinds, self.pipes, state_of, fe.issue_cycles, fe.queue_depth,
                                 self.issue, self.start, self.busy_end, self.end, len(self.kinds))
        self._advance()

    # --- front-end ------------------------------------------------------------------------------
    # The front-end is not a process: `_advance` issues in order until an instruction cannot issue
    # yet, and whoever unblocks it calls `_advance` again (the executor that frees a queue slot, a
    # flag's event, the last pipe to go idle before `barrier ALL`). A stall on a full queue ends at
    # the first pop of that queue after it began, at max(the instruction's issue cycle, the pop): so
    # no event is spent on the front-end unless it truly waits.

    def _advance(self) -> None:
        # One tuple of locals: an executor resumes the front-end at nearly every pop of a full queue.
        kinds, pipes, state_of, issue_cycles, depth, issue, start, busy_end, end, n = self._frontend_locals
        idx, t = self._next, self._clock
        while idx < n:
            t_issue = t + issue_cycles
            ps = state_of[idx]
            if ps is not None:
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
                continue
            # Instructions on S run on the front-end itself.
            kind = kinds[idx]
            issue[idx] = start[idx] = t_issue
            done = t_issue
            if kind in (_SET, _WAIT) and t_issue > self.env.now and (kind == _WAIT or self.aux[idx].pending):
                # A flag is judged in cycle order: a wait may consume it, and a set find it still
                # pending, only once simulated time has reached the cycle the front-end issues them.
                self._next, self._clock = idx, t
                self.env.timeout(t_issue - self.env.now).callbacks.append(self._resume)
                return
            if kind == _SET:
                earlier = self.aux[idx].set(t_issue + self.config.sync.flag_cycles, idx)
                if earlier >= 0:
                    self._double_set(idx, earlier, t_issue)
            elif kind == _WAIT:
                got = self.aux[idx].wait(self.env)
                if isinstance(got, simpy.Event):
                    self._next, self._clock = idx, t
                    got.callbacks.append(self._on_frontend_flag)
                    return
                self.released_by[idx] = got[1]
                done = max(t_issue, got[0])
            elif kind == _BARRIER_ALL:
                if not self._all_idle():
                    self._next, self._clock, self._barrier_pending = idx, t, True
                    return
                done = max(t_issue, *(ps.done_at for ps in pipes.values()))
            busy_end[idx] = end[idx] = done
            idx, t = idx + 1, done
        self._next, self._clock = idx, t
        self.issue_done = True
        for ps in pipes.values():
            if ps.wake is not None:
                ps.wake.succeed()
                ps.wake = None

    def _resume(self, event: simpy.Event) -> None:
        self._advance()

    def _on_frontend_flag(self, event: simpy.Event) -> None:
        idx = self._next
        t_issue = self._clock + self.config.frontend.issue_cycles
        visible_at, setter = event.value
        self.released_by[idx] = setter
        self.issue[idx] = self.start[idx] = t_issue
        self.busy_end[idx] = self.end[idx] = self._clock = max(t_issue, visible_at)
        self._next = idx + 1
        self._advance()

    def _all_idle(self) -> bool:
        """Every executor sleeps on an empty queue or has finished (S has no executor)."""
        return all(ps.wake is not None or ps.finished for p, ps in self.pipes.items() if p is not Pipe.S)

    def _on_pipe_idle(self) -> None:
        if self._barrier_pending and self._all_idle():
            self._barrier_pending = False
            self._advance()  # issues the barrier ALL it stopped at, now that every pipe is idle

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

    # --- pipe executors ---------------------------------------------------------------------------

    def _executor(self, ps: _PipeState):
        env, kinds, instrs = self.env, self.kinds, self.kernel.instructions
        occupancy, latency = self.occupancy, self.latency
        start, busy_end, end = self.start, self.busy_end, self.end
        flag_cycles = self.config.sync.flag_cycles
        state, writes = self.state, self.writes
        aux, released_by = self.aux, self.released_by
        memsys, hit_latency = self.memsys, self.config.l2.hit_latency_cycles
        queue = ps.queue
        while True:
            if not queue:
                if self.issue_done:
                    ps.finished = True
                    self._on_pipe_idle()
                    if self.finished:
                        self._finish()
                    return
                wake = ps.wake = env.event()
                if self._barrier_pending:  # may issue more (and trigger `wake`) before we sleep
                    self._on_pipe_idle()
                yield wake
                continue
            idx, issued = queue[0]
            now = env.now
            if issued > now:
                yield env.timeout(issued - now)
                now = issued
            queue.popleft()
            if self._blocked_on is ps:  # the front-end stalled on this full queue: issue resumes now
                self._blocked_on = None
                self._clock = max(self._clock, now - self.config.frontend.issue_cycles)
                self._advance()
            start[idx] = now
            kind = kinds[idx]
            if kind == _WAIT:  # flags first: most of a pipelined kernel's instructions are sync
                flag = aux[idx]
                visible_at = flag.visible_at
                if visible_at >= 0:  # Flag.wait inlined: the set is pending, take it
                    released_by[idx] = flag.setter
                    flag.visible_at = flag.setter = -1
                    flag.waits += 1
                else:  # not set yet: sleep until a set_flag hands it over
                    ps.blocked = idx
                    visible_at, released_by[idx] = yield flag.wait(env)
                    ps.blocked = -1
                    now = env.now
                if visible_at > now:
                    yield env.timeout(visible_at - now)
                    now = visible_at
                busy_end[idx] = end[idx] = now
            elif kind == _SET:
                done_at = ps.done_at
                fire = (now if now > done_at else done_at) + flag_cycles
                busy_end[idx] = now
                end[idx] = fire
                flag = aux[idx]
                if flag.waiter is None and flag.visible_at < 0:  # Flag.set inlined: nobody waits yet
                    flag.visible_at, flag.setter = fire, idx
                    flag.sets += 1
                else:
                    earlier = flag.set(fire, idx)
                    if earlier >= 0:
                        self._double_set(idx, earlier, now)
            elif kind == _OP:
                occ = occupancy[idx]
                done = now + latency[idx]
                if done > ps.done_at:
                    ps.done_at = done
                busy_end[idx] = now + occ
                end[idx] = done
                ps.busy += occ
                if state is not None:
                    instr = instrs[idx]
                    writes.flush(now)
                    if type(instr) is Mmad and instr.accumulate:
                        product = mmad_product(instr, state.view(instr.a), state.view(instr.b))
                        writes.push(done, state, instr.dst, product, add=True)
                    else:
                        writes.push(done, state, instr.writes[0], result(instr, state))
                if occ:
                    yield env.timeout(occ)
            elif kind == _GM:  # its bytes go through the chip's memory system, shared with every core
                tr = aux[idx]
                if state is not None:
                    instr = instrs[idx]
                    writes.flush(now)
                    value = result(instr, state)
                moved, hit = memsys.start(tr.region, tr.write, tr.moved, tr.cap)
                if type(moved) is int:  # uncontended: the bytes take a known time
                    occupied = now + moved + tr.overhead
                else:
                    yield moved
                    occupied = env.now + tr.overhead
                done = occupied + (hit_latency if hit and not tr.write else tr.latency)
                if done > ps.done_at:
                    ps.done_at = done
                busy_end[idx], end[idx] = occupied, done
                ps.busy += occupied - now
                if state is not None:
                    writes.push(done, state, instr.writes[0], value)
                if occupied > env.now:
                    yield env.timeout(occupied - env.now)
            else:  # barrier on this pipe: later instructions wait for every earlier one to complete
                if ps.done_at > now:
                    yield env.timeout(ps.done_at - now)
                busy_end[idx] = end[idx] = env.now

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
        return self.issue_done and all(ps.finished for p, ps in self.pipes.items() if p is not Pipe.S)

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
