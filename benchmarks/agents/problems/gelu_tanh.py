"""GELU with the tanh approximation, elementwise, f16 in and out, f32 math:
``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``.

The tensor is walked as one flat vector: 4096 elements per block of 4 warps (two 16-byte
loads per thread). Reference: ``torch.nn.functional.gelu(x, approximate="tanh")`` on f16
(torch computes in f32).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from _helpers import as_torch, flat, host_shapes, randn

import tilevm as tv

CATEGORY = "elementwise"
SHAPES = [(4096, 14336), (16384, 4096), (16, 4096), (33, 300), (1, 1), (7, 1001)]
DEVICE_SHAPES = host_shapes([(33, 300), (1, 1), (7, 1001), (4, 4096)], [(5, 37), (3, 300)])
TOLERANCE = {"atol": 1e-3, "rtol": 2e-3}
BLOCK, WARPS = 4096, 4
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@tv.kernel
def gelu_tanh(x: tv.Tensor, out: tv.Tensor, BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK
    v = tv.load(x, [start], [BLOCK]).to(tv.f32)
    inner = SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)
    tv.store(out, (0.5 * v * (1.0 + tv.tanh(inner))).to(out.dtype), [start])


def make_inputs(shape, device, rng):
    return (randn(rng, shape, "float16", 3.0, device=device),)


def outputs(x):
    return [(x.shape, "float16")]


def solution(x, out, device):
    n = x.shape[0] * x.shape[1]
    gelu_tanh[tv.cdiv(n, BLOCK),](flat(x), flat(out), BLOCK=BLOCK, warps=WARPS, device=device)


def reference(x):
    return F.gelu(as_torch(x), approximate="tanh")
