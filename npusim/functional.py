"""The numbers of a timed run, kept beside its timing: what each instruction reads and writes, and when.

The timing engine decides when an instruction starts and completes; this module decides what that
means for the data, with the ISA's semantics (`isa.semantics`):

- an instruction reads its sources when it starts and its result lands when it completes, so an
  unsynchronised consumer sees stale data, as on hardware. Results wait in a heap ordered by
  completion cycle and are applied just before any later read;
- an accumulating `mmad` lands as its product alone, added to the accumulator when it lands, so
  back-to-back mmads into one L0C tile accumulate in order even while their latencies overlap, as
  the cube's accumulator does (no barrier is needed between them, unlike other same-pipe RAW);
- a task starts on poisoned on-chip buffers and shares only GM with other tasks: whatever it left
  pending has landed by the time the next task on its core starts (`end_task`), so the timed run
  computes what `isa.interpret` computes for a correctly synchronised program.

A timing-only run has no FunctionalState at all; a core's buffers are made when a task first
runs on it.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from itertools import count

import numpy as np

from isa.instructions import Instruction, Mmad
from isa.interpret import result
from isa.limits import CoreLimits
from isa.memory import CoreMemory, GlobalMemory, MachineState
from isa.program import Tensor
from isa.regions import Region
from isa.semantics import accumulate, mmad_product


class FunctionalState:
    """GM and every core's buffers, and the results still to land, in completion order."""

    __slots__ = ("gm", "_cores", "_heap", "_seq")

    def __init__(self, tensors: tuple[Tensor, ...], inputs: Mapping[str, np.ndarray]) -> None:
        """Raises IsaError naming the tensor if an input is missing, unknown or of the wrong kind."""
        self.gm = GlobalMemory(tensors, inputs)
        self._cores: dict[str, CoreMemory] = {}
        self._heap: list[tuple[int, int, Region, np.ndarray, MachineState, bool]] = []
        self._seq = count()  # ties at one cycle resolve in the order instructions started

    # --- tasks --------------------------------------------------------------------------------------

    def begin_task(self, core: str, limits: CoreLimits) -> MachineState:
        """The state a task on `core` acts on: that core's buffers, poisoned, and the shared GM."""
        memory = self._cores.get(core)
        if memory is None:
            memory = self._cores[core] = CoreMemory(limits)  # made poisoned
        else:
            memory.poison()  # a task sees nothing of the one before it on this core
        return MachineState(memory, self.gm)

    def end_task(self, now: int) -> None:
        """A task has finished at `now`: every result it left pending lands before the next starts."""
        self.flush(now)

    def tensors(self) -> dict[str, np.ndarray]:
        """Every GM tensor once the run is over (the caller owns them)."""
        self.flush(1 << 62)
        return self.gm.tensors(copy=False)

    # --- instructions -------------------------------------------------------------------------------

    def start(self, instr: Instruction, state: MachineState, now: int) -> np.ndarray:
        """What `instr` computes from what its sources hold at cycle `now` (it lands later, `land`)."""
        self.flush(now)
        if type(instr) is Mmad and instr.accumulate:
            return mmad_product(instr, state.view(instr.a), state.view(instr.b))
        return result(instr, state)

    def land(self, instr: Instruction, state: MachineState, value: np.ndarray, at: int) -> None:
        """`value`, computed by `start`, lands in `instr`'s destination at cycle `at`."""
        add = type(instr) is Mmad and instr.accumulate
        heapq.heappush(self._heap, (at, next(self._seq), instr.writes[0], value, state, add))

    def flush(self, now: int) -> None:
        """Apply every result that lands at or before `now` (a result is visible in its own cycle)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, region, value, state, add = heapq.heappop(heap)
            state.write(region, accumulate(state.view(region), value) if add else value)
