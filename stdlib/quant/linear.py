"""``linear(x, qw, bias=None)``: ``x @ dequantize(qw).T (+ bias)`` without dequantizing.

Few rows (decode) take ``decode_kernel``: the weights stream once, through the tensor cores.
Many rows (prefill) take ``prefill_kernel``: a tiled GEMM whose weight tiles are dequantized from
shared memory into the tensor cores' registers. Both accumulate in f32 and round once to the
activations' dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import tilevm as tv
from tilevm.stdlib.quant.decode import decode_kernel
from tilevm.stdlib.quant.format import QuantizedWeight, dequantized_values
from tilevm.stdlib.quant.prefill import prefill_kernel

ACTIVATIONS = ("float16", "bfloat16")
DECODE_ROWS = 16  # at most this many activation rows take the decode path


@dataclass(frozen=True)
class PrefillConfig:
    """Block tile ``BM x 16 RN``, copy pipeline depth, warps (each dequantizes ``RN / warps``
    weight tiles per chunk)."""

    BM: int = 128
    RN: int = 8
    STAGES: int = 3
    warps: int = 4
    GROUP_M: int = 8


@dataclass(frozen=True)
class DecodeConfig:
    """Weight tiles of 16 rows per block, activation rows per block, warps (which split K)."""

    RN: int = 1
    BM: int = 8
    warps: int = 4


def linear(x: Any, qw: QuantizedWeight, bias: Any = None, *, out: Any = None, **launch) -> Any:
    """``x @ dequantize(qw).T (+ bias)`` for ``x[..., K]`` of f16 or bf16 (numpy arrays or
    torch tensors), the result ``[..., N]`` in ``x``'s dtype. ``launch`` goes to the kernel
    launch (``device=``, ...)."""
    n, k = qw.shape
    _check(x, qw, bias)
    lead = tuple(x.shape[:-1])
    x2 = x.reshape(-1, k)
    m = x2.shape[0]
    y = _empty_like(x2, (m, n)) if out is None else out.reshape(m, n)
    if m == 0:
        return y.reshape(*lead, n)
    if m <= DECODE_ROWS:
        decode(x2, qw, bias, y, **launch)
    else:
        prefill(x2, qw, bias, y, **launch)
    return y.reshape(*lead, n)


def prefill(x: Any, qw: QuantizedWeight, bias: Any, y: Any, config: PrefillConfig | None = None,
            **launch) -> None:  # fmt: skip
    """The prefill kernel on 2-D ``x[M, K]`` into ``y[M, N]``."""
    m, n = y.shape
    cfg = config or PrefillConfig()
    grid = -(-m // cfg.BM) * -(-n // (16 * cfg.RN))
    prefill_kernel[grid,](
        x, qw.packed, qw.scales, _or(qw.zeros, qw.scales), _or(bias, qw.scales), y,
        FIELD=_field_dtype(qw), ZERO=qw.zeros is not None, BIAS=bias is not None,
        GROUP=0 if qw.group_size == -1 else qw.group_size, BM=cfg.BM, RN=cfg.RN,
        STAGES=cfg.STAGES, GROUP_M=cfg.GROUP_M, warps=cfg.warps, **launch,
    )  # fmt: skip


def _or(a: Any, b: Any) -> Any:
    """``a``, or ``b`` standing in for an argument the kernel does not read."""
    return b if a is None else a


def decode(x: Any, qw: QuantizedWeight, bias: Any, y: Any, config: DecodeConfig | None = None,
           **launch) -> None:  # fmt: skip
    """The decode kernel on 2-D ``x[M, K]`` into ``y[M, N]``."""
    m = x.shape[0]
    cfg = config or DecodeConfig(BM=8 if m <= 8 else 16)
    tiles = qw.packed.shape[0]
    grid = (-(-tiles // cfg.RN), -(-m // cfg.BM))
    field = _field_dtype(qw)
    zeros = qw.zeros if qw.zeros is not None else qw.scales
    decode_kernel[grid](
        x, qw.packed, qw.scales, zeros, bias if bias is not None else qw.scales, y,
        FIELD=field, ZERO=qw.zeros is not None, BIAS=bias is not None,
        GROUP=0 if qw.group_size == -1 else qw.group_size, RN=cfg.RN, BM=cfg.BM,
        warps=cfg.warps, **launch,
    )  # fmt: skip


def reference(x: Any, qw: QuantizedWeight, bias: Any = None) -> np.ndarray:
    """``x @ dequantize(qw).T (+ bias)`` in float64 on the host."""
    xs = _host(x).astype(np.float64)
    out = xs @ dequantized_values(qw).T
    if bias is not None:
        out = out + _host(bias).astype(np.float64)
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


def _empty_like(x: Any, shape: tuple[int, int]) -> Any:
    if isinstance(x, np.ndarray):
        return np.empty(shape, x.dtype)
    return x.new_empty(shape)


def _host(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    return x.detach().float().cpu().numpy()
