"""LayerNorm over the last dimension with weight and bias, f16 in and out, f32 math:
``y = (x - mean) / sqrt(var + eps) * w + b`` (biased variance, as torch).

One block per row, the row in registers: the mean, then the variance of the centred values
(two reductions, no second read of memory, no cancellation from ``E[x^2] - E[x]^2``).
Reference: ``torch.nn.functional.layer_norm`` on the f16 tensors (torch computes in f32).
"""

from __future__ import annotations

import torch.nn.functional as F
from _helpers import as_torch, host_shapes, next_pow2, randn, row_warps

import tilevm as tv

CATEGORY = "normalization"
EPS = 1e-5
SHAPES = [(4096, 4096), (4096, 8192), (16, 8192), (33, 300), (1, 1), (7, 1000)]
DEVICE_SHAPES = host_shapes([(33, 300), (1, 1), (7, 1000), (4, 4096)], [(5, 37), (3, 300)])
TOLERANCE = {"atol": 2e-3, "rtol": 2e-3}


@tv.kernel
def layernorm(
    x: tv.Tensor, w: tv.Tensor, b: tv.Tensor, out: tv.Tensor, eps: tv.f32, BLOCK: tv.constexpr
):
    row = tv.block_id(0)
    n = x.shape[1].to(tv.f32)
    v = tv.load(x, [row, 0], [1, BLOCK]).to(tv.f32)
    mean = tv.sum(v, axis=1, keepdims=True) / n
    inside = (tv.arange(0, BLOCK) < x.shape[1])[None, :]
    centred = tv.where(inside, v - mean, 0.0)  # the padding must not add mean**2
    var = tv.sum(centred * centred, axis=1, keepdims=True) / n
    weight = tv.load(w, [0], [BLOCK]).to(tv.f32)[None, :]
    bias = tv.load(b, [0], [BLOCK]).to(tv.f32)[None, :]
    tv.store(out, (centred * tv.rsqrt(var + eps) * weight + bias).to(out.dtype), [row, 0])


def make_inputs(shape, device, rng):
    rows, cols = shape
    x = randn(rng, (rows, cols), "float16", 2.0, device=device) + 3.0  # mean far from 0
    weight = randn(rng, (cols,), "float16", device=device)
    return x, weight, randn(rng, (cols,), "float16", device=device)


def outputs(x, w, b):
    return [(x.shape, "float16")]


def solution(x, w, b, out, device):
    block = next_pow2(x.shape[1])
    layernorm[x.shape[0],](
        x, w, b, out, EPS, BLOCK=block, warps=row_warps(block, 2), device=device
    )


def reference(x, w, b):
    return F.layer_norm(as_torch(x), (x.shape[1],), as_torch(w), as_torch(b), EPS)
