"""The published Ascend 910B figures `npusim validate` replays, each with its source.

Numbers are copied from their sources as printed there (the tables below); a published figure that
is derived from them says how in its source text (e.g. totalCycles / 1024 transfers). Sources:

- msKPP: Huawei MindStudio's kernel performance predictor, measured 910B tables in
  `csrc/prof_data/resource910b.cpp` (mirror xiaobingling93-pixel/Ascend-mskpp @2d95073). Each DMA
  row is 1024 back-to-back transfers of `numBursts` KiB measured at 1.8 GHz (totalCycles / taskTime
  = 1800 MHz); msKPP turns GiB/s into bytes per cycle at 1800 MHz
  (`csrc/prof_data/data_adapter.cpp` `MovClass::InitOneMovPathData`).
- pto-isa: Huawei's PTO ISA cost model for A2/A3 (mirror zouzias/pto-isa-mirror), its fitted
  tile-op formulas (`formula_params.csv`) and cube model, and the measured GEMM of
  `kernels/manual/a2a3/gemm_performance/README.md`.
- asc-devkit: Huawei's Ascend C devkit perf tests (hicann/asc-devkit @dacba28), whose READMEs state
  each on-chip path as a bandwidth and a latency: model parameters, not measurements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from npusim.validation.replay import Alone, Gemm, LineFit, Replay, Span

DEFAULT_TOLERANCE = 0.25  # the bar for every row
EXACT_TOLERANCE = 0.05  # a figure the model states as a parameter or the same formula
GEMM_TOLERANCE = 0.15  # the bar for the GEMM against its published time


@dataclass(frozen=True)
class Measurement:
    """One published figure: what was measured, the figure and its unit, its source, how to replay it."""

    name: str
    group: str  # DMA, MTE1, vector, cube, GEMM: the section of docs/validation.md
    published: float
    unit: str
    tolerance: float  # largest accepted |simulated / published - 1|
    source: str
    replay: Replay


# --- msKPP DMA tables -----------------------------------------------------------------------------

_MSKPP = "msKPP (xiaobingling93-pixel/Ascend-mskpp@2d95073) csrc/prof_data/resource910b.cpp"
_GIB_PER_CYCLE = 2**30 / 1800e6  # msKPP: bytes_per_cycle = bandwidth x 1024^3 / (1800 MHz x 1e6)

# numBursts (KiB) -> totalCycles of 1024 back-to-back transfers
GM_TO_L1_910B1 = {1: 176977, 4: 239691, 16: 301787, 64: 638189, 256: 1721761, 512: 3436911}
GM_TO_UB_910B3 = {1: 221664, 4: 243568, 16: 306992, 64: 764652, 128: 1258133, 192: 1807825}
UB_TO_GM_910B1_76K = 110.1518373  # GiB/s at numBursts 76, the table's largest size
L0C_TO_GM_910B1_128K = 196.84  # GiB/s at numBursts 128, the table's largest size (the whole L0C)
L1_TO_L0A_910B1_64K = 437.55  # GiB/s at numBursts 64 (the whole L0A)
L1_TO_L0B_910B1_64K = 219.64  # GiB/s at numBursts 64 (the whole L0B)


def _load(space: str, kib: int) -> str:
    rows = kib  # fp16 rows of 512 elements: one KiB each
    return (f".tensor x fp16[{rows},512] input\n.kernel load\n"
            f"    load     {space}[0x0000] fp16[{rows},512] <- GM:x[0:{rows}, 0:512] fp16")


def _load_rows(path: str, table: str, space: str, cycles: dict[int, int]) -> list[Measurement]:
    return [Measurement(
        f"{path} load {kib} KiB, one transfer", "DMA", total / 1024, "cycles", DEFAULT_TOLERANCE,
        f'{_MSKPP} g_movTypeMap["{table}"] numBursts={kib}: totalCycles {total} / 1024 transfers',
        Alone(_load(space, kib), Span.COMPLETION)) for kib, total in cycles.items()]


def _rate_row(name: str, group: str, table: str, kib: int, gib_s: float, text: str,
              span: Span) -> Measurement:
    return Measurement(
        name, group, gib_s * _GIB_PER_CYCLE, "B/cycle", DEFAULT_TOLERANCE,
        f'{_MSKPP} g_movTypeMap["{table}"] numBursts={kib}: {gib_s} GiB/s x 2^30 / 1800 MHz',
        Alone(text, span, rate=True))


def dma_rows() -> list[Measurement]:
    """msKPP's GM -> L1 and GM -> UB load times per size, and the UB -> GM and L0C -> GM rates."""
    store = (".tensor y fp16[76,512] output\n.kernel store\n"
             "    store    GM:y[0:76, 0:512] fp16 <- UB[0x0000] fp16[76,512]")
    fixpipe = (".tensor y fp32[256,128] output\n.kernel fixpipe\n"
               "    fixpipe  GM:y[0:256, 0:128] fp32 <- L0C[0x0000] fp32[256,128]")
    return [
        *_load_rows("GM -> L1", "GM_TO_L1_910b1", "L1", GM_TO_L1_910B1),
        *_load_rows("GM -> UB", "GM_TO_UB_910b3", "UB", GM_TO_UB_910B3),
        _rate_row("UB -> GM rate, 76 KiB store", "DMA", "UB_TO_GM_910b1", 76, UB_TO_GM_910B1_76K,
                  store, Span.COMPLETION),
        _rate_row("L0C -> GM rate, 128 KiB fixpipe", "DMA", "L0C_TO_GM_910b1", 128, L0C_TO_GM_910B1_128K,
                  fixpipe, Span.COMPLETION),
    ]


# --- L1 -> L0A / L0B ------------------------------------------------------------------------------

_ASC_LOAD_DATA = ("asc-devkit (hicann/asc-devkit@dacba28) tests/perf/load_data_perf/README_en.md, A3/A2 "
                  "scenario {n} ({path} LoadData 2D): Theoretical Bandwidth {bw} Byte/cycle, Bandwidth "
                  "Latency 28 cycle: a model parameter, not a measurement")


def _move(dst: str, rows: int, cols: int) -> str:
    return (f".kernel move\n    move     {dst}[0x0000] bf16[{rows},{cols}] <- L1[0x0000] bf16[{rows},{cols}]")


def mte1_rows() -> list[Measurement]:
    """asc-devkit's L1 -> L0A / L0B bandwidth and latency; msKPP's measured rate at 64 KiB."""
    rows = []
    for n, dst, bw, gib_s in ((1, "L0A", 256, L1_TO_L0A_910B1_64K), (2, "L0B", 128, L1_TO_L0B_910B1_64K)):
        source = _ASC_LOAD_DATA.format(n=n, path=f"L1 -> {dst}", bw=bw)
        small, large = _move(dst, 64, 64), _move(dst, 128, 256)  # 8 KiB and 64 KiB
        rows += [
            Measurement(f"L1 -> {dst} rate", "MTE1", bw, "B/cycle", EXACT_TOLERANCE, source,
                        LineFit(small, large, "rate")),
            Measurement(f"L1 -> {dst} latency", "MTE1", 28, "cycles", EXACT_TOLERANCE, source,
                        LineFit(small, large, "latency")),
            _rate_row(f"L1 -> {dst} rate, 64 KiB move, back to back", "MTE1", f"L1_TO_{dst}_910b1", 64,
                      gib_s, large, Span.OCCUPANCY),
        ]
    return rows


# --- pto-isa vector formulas ------------------------------------------------------------------------

_PTO = "pto-isa (zouzias/pto-isa-mirror) include/pto/costmodel/a2a3"
_PTO_FORMULA = (f"{_PTO}/formula_costmodel/formula_params.csv@9793130 \"{{row}}\": slope x rows x cols + "
                f"bias (the cost model's fit)")


@dataclass(frozen=True)
class VectorFit:
    """One row of pto-isa's formula_params.csv applied to a tile shape, and npusim's instruction for it."""

    op: str  # the tile op: TROWMAX, TROWSUM, TEXP, TMULS, TMUL
    dtype: str  # fp32 or fp16
    csv_dtype: str  # the CSV row's dtype column (TEXP's row is "any")
    csv_cols: str  # the CSV row's cols column ("*" for TEXP)
    slope: float  # cycles per element
    bias: float  # cycles
    rows: int
    cols: int

    @property
    def published(self) -> float:
        return self.slope * self.rows * self.cols + self.bias

    @property
    def csv_row(self) -> str:
        return f"{self.op},{self.csv_dtype},{self.csv_cols},{self.slope:g},{self.bias:g}"

    def program(self) -> str:
        """npusim's instruction for the tile op, operands side by side in UB."""
        shape, size = f"{self.dtype}[{self.rows},{self.cols}]", self.rows * self.cols * _ITEMSIZE[self.dtype]
        step = math.ceil(size / 32) * 32
        src, other, dst = (f"UB[0x{i * step:04X}] {shape}" for i in range(3))
        line = {
            "TROWMAX": f"vrowmax  UB[0x{step:04X}] {self.dtype}[{self.rows},1] <- {src}",
            "TROWSUM": f"vrowsum  UB[0x{step:04X}] {self.dtype}[{self.rows},1] <- {src}",
            "TEXP": f"vexp     {other} <- {src}",
            "TMULS": f"vmuls    {other} <- {src}, 0.5",
            "TMUL": f"vmul     {dst} <- {src}, {other}",
        }[self.op]
        return f".kernel {self.op.lower()}\n    {line}"


_ITEMSIZE = {"fp32": 4, "fp16": 2}

VECTOR_FITS = (
    VectorFit("TROWMAX", "fp32", "fp32", "128", 0.0625, 48, 16, 128),
    VectorFit("TROWMAX", "fp32", "fp32", "8", 0.875, 46, 64, 8),
    VectorFit("TROWMAX", "fp32", "fp32", "64", 0.1094, 32, 32, 64),
    VectorFit("TROWMAX", "fp16", "fp16", "128", 0.0547, 33, 16, 128),
    VectorFit("TROWSUM", "fp32", "fp32", "128", 0.0625, 61.5, 16, 128),
    VectorFit("TROWSUM", "fp32", "fp32", "8", 0.875, 58, 64, 8),
    VectorFit("TROWSUM", "fp16", "fp16", "128", 0.0547, 47, 16, 128),
    VectorFit("TEXP", "fp32", "any", "*", 0.0314, 30.1, 16, 128),
    VectorFit("TEXP", "fp32", "any", "*", 0.0314, 30.1, 64, 8),
    VectorFit("TEXP", "fp16", "any", "*", 0.0314, 30.1, 32, 128),
    VectorFit("TMULS", "fp32", "fp32", "128", 0.0169, 17.5, 16, 128),
    VectorFit("TMULS", "fp32", "fp32", "32", 0.0156, 26, 64, 32),
    VectorFit("TMULS", "fp16", "fp16", "128", 0.0078, 26, 16, 128),
    VectorFit("TMUL", "fp32", "fp32", "128", 0.0325, 17.5, 16, 128),
    VectorFit("TMUL", "fp32", "fp32", "32", 0.0625, 43, 64, 32),
    VectorFit("TMUL", "fp16", "fp16", "128", 0.0156, 26, 16, 128),
)


def vector_rows() -> list[Measurement]:
    """pto-isa's fitted tile-op cycles, narrow and wide, against one npusim vector instruction each."""
    out = []
    for fit in VECTOR_FITS:
        text = fit.program()
        mnemonic = text.splitlines()[-1].split()[0]
        out.append(Measurement(
            f"{fit.op} ({mnemonic}) {fit.dtype} [{fit.rows},{fit.cols}]", "vector", fit.published, "cycles",
            DEFAULT_TOLERANCE, _PTO_FORMULA.format(row=fit.csv_row), Alone(text, Span.OCCUPANCY)))
    return out


# --- cube -----------------------------------------------------------------------------------------

_PTO_CUBE = (f"{_PTO}/cce_costmodel/cce_costmodel_cube.hpp@345aa59d mad, "
             f"formula_costmodel/formula_backend_compute.hpp@53dccb9c TryEstimateMadCycles: "
             f"6 + r x ceil(m/16) x ceil(k/k0) x ceil(n/16), k0 = 32 / sizeof(A), r = 2 for fp32, else 1: "
             f"a cost model, not a measurement")
_MSKPP_MMAD = {256: 7693.373246, 1024: 8057.168324}  # n -> calPerf of m=32, k=16 (fp16 in, fp32 out)


def _mmad(dtype: str, m: int, k: int, n: int) -> str:
    return (f".kernel mmad\n    mmad     L0C[0x0000] fp32[{m},{n}] <- L0A[0x0000] {dtype}[{m},{k}], "
            f"L0B[0x0000] {dtype}[{k},{n}]  init")


def pto_mmad_cycles(dtype: str, m: int, k: int, n: int) -> int:
    """pto-isa's cube model: the 6-cycle head plus r cycles per 16 x k0 x 16 fractal."""
    size, per_fractal = (4, 2) if dtype == "fp32" else (2, 1)
    return 6 + per_fractal * math.ceil(m / 16) * math.ceil(k / (32 // size)) * math.ceil(n / 16)


def cube_rows() -> list[Measurement]:
    """One mmad alone: pto-isa's cube model for bf16/fp16/fp32, small and large; msKPP's fp16 table."""
    shapes = (("fp16", 16, 16, 16), ("fp16", 128, 64, 256), ("bf16", 64, 64, 64), ("bf16", 128, 128, 128),
              ("fp32", 16, 16, 16), ("fp32", 128, 64, 128))
    out = [Measurement(f"mmad {d} [{m},{k}] x [{k},{n}]", "cube", pto_mmad_cycles(d, m, k, n), "cycles",
                       EXACT_TOLERANCE, _PTO_CUBE, Alone(_mmad(d, m, k, n), Span.OCCUPANCY))
           for d, m, k, n in shapes]
    for n, cal_perf in _MSKPP_MMAD.items():
        out.append(Measurement(
            f"mmad fp16 [32,16] x [16,{n}], back to back", "cube", 2 * 32 * 16 * n / cal_perf, "cycles",
            DEFAULT_TOLERANCE,
            f'{_MSKPP} g_mmadTypeMap["MMAD_FP16_FP16_FP32_1_core_910b1"] m=32 k=16 n={n}: 2 x m x k x n / '
            f"calPerf {cal_perf}",
            Alone(_mmad("fp16", 32, 16, n), Span.OCCUPANCY)))
    return out


# --- the pto-isa GEMM -------------------------------------------------------------------------------

# m = k = n -> (TMATMUL (Cube) Ratio %, TLOAD Ratio %, Execution time ms); fp16 in, fp32 out
PTO_GEMM = {1536: (54.5, 72.2, 0.0388), 3072: (79.0, 90.9, 0.2067), 6144: (86.7, 95.2, 1.5060)}
_PTO_GEMM_SOURCE = ("pto-isa (zouzias/pto-isa-mirror@c138a4b2) kernels/manual/a2a3/gemm_performance/"
                    "README.md \"Measured Performance (Reference)\" (Ascend A3, 24 cores), m=k=n={n}: "
                    "{column} {value}")


def gemm_rows(cores: int = 24) -> list[Measurement]:
    """The published GEMM's time and its cube (TMATMUL) and MTE2 (TLOAD) busy shares per size."""
    out = []
    for n, (cube, tload, ms) in PTO_GEMM.items():
        def source(column: str, value: str, n: int = n) -> str:
            return _PTO_GEMM_SOURCE.format(n=n, column=column, value=value)

        out += [
            Measurement(f"GEMM fp16 {n}^3 on {cores} cube cores, time", "GEMM", round(ms * 1000, 9), "us",
                        GEMM_TOLERANCE, source("Execution time (ms)", f"{ms:.4f}"), Gemm(n, cores, "us")),
            Measurement(f"GEMM fp16 {n}^3, cube (M) busy share (TMATMUL)", "GEMM", cube, "%", GEMM_TOLERANCE,
                        source("TMATMUL (Cube) Ratio", f"{cube}%"), Gemm(n, cores, "M")),
            Measurement(f"GEMM fp16 {n}^3, MTE2 busy share (TLOAD)", "GEMM", tload, "%", GEMM_TOLERANCE,
                        source("TLOAD Ratio", f"{tload}%"), Gemm(n, cores, "MTE2")),
        ]
    return out


def suite_rows() -> list[Measurement]:
    """Every row of `npusim validate`, in the order it prints them."""
    return [*dma_rows(), *mte1_rows(), *vector_rows(), *cube_rows(), *gemm_rows()]
