"""Speed of light: what bounds a run, as the fraction of its time each resource alone would need."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isa.instructions import Mmad
from isa.types import DType, Pipe
from npusim.config import HardwareConfig
from npusim.costs import cube_k0
from npusim.results import Result

# Below this share of the run for the busiest resource, no resource is the limit: the time goes to
# latency and dependencies (dispatch, DMA latency, flag hand-offs, a serial chain of tasks).
LATENCY_BOUND_BELOW = 0.5
BOUND_FROM = 0.8  # from this share on, that resource is what the run is bound by


@dataclass(frozen=True)
class Bounds:
    """Lower bounds on a run's cycles, each from one resource, and which one comes closest.

    `compute_cycles`: the cube work at peak rate (m0 x n0 x k0 MACs per cycle) spread over the cube
    cores that ran tasks. `memory_cycles`: HBM bytes over HBM bandwidth. `pipe_cycles`: for each
    pipe, its busy cycles spread over the cores that have it and ran tasks. Fractions are of the
    achieved `cycles`.
    """

    cycles: int
    flops: int
    hbm_bytes: float
    compute_cycles: float
    memory_cycles: float
    pipe_cycles: dict[Pipe, float]

    def fraction(self, bound: float) -> float:
        return bound / self.cycles if self.cycles else 0.0

    @property
    def compute(self) -> float:
        return self.fraction(self.compute_cycles)

    @property
    def memory(self) -> float:
        return self.fraction(self.memory_cycles)

    @property
    def limiter(self) -> tuple[str, float]:
        """(name of the resource with the largest bound, its fraction of the run)."""
        # A shared resource near its limit comes first: a pipe that waits on HBM stays busy while it
        # waits, so its busy time is a symptom of the bound, not a second one.
        for name, cycles in (("HBM bandwidth", self.memory_cycles), ("cube compute", self.compute_cycles)):
            if self.fraction(cycles) >= BOUND_FROM:
                return name, self.fraction(cycles)
        candidates = {"cube compute": self.compute_cycles, "HBM bandwidth": self.memory_cycles}
        candidates |= {f"pipe {p.value}": c for p, c in self.pipe_cycles.items()}
        name = max(candidates, key=lambda k: (candidates[k], k))
        return name, self.fraction(candidates[name])

    @property
    def bound_by(self) -> str:
        """In a word: the bounding resource, `partly` it, or `latency` (the classes of `explain`)."""
        name, share = self.limiter
        if share >= BOUND_FROM:
            return name
        return "latency" if share < LATENCY_BOUND_BELOW else f"partly {name}"

    def explain(self) -> str:
        """One sentence: what limited the run."""
        name, share = self.limiter
        if share < LATENCY_BOUND_BELOW:
            return (f"latency-bound: no resource is busy for more than {100 * share:.0f}% of the run "
                    f"(the busiest is {name}); the time goes to dispatch, DMA latency and dependencies")
        if share < BOUND_FROM:
            return (f"closest limit {name} at {100 * share:.0f}% of the run; the rest goes to latency "
                    f"and dependencies")
        return f"bound by {name}: it alone needs {100 * share:.0f}% of the run's cycles"


def _mmad_peak_cycles(instr: Mmad, result: Result) -> float:
    cube = result.config.cube
    k0 = cube_k0(result.config, instr.a.dtype)
    m, k = instr.a.shape
    return m * k * instr.b.shape[1] / (cube.m0 * cube.n0 * k0)


def bounds(result: Result) -> Bounds:
    """The speed-of-light bounds of one run."""
    peak_cache: dict[int, float] = {}
    cube_work = 0.0
    flops = 0
    cube_cores = set()
    for trace in result.traces:
        flops += int(trace.flops.sum())
        for instr in trace.kernel.instructions:
            if type(instr) is Mmad:
                key = id(instr)
                peak = peak_cache.get(key)
                if peak is None:
                    peak = peak_cache[key] = _mmad_peak_cycles(instr, result)
                cube_work += peak
                cube_cores.add(trace.core)
    utilization = result.utilization()
    pipe_cycles = {p: utilization[p] * result.cycles for p in Pipe if p is not Pipe.S and utilization[p]}
    mem = result.memory
    hbm_per_cycle = result.config.hbm.bandwidth_gbps / result.config.clock_ghz
    return Bounds(
        cycles=result.cycles,
        flops=flops,
        hbm_bytes=mem.hbm_bytes,
        compute_cycles=cube_work / len(cube_cores) if cube_cores else 0.0,
        memory_cycles=mem.hbm_bytes / hbm_per_cycle,
        pipe_cycles=pipe_cycles,
    )


def cube_peak_flops(config: HardwareConfig, dtype: DType = DType.BF16) -> float:
    """The chip's cube ceiling in flop/s for `dtype` inputs: every cube core at its fractal rate.

    A fractal step is m0 x n0 x k0 multiply-adds (2 flops each) per cycle, per `fp32_step_cycles`
    cycles for fp32 inputs, as `npusim.costs` times an mmad; `chip.cube_cores` counts the cube
    cores of a split chip and every core of a coupled one.
    """
    cube = config.cube
    step = cube.fp32_step_cycles if dtype is DType.FP32 else 1
    per_cycle = cube.m0 * cube.n0 * cube_k0(config, dtype) * 2 / step
    return config.chip.cube_cores * per_cycle * config.clock_ghz * 1e9


def hbm_peak_bytes(config: HardwareConfig) -> float:
    """The chip's HBM ceiling in bytes per second."""
    return config.hbm.bandwidth_gbps * 1e9


def cube_flops(result: Result) -> dict[DType, int]:
    """The flops of the run's mmads by input dtype: the work the cube ceiling bounds.

    Vector flops (one per destination element) are left out: no cube ceiling bounds them.
    """
    masks: dict[int, tuple[np.ndarray, list[DType]]] = {}  # per kernel: its mmads and their dtypes
    out: dict[DType, int] = {}
    for trace in result.traces:
        kernel = trace.kernel
        found = masks.get(id(kernel))
        if found is None:
            mmads = [(i, instr.a.dtype) for i, instr in enumerate(kernel.instructions)
                     if isinstance(instr, Mmad)]
            index = np.array([i for i, _ in mmads], dtype=np.int64)
            found = masks[id(kernel)] = (index, [d for _, d in mmads])
        index, dtypes = found
        for dtype, flops in zip(dtypes, trace.flops[index].tolist(), strict=True):
            out[dtype] = out.get(dtype, 0) + int(flops)
    return out
