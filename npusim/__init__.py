"""npusim: when each instruction of an Ascend-class NPU kernel happens and what it costs."""

from npusim.config import HardwareConfig, load_preset
from npusim.results import KernelTrace, Record, Result
from npusim.simulate import DeadlockError, simulate

__all__ = ["DeadlockError", "HardwareConfig", "KernelTrace", "Record", "Result", "load_preset", "simulate"]
