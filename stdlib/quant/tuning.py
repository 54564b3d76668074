"""The quantized linear's tuning policy: the configs the autotuner times, the heuristics that
pick without timing (the interpreter, ``TILEVM_AUTOTUNE=0``), and how far the prefill splits K.
The figures in the comments were measured on an H200 (``benchmarks/quant_decode_probe.py``).
"""

from __future__ import annotations

from typing import Any

import tilevm as tv
from tilevm.stdlib.quant.layouts import Unit

# Candidates the autotuner times (per weight type, group, shapes); the heuristics pick without
# timing (the interpreter, TILEVM_AUTOTUNE=0).
DECODE_CONFIGS = [
    tv.Config(RN=rn, BM=bm, STAGES=0, warps=w)
    for bm in (8, 16)
    for rn, w in ((1, 8), (1, 16), (2, 8), (2, 16), (4, 8))
]  # (the shared-memory ring, STAGES > 0, measured slower at every config on an H200: left out)
PREFILL_CONFIGS = [
    tv.Config(BM=bm, RN=rn, STAGES=st, GROUP_M=8, warps=w)
    for bm, rn, w in ((128, 8, 4), (128, 16, 8), (64, 8, 4), (128, 8, 8), (256, 8, 8),
                      (128, 4, 4), (64, 4, 4),  # narrow tiles: the odd widths' 256-column chunks
                      (32, 2, 2))  # for GPUs with ~100 KiB of shared memory (sm_86, sm_89)
    for st in (2, 3)
]  # fmt: skip
KEY = ["x", "w", "y", "FIELD", "ZERO", "BIAS", "GROUP"]
PREFILL_KEY = [*KEY, "SPLIT"]
MAX_SPLIT = 8


def decode_heuristic(x: Any, w: Any, **_: Any) -> tv.Config:
    """Row tiles over blocks, the rest of the GPU's warps over K; on the host, small blocks
    (the CPU runs blocks in parallel; big ones only compile slower)."""
    bm = 8 if x.shape[0] <= 8 else 16
    if not on_gpu(x):
        return tv.Config(RN=1, BM=bm, STAGES=0, warps=4)
    # two row tiles a block once that leaves at least 256 blocks (H200, N = 8192: 16.9 us
    # against 19.6 with one)
    return tv.Config(RN=2 if w.shape[0] >= 512 else 1, BM=bm, STAGES=0, warps=8)


def decode_prune(configs: list[tv.Config], x: Any, **_: Any) -> list[tv.Config]:
    bm = 8 if x.shape[0] <= 8 else 16
    return [c for c in configs if c.constexprs["BM"] == bm]


def prefill_heuristic(x: Any, y: Any, FIELD: tv.DataType, **_: Any) -> tv.Config:
    """On a GPU the tile the tuner found best on an H200 that fits in shared memory (256 x
    128 from 256 rows, then 128 x 256, 128 x 128, narrower for the odd widths' wide chunks
    and for GPUs with less shared memory);
    on the host a tile that fits every target's shared memory (64 KiB, AMD's) at every
    width."""
    unit = Unit(FIELD.bits)
    if not on_gpu(x):
        for bm in (32, 16):
            if prefill_shared_bytes(unit, bm, 2, 2) <= 64 * 1024:
                break
        return tv.Config(BM=bm, RN=2, STAGES=2, GROUP_M=8, warps=2)
    tall = ((256, 8, 8),) if y.shape[0] >= 256 else ()
    tiles = (*tall, (128, 16, 8), (128, 8, 8), (128, 4, 4), (64, 4, 4), (32, 2, 2))
    limit = shared_limit(x)
    fits = [t for t in tiles if prefill_shared_bytes(unit, t[0], t[1], 2) <= limit]
    bm, rn, warps = (fits or tiles[-1:])[0]
    return tv.Config(BM=bm, RN=rn, STAGES=2, GROUP_M=8, warps=warps)


def prefill_shared_bytes(unit: Unit, bm: int, rn: int, stages: int) -> int:
    """The prefill kernel's shared memory: the activation and packed-weight rings and the two
    dequantized weight tiles."""
    return stages * (bm * unit.kc * 2 + rn * unit.words * 4) + 2 * 16 * rn * unit.kc * 2


def prefill_prune(configs: list[tv.Config], x: Any, y: Any, FIELD: tv.DataType, **_: Any
                  ) -> list[tv.Config]:  # fmt: skip
    """Tiles no taller than the rows (or 64), whose rings fit in the device's shared memory."""
    m, unit, limit = y.shape[0], Unit(FIELD.bits), shared_limit(x)
    kept = [
        c for c in configs
        if c.constexprs["BM"] <= max(64, m)
        and prefill_shared_bytes(unit, c.constexprs["BM"], c.constexprs["RN"],
                                 c.constexprs["STAGES"]) <= limit
    ]  # fmt: skip
    return kept or configs[:1]


def choose_split(m: int, n: int, chunks: int, multiprocessors: int) -> int:
    """How many ways the prefill splits K: enough that the output's tiles times the splits
    fill the GPU, at most ``MAX_SPLIT``, and at least four chunks per split (fewer would not
    hide the pipeline's fill).

    The tile is the one the tuner finds best at that many rows (H200): 64 x 128 for up to 64
    rows (two blocks per multiprocessor), else 256 x 128 (one: its shared memory), whose
    weight tile is dequantized once per 256 rows instead of once per 64 or 128.
    """
    bm, per_sm = (64, 2) if m <= 64 else (256, 1)
    tiles = -(-m // bm) * -(-n // 128)
    return min(MAX_SPLIT, max(1, per_sm * multiprocessors // tiles), max(1, chunks // 4))


def on_gpu(x: Any) -> bool:
    return getattr(getattr(x, "device", None), "type", "cpu") != "cpu"


def shared_limit(x: Any) -> int:
    """The most shared memory a block may opt in to on ``x``'s GPU (227 KiB on sm_90, 163 on
    sm_80); on the host the largest of the emulated targets' (the kernels check their own)."""
    if not on_gpu(x):
        return 227 * 1024
    return tv.device_properties(x).shared_bytes_per_block


def multiprocessors(x: Any) -> int:
    return tv.device_properties(x).multiprocessors
