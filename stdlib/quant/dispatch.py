"""``linear(x, qw, bias=None)``: ``x @ dequantize(qw).T (+ bias)`` without dequantizing.

Few rows (decode) take ``decode_kernel``: the weights stream once, through the tensor cores.
Many rows (prefill) take ``prefill_kernel``: a tiled GEMM whose weight tiles are dequantized from
shared memory into the tensor cores' registers. Both accumulate in f32 and round once to the
activations' dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tilevm as tv
from tilevm.stdlib.host import empty_like, to_host
from tilevm.stdlib.quant.decode import decode_kernel
from tilevm.stdlib.quant.format import QuantizedWeight, dequantized_values
from tilevm.stdlib.quant.layouts import Unit
from tilevm.stdlib.quant.prefill import prefill_kernel, splitk_sum

ACTIVATIONS = ("float16", "bfloat16")
DECODE_ROWS = 16  # at most this many activation rows take the decode path


# Candidates the autotuner times (per weight type, group, shapes); the heuristics pick without
# timing (the interpreter, TILEVM_AUTOTUNE=0).
DECODE_CONFIGS = [
    tv.Config(RN=rn, BM=bm, STAGES=0, warps=w)
    for bm in (8, 16)
    for rn, w in ((1, 8), (1, 16), (2, 8), (2, 16), (4, 8))
]  # (the shared-memory ring, STAGES > 0, joins them once measured on a GPU: the probe sweeps it)
PREFILL_CONFIGS = [
    tv.Config(BM=bm, RN=rn, STAGES=st, GROUP_M=8, warps=w)
    for bm, rn, w in ((128, 8, 4), (128, 16, 8), (64, 8, 4), (128, 8, 8), (256, 8, 8),
                      (128, 4, 4), (64, 4, 4))  # narrow tiles: the odd widths' 256-column chunks
    for st in (2, 3)
]  # fmt: skip
SHARED_LIMIT = 227 * 1024  # the most shared memory a block may have on sm_90 (less elsewhere)
KEY = ["x", "w", "y", "FIELD", "ZERO", "BIAS", "GROUP"]
PREFILL_KEY = [*KEY, "SPLIT"]
MAX_SPLIT = 8


def _decode_heuristic(x: Any, w: Any, **_: Any) -> tv.Config:
    """Row tiles over blocks, the rest of the GPU's warps over K; on the host, small blocks
    (the CPU runs blocks in parallel; big ones only compile slower)."""
    bm = 8 if x.shape[0] <= 8 else 16
    if not _on_gpu(x):
        return tv.Config(RN=1, BM=bm, STAGES=0, warps=4)
    # two row tiles a block once that leaves at least 256 blocks (H200, N = 8192: 16.9 us
    # against 19.6 with one)
    return tv.Config(RN=2 if w.shape[0] >= 512 else 1, BM=bm, STAGES=0, warps=8)


def _decode_prune(configs: list[tv.Config], x: Any, **_: Any) -> list[tv.Config]:
    bm = 8 if x.shape[0] <= 8 else 16
    return [c for c in configs if c.constexprs["BM"] == bm]


def _prefill_heuristic(x: Any, y: Any, FIELD: tv.DataType, **_: Any) -> tv.Config:
    """On a GPU the tile the tuner found best on an H200 that fits in shared memory (256 x
    128 from 256 rows, then 128 x 256, 128 x 128, narrower for the odd widths' wide chunks);
    on the host a tile that fits every target's shared memory (64 KiB, AMD's) at every
    width."""
    unit = Unit(FIELD.bits)
    if not _on_gpu(x):
        for bm in (32, 16):
            if prefill_shared_bytes(unit, bm, 2, 2) <= 64 * 1024:
                break
        return tv.Config(BM=bm, RN=2, STAGES=2, GROUP_M=8, warps=2)
    tall = ((256, 8, 8),) if y.shape[0] >= 256 else ()
    tiles = (*tall, (128, 16, 8), (128, 8, 8), (128, 4, 4), (64, 4, 4))
    fits = [t for t in tiles if prefill_shared_bytes(unit, t[0], t[1], 2) <= SHARED_LIMIT]
    bm, rn, warps = (fits or tiles[-1:])[0]
    return tv.Config(BM=bm, RN=rn, STAGES=2, GROUP_M=8, warps=warps)


def prefill_shared_bytes(unit: Unit, bm: int, rn: int, stages: int) -> int:
    """The prefill kernel's shared memory: the activation and packed-weight rings and the two
    dequantized weight tiles."""
    return stages * (bm * unit.kc * 2 + rn * unit.words * 4) + 2 * 16 * rn * unit.kc * 2


def _prefill_prune(configs: list[tv.Config], y: Any, FIELD: tv.DataType, **_: Any
                   ) -> list[tv.Config]:  # fmt: skip
    """Tiles no taller than the rows (or 64), whose rings fit in shared memory."""
    m, unit = y.shape[0], Unit(FIELD.bits)
    kept = [
        c for c in configs
        if c.constexprs["BM"] <= max(64, m)
        and prefill_shared_bytes(unit, c.constexprs["BM"], c.constexprs["RN"],
                                 c.constexprs["STAGES"]) <= SHARED_LIMIT
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


def _on_gpu(x: Any) -> bool:
    return getattr(getattr(x, "device", None), "type", "cpu") != "cpu"


decode_tuned = tv.autotune(DECODE_CONFIGS, KEY, heuristic=_decode_heuristic, prune=_decode_prune)(
    decode_kernel
)
prefill_tuned = tv.autotune(
    PREFILL_CONFIGS, PREFILL_KEY, heuristic=_prefill_heuristic, prune=_prefill_prune
)(prefill_kernel)


def linear(x: Any, qw: QuantizedWeight, bias: Any = None, *, out: Any = None, **launch) -> Any:
    """``x @ dequantize(qw).T (+ bias)`` for ``x[..., K]`` of f16 or bf16 (numpy arrays or
    torch tensors), the result ``[..., N]`` in ``x``'s dtype (or written into ``out``). Up to
    ``DECODE_ROWS`` rows take the decode kernel, more the prefill kernel, each launched with
    its autotuned config. ``launch`` goes to the kernel launch (``device=``, ...)."""
    n, k = qw.shape
    _check(x, qw, bias)
    lead = tuple(x.shape[:-1])
    x2 = x.reshape(-1, k)
    m = x2.shape[0]
    y = empty_like(x2, (m, n)) if out is None else out.reshape(m, n)
    if m == 0:
        return y.reshape(*lead, n)
    if m <= DECODE_ROWS:
        decode(x2, qw, bias, y, **launch)
    else:
        prefill(x2, qw, bias, y, **launch)
    return y.reshape(*lead, n)


def decode(x: Any, qw: QuantizedWeight, bias: Any, y: Any, config: tv.Config | None = None,
           **launch) -> None:  # fmt: skip
    """The decode kernel on 2-D ``x[M, K]`` into ``y[M, N]`` (``config``: skip tuning)."""
    m, tiles = x.shape[0], qw.packed.shape[0]

    def grid(meta: dict) -> tuple[int, int]:
        return -(-tiles // meta["RN"]), -(-m // meta["BM"])

    _launch(decode_tuned, grid, config, x, qw, bias, y, launch)


def prefill(x: Any, qw: QuantizedWeight, bias: Any, y: Any, config: tv.Config | None = None,
            split: int | None = None, **launch) -> None:  # fmt: skip
    """The prefill kernel on 2-D ``x[M, K]`` into ``y[M, N]`` (``config``: skip tuning),
    ``split`` ways along K (default: ``choose_split`` on a GPU, 1 on the host); split, the
    partial sums meet in ``splitk_sum``."""
    m, n = y.shape
    chunks = qw.packed.shape[1]
    if split is None:
        split = choose_split(m, n, chunks, _multiprocessors(x)) if _on_gpu(x) else 1
    if not 1 <= split <= MAX_SPLIT:
        raise tv.LaunchError("prefill split", expected=f"1 to {MAX_SPLIT}", found=str(split))

    def grid(meta: dict) -> tuple[int, int]:
        return -(-m // meta["BM"]) * -(-n // (16 * meta["RN"])), split

    part = _partials(x, (split, m, n)) if split > 1 else qw.scales  # unread at split 1
    _launch(prefill_tuned, grid, config, x, qw, bias, y, launch, part, SPLIT=split)
    if split > 1:
        bias_arg = _or(bias, qw.scales)
        splitk_sum[-(-n // 128), -(-m // 8)](
            part, bias_arg, y, SPLIT=split, BIAS=bias is not None, BM=8, BN=128, **launch
        )


def _partials(x: Any, shape: tuple[int, ...]) -> Any:
    """An f32 buffer of ``shape`` where ``x`` lives."""
    if isinstance(x, np.ndarray):
        return np.empty(shape, np.float32)
    import torch

    return torch.empty(shape, dtype=torch.float32, device=x.device)


def _multiprocessors(x: Any) -> int:
    from tilevm.backends.cuda import driver

    index = getattr(x.device, "index", None) or 0
    return driver.device_info(index).multiprocessors


def _launch(tuned, grid, config, x, qw: QuantizedWeight, bias, y, launch: dict, *extra,
            **more) -> None:  # fmt: skip
    args = (x, qw.packed, qw.scales, _or(qw.zeros, qw.scales), _or(bias, qw.scales), y, *extra)
    consts = {"FIELD": _field_dtype(qw), "ZERO": qw.zeros is not None, "BIAS": bias is not None,
              "GROUP": 0 if qw.group_size == -1 else qw.group_size, **more}  # fmt: skip
    if config is None:
        tuned[grid](*args, **consts, **launch)
        return
    meta = dict(config.constexprs)
    tuned.kernel[grid(meta)](*args, **consts, **meta, warps=config.warps, **launch)


def _or(a: Any, b: Any) -> Any:
    """``a``, or ``b`` standing in for an argument the kernel does not read."""
    return b if a is None else a


def reference(x: Any, qw: QuantizedWeight, bias: Any = None) -> np.ndarray:
    """``x @ dequantize(qw).T (+ bias)`` in float64 on the host."""
    xs = to_host(x).astype(np.float64)
    out = xs @ to_host(dequantized_values(qw)).T
    if bias is not None:
        out = out + to_host(bias).astype(np.float64)
    return out


def _field_dtype(qw: QuantizedWeight) -> tv.DataType:
    """Unsigned weights without zero points are stored as the signed type (their values are
    ``q - 2**(b-1)``, packed in two's complement)."""
    dt = qw.dtype
    if dt.kind == "uint" and qw.zeros is None:
        return tv.int_type(dt.bits)
    return dt


def _check(x: Any, qw: QuantizedWeight, bias: Any) -> None:
    n, k = qw.shape
    dtype = str(x.dtype).removeprefix("torch.")
    if dtype not in ACTIVATIONS:
        raise tv.LaunchTypeError(
            "linear activations dtype",
            expected="float16 or bfloat16",
            found=dtype,
            hint="convert first, e.g. x.half()",
        )
    if len(x.shape) < 1 or x.shape[-1] != k:
        raise tv.LaunchError(
            "linear activations do not match the weight",
            expected=f"[..., {k}] (the weight is [{n}, {k}])",
            found=str(list(x.shape)),
        )
    if bias is not None and tuple(bias.shape) != (n,):
        raise tv.LaunchError("linear bias shape", expected=f"[{n}]", found=str(list(bias.shape)))
