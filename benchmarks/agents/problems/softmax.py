"""Softmax over each row, in f16 and in f32 (the shape names the dtype), f32 math.

One block per row, the row in registers: max, exponentials, sum, one division per element;
padding columns read -inf so they never win the max and add 0 to the sum.
Reference: ``torch.softmax(x, dim=1)`` in the input's dtype (torch computes f16 in f32).
"""

from __future__ import annotations

import torch
from _helpers import as_torch, host_shapes, next_pow2, randn, row_warps

import tilevm as tv

CATEGORY = "reduction"
SHAPES = [
    ("float16", 4096, 4096),
    ("float32", 4096, 4096),
    ("float16", 16384, 1024),
    ("float32", 1024, 14336),
    ("float16", 33, 300),
    ("float32", 1, 1),
    ("float32", 7, 1000),
]
DEVICE_SHAPES = host_shapes(
    [("float16", 33, 300), ("float32", 1, 1), ("float32", 7, 1000), ("float16", 4, 4096)],
    [("float16", 5, 37), ("float32", 3, 300)],
)
TOLERANCE = {"atol": 1e-3, "rtol": 2e-3}  # f16 outputs below 1; f32 ones are far closer


@tv.kernel
def softmax(x: tv.Tensor, out: tv.Tensor, BLOCK: tv.constexpr):
    row = tv.block_id(0)
    v = tv.load(x, [row, 0], [1, BLOCK], other=float("-inf")).to(tv.f32)
    e = tv.exp(v - tv.max(v, axis=1, keepdims=True))
    tv.store(out, (e / tv.sum(e, axis=1, keepdims=True)).to(out.dtype), [row, 0])


def make_inputs(shape, device, rng):
    dtype, rows, cols = shape
    return (randn(rng, (rows, cols), dtype, 4.0, device=device),)


def outputs(x):
    return [(x.shape, str(x.dtype).removeprefix("torch."))]


def solution(x, out, device):
    block = next_pow2(x.shape[1])
    warps = row_warps(block, x.dtype.itemsize)
    softmax[x.shape[0],](x, out, BLOCK=block, warps=warps, device=device)


def reference(x):
    return torch.softmax(as_torch(x), dim=1)
