"""Fused residual add + RMSNorm, as between two transformer layers: ``h = x + residual``
(rounded to f16, the new residual stream), ``y = rmsnorm(h) * w`` from that f16 ``h``.

One block per row, both rows in registers: one read of each input, one write of each output
(torch eager reads ``h`` again for the norm). Reference: ``x + residual`` then
``torch.nn.functional.rms_norm``, f16 tensors (f32 math inside the norm).
"""

from __future__ import annotations

import torch.nn.functional as F
from _helpers import as_torch, host_shapes, next_pow2, randn, row_warps

import tilevm as tv

CATEGORY = "normalization"
EPS = 1e-6
SHAPES = [(4096, 4096), (4096, 8192), (16, 8192), (33, 300), (1, 1), (7, 1000)]
DEVICE_SHAPES = host_shapes([(33, 300), (1, 1), (7, 1000), (4, 4096)], [(5, 37), (3, 300)])
TOLERANCE = [{"atol": 2e-3, "rtol": 2e-3}, {"atol": 0.0, "rtol": 0.0}]  # the sum is exact


@tv.kernel
def residual_rmsnorm(
    x: tv.Tensor,
    residual: tv.Tensor,
    w: tv.Tensor,
    out: tv.Tensor,
    h_out: tv.Tensor,
    eps: tv.f32,
    BLOCK: tv.constexpr,
):
    row = tv.block_id(0)
    h = tv.load(x, [row, 0], [1, BLOCK]) + tv.load(residual, [row, 0], [1, BLOCK])  # f16 add
    tv.store(h_out, h, [row, 0])
    v = h.to(tv.f32)
    mean = tv.sum(v * v, axis=1, keepdims=True) / x.shape[1].to(tv.f32)
    weight = tv.load(w, [0], [BLOCK]).to(tv.f32)[None, :]
    tv.store(out, (v * tv.rsqrt(mean + eps) * weight).to(out.dtype), [row, 0])


def make_inputs(shape, device, rng):
    rows, cols = shape
    x = randn(rng, (rows, cols), "float16", device=device)
    residual = randn(rng, (rows, cols), "float16", 2.0, device=device)
    return x, residual, randn(rng, (cols,), "float16", device=device)


def outputs(x, residual, w):
    return [(x.shape, "float16"), (x.shape, "float16")]


def solution(x, residual, w, out, h_out, device):
    block = next_pow2(x.shape[1])
    residual_rmsnorm[x.shape[0],](
        x, residual, w, out, h_out, EPS, BLOCK=block, warps=row_warps(block, 2), device=device
    )


def reference(x, residual, w):
    h = as_torch(x) + as_torch(residual)
    return F.rms_norm(h, (x.shape[1],), as_torch(w), EPS), h
