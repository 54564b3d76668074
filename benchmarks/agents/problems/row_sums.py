"""Sum and mean of each row of a 2-D f32 tensor (two outputs), f32 accumulation.

One block per row walks the row in 4096-column steps (16-byte loads) adding into a register
tile, and reduces it across the block once at the end. Reference: ``x.sum(dim=1)`` and
``x.mean(dim=1)`` in f32 (torch).
"""

from __future__ import annotations

from _helpers import as_torch, host_shapes, next_pow2, randn

import tilevm as tv

CATEGORY = "reduction"
SHAPES = [(4096, 4096), (1024, 14336), (16384, 1024), (64, 131072), (33, 300), (1, 1)]
DEVICE_SHAPES = host_shapes([(33, 300), (1, 1), (7, 5000), (4, 4096)], [(5, 37), (3, 300)])
TOLERANCE = {"atol": 1e-4, "rtol": 1e-5}
MAX_BLOCK = 4096


@tv.kernel
def row_sums(
    x: tv.Tensor[tv.f32], sums: tv.Tensor[tv.f32], means: tv.Tensor[tv.f32], BLOCK: tv.constexpr
):
    row = tv.block_id(0)
    acc = tv.zeros([1, BLOCK], tv.f32)
    for k in tv.range(0, x.shape[1], BLOCK):
        acc += tv.load(x, [row, k], [1, BLOCK])
    total = tv.sum(acc, axis=1)
    tv.store(sums, total, [row])
    tv.store(means, total / x.shape[1].to(tv.f32), [row])


def make_inputs(shape, device, rng):
    return (randn(rng, shape, "float32", device=device),)


def outputs(x):
    return [((x.shape[0],), "float32"), ((x.shape[0],), "float32")]


def solution(x, sums, means, device):
    block = min(MAX_BLOCK, next_pow2(x.shape[1]))
    warps = max(1, min(8, block // 256))  # up to 16 floats (four 16-byte loads) per thread
    row_sums[x.shape[0],](x, sums, means, BLOCK=block, warps=warps, device=device)


def reference(x):
    t = as_torch(x)
    return t.sum(dim=1), t.mean(dim=1)
