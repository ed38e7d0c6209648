"""npusim: when each instruction of an Ascend-class NPU kernel happens and what it costs."""
