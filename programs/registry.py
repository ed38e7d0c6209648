"""Programs the command line can run by name: their options, inputs and PyTorch references."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from isa.draw import parse_seed
from isa.program import Program
from isa.types import DType
from programs import matmul, paged_attention, tile_matmul
from programs.target import Hardware


@dataclass(frozen=True)
class Option:
    """One program option: `--name` on the command line (dashes for underscores)."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    choices: Sequence[str] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Instance:
    """A workload built for one set of option values: the program, its inputs, what torch says."""

    program: Program
    params: Mapping[str, Any]  # every option's value, defaults included
    inputs: Callable[[], dict[str, np.ndarray]]  # drawn on demand: a timing-only run needs none
    references: Callable[[dict[str, np.ndarray]], dict[str, dict[str, np.ndarray]]]  # name -> outputs
    rtol: float
    atol: float


@dataclass(frozen=True)
class Workload:
    """A runnable program family: its options and how to build an instance from their values."""

    name: str
    summary: str
    options: tuple[Option, ...]
    # (option values, cube cores, chip, what the instances of one comparison share)
    make: Callable[[dict[str, Any], int, Hardware | None, dict[Any, Any]], Instance]
    example: str = ""
    variants: tuple[str, ...] = field(default=())
    # The HBM bytes any run must read, from the option values (None: the workload does not say), and
    # what they are ("K and V read once"): the numerator of the run's HBM roofline.
    must_read: Callable[[dict[str, Any]], int] | None = None
    must_read_what: str = ""

    def instance(self, values: Mapping[str, Any], cube_cores: int, config: Hardware | None = None,
                 shared: dict[Any, Any] | None = None) -> Instance:
        """Build with `values` (missing options take their defaults); ValueError for a bad value.

        The program is laid out for `config`'s cores (tile sizes, q-tiles, alignments); None lays it
        out for the 910B's. A shape too large for the target is built anyway: `isa.check` refuses it.
        Instances given one `shared` dict (the variants of one comparison) keep there the inputs and
        references they have in common, drawn and computed once (and then the same arrays).
        """
        known = {o.name for o in self.options}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{self.name} has no option {', '.join(unknown)}; "
                             f"valid: {', '.join(sorted(known)) or 'none'}")
        params = {o.name: o.default for o in self.options} | dict(values)
        return self.make(params, cube_cores, config, {} if shared is None else shared)

    def roofline_bytes(self, values: Mapping[str, Any]) -> int | None:
        """HBM bytes any run with `values` must read (missing options take their defaults), or None
        if the workload does not say. ValueError for values the workload refuses."""
        if self.must_read is None:
            return None
        return self.must_read({o.name: o.default for o in self.options} | dict(values))


def int_list(text: str) -> list[int]:
    """'1,300,4096' -> [1, 300, 4096]."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"expected comma-separated integers, got {text!r}") from None


# --- tile-matmul --------------------------------------------------------------------------------

def _tile_matmul(params: dict[str, Any], cube_cores: int, config: Hardware | None,
                 shared: dict[Any, Any]) -> Instance:
    # One fixed tile, the same on every chip (tile_matmul.s is its text twin); it fits every preset.
    return Instance(tile_matmul.build(), params, lambda: tile_matmul.inputs(params["seed"]),
                    lambda values: {"torch fp32": tile_matmul.reference(values)}, rtol=1e-5, atol=1e-5)


# --- matmul -------------------------------------------------------------------------------------

_DTYPES = {"bf16": DType.BF16, "fp16": DType.FP16}


def _matmul(params: dict[str, Any], cube_cores: int, config: Hardware | None,
            shared: dict[Any, Any]) -> Instance:
    m, n, k = params["m"], params["n"], params["k"]
    for name in ("m", "n", "k"):
        if params[name] < 1:
            raise ValueError(f"--{name} must be at least 1, got {params[name]}")
    if not 0 <= params["cores"] <= cube_cores:
        raise ValueError(f"--cores {params['cores']}: the chip has {cube_cores} cube cores; give 1 to "
                         f"{cube_cores}, or 0 for all")
    dtype = _DTYPES[params["dtype"]]
    cores = params["cores"] or cube_cores
    build = matmul.build if params["variant"] == "panels" else matmul.build_per_tile
    program = build(m, n, k, cores, dtype, config)
    params = params | {"cores": len(program.tasks)}  # the cores it uses: a task each, at most `cores`
    return Instance(program, params, lambda: matmul.inputs(m, n, k, dtype, params["seed"]),
                    lambda values: {"torch fp32": matmul.reference(values)}, rtol=1e-4, atol=1e-4)


# --- paged attention ----------------------------------------------------------------------------

def _paged_shape(params: dict[str, Any]) -> tuple[paged_attention.Shape, int | list[int]]:
    """The problem's shape and its context lengths (--context-lens, else --context-len for all)."""
    shape = paged_attention.Shape(params["batch"], params["num_heads"], params["num_kv_heads"],
                                  params["head_dim"], params["block_size"])
    lens = params["context_lens"] if params["context_lens"] is not None else params["context_len"]
    return shape, lens


def _paged_attention(params: dict[str, Any], cube_cores: int, config: Hardware | None,
                     shared: dict[Any, Any]) -> Instance:
    if params["context_lens"] is not None:  # one length per request: --context-len does not apply
        params = params | {"context_len": None}
    shape, lens = _paged_shape(params)
    variant = params["variant"]
    steps = params["steps_per_task"]
    # The program needs only the block table; the KV cache (gigabytes at long contexts) is drawn
    # when a run with numerics asks for its inputs, from the same seed, so it is the same table.
    blocks = paged_attention.make_blocks(shape, lens, seed=params["seed"])
    program = paged_attention.build(blocks, variant, config,
                                    paged_attention.STEPS_PER_TASK if steps is None else steps)
    # The data and the plain reference depend on the problem, not the variant: instances that share
    # `shared` (compare's) draw and compute them once.
    problem = ("paged-attention", shape, lens if isinstance(lens, int) else tuple(lens), params["seed"])

    def case() -> paged_attention.Case:
        if (problem, "case") not in shared:
            shared[problem, "case"] = paged_attention.make_case(shape, lens, seed=params["seed"])
        return shared[problem, "case"]

    def references(values: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        golden = paged_attention.reference_online(case(), variant)
        if (problem, "fp32") not in shared:
            shared[problem, "fp32"] = paged_attention.reference_fp32(case())
        return {f"online-softmax golden ({variant} steps, bf16 P)": {"out": golden},
                "plain fp32 attention": {"out": shared[problem, "fp32"]}}

    return Instance(program, params, lambda: case().inputs(), references, rtol=2e-2, atol=2e-2)


_SEED = Option("seed", parse_seed, 0, "seed of the random inputs")

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "paged-attention",
            "vLLM-style paged attention over a block-table KV cache, 1-block or 2-block (multitier) steps",
            (
                Option("variant", str, "2block", "KV blocks per step: one, or pairs then a 1-block tail",
                       choices=paged_attention.VARIANTS),
                Option("batch", int, 64, "requests"),
                Option("num_heads", int, 16, "query heads"),
                Option("num_kv_heads", int, 1, "KV heads (1: MQA; num_heads: MHA; between: GQA)"),
                Option("head_dim", int, 128, "head dimension"),
                Option("block_size", int, 128, "tokens per KV-cache block"),
                Option("context_len", int, 8192, "context length of every request"),
                Option("context_lens", int_list, None, "one context length per request, e.g. 1,300,4096 "
                       "(overrides --context-len)"),
                _SEED,
                Option("steps_per_task", int, None, f"steps of a q-tile each task walks (default "
                       f"{paged_attention.STEPS_PER_TASK}; 1: a task per step)"),
            ),
            _paged_attention,
            example="npusim run paged-attention --variant 1block --batch 3 --context-lens 100,2048,513",
            variants=paged_attention.VARIANTS,
            must_read=lambda params: paged_attention.kv_bytes(*_paged_shape(params)),
            must_read_what="K and V read once",
        ),
        Workload(
            "matmul", "tiled GEMM C = A @ B (fp16/bf16 in, fp32 out), cube cores in a grid, K panels in L1",
            (
                Option("variant", str, "panels", "kernel: K panels kept in L1 (the published tiling), or "
                       "one output tile at a time reloading A and B every k-step (teaching)",
                       choices=matmul.VARIANTS),
                Option("m", int, 1024, "rows of A and C"),
                Option("n", int, 1024, "columns of B and C"),
                Option("k", int, 1024, "columns of A, rows of B"),
                Option("dtype", str, "bf16", "input dtype", choices=tuple(_DTYPES)),
                Option("cores", int, 0, "cube cores to use (0: all of the chip's)"),
                _SEED,
            ),
            _matmul,
            example="npusim run matmul --m 2048 --n 2048 --k 512 --dtype fp16",
            variants=matmul.VARIANTS,
        ),
        Workload(
            "tile-matmul", "one 16x128 @ 128x128 bf16 cube tile (load, move, mmad, fixpipe)",
            (_SEED,), _tile_matmul, example="npusim run tile-matmul --seed 3 --listing",
        ),
    )
}


def get(name: str) -> Workload:
    """The workload called `name`; KeyError lists the valid names."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise KeyError(f"unknown program {name!r}; available: {', '.join(WORKLOADS)}") from None
