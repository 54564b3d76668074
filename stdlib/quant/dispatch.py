"""``linear(x, qw, bias=None)``: ``x @ dequantize(qw).T (+ bias)`` without dequantizing.

Few rows (decode) take ``decode_kernel``: the weights stream once, through the tensor cores.
Many rows (prefill) take ``prefill_kernel``: a tiled GEMM whose weight tiles are dequantized into
shared memory, split along K over blocks when the output has too few tiles to fill the GPU (the
partial sums then meet in ``splitk_sum``). Both accumulate in f32 and round once to the
activations' dtype. Each is launched through ``tv.autotune`` (configs and heuristics:
``tuning.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tilevm as tv
from tilevm.errors import entry_point
from tilevm.stdlib.host import empty_like, to_host
from tilevm.stdlib.quant.decode import decode_kernel
from tilevm.stdlib.quant.format import QuantizedWeight, dequantized_values
from tilevm.stdlib.quant.prefill import prefill_kernel, splitk_sum
from tilevm.stdlib.quant.tuning import (
    DECODE_CONFIGS,
    KEY,
    MAX_SPLIT,
    PREFILL_CONFIGS,
    PREFILL_KEY,
    choose_split,
    decode_heuristic,
    decode_prune,
    multiprocessors,
    on_gpu,
    prefill_heuristic,
    prefill_prune,
)

ACTIVATIONS = ("float16", "bfloat16")
DECODE_ROWS = 16  # at most this many activation rows take the decode path


decode_tuned = tv.autotune(DECODE_CONFIGS, KEY, heuristic=decode_heuristic, prune=decode_prune)(
    decode_kernel
)
prefill_tuned = tv.autotune(
    PREFILL_CONFIGS, PREFILL_KEY, heuristic=prefill_heuristic, prune=prefill_prune
)(prefill_kernel)


@entry_point
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
        split = choose_split(m, n, chunks, multiprocessors(x)) if on_gpu(x) else 1
    if not 1 <= split <= MAX_SPLIT:
        raise tv.LaunchError("prefill split", expected=f"1 to {MAX_SPLIT}", found=str(split))

    def grid(meta: dict) -> tuple[int, int]:
        return -(-m // meta["BM"]) * -(-n // (16 * meta["RN"])), split

    part = empty_like(x, (split, m, n), np.float32) if split > 1 else qw.scales  # unread at 1
    _launch(prefill_tuned, grid, config, x, qw, bias, y, launch, part, SPLIT=split)
    if split > 1:
        bias_arg = _or(bias, qw.scales)
        splitk_sum[-(-n // 128), -(-m // 8)](
            part, bias_arg, y, SPLIT=split, BIAS=bias is not None, BM=8, BN=128, **launch
        )


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
