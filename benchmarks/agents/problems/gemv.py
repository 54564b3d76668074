"""Matrix-vector product ``y = W x`` with f16 ``W [N, K]`` (row-major, an ``nn.Linear``
weight) and ``x [K]`` (batch 1), f16 output, f32 accumulation.

Memory-bound: every byte of W is read once. A block of 4 warps owns 4 rows; each step of its
K loop loads ``[4, 1024]`` of W (one 16-byte load per thread and row: 8 KiB in flight per
block) and 1024 of x (16 bytes per thread, shared by the 4 rows), multiplies in f32 and adds
into a register tile; the rows are reduced across the block once, after the loop.
Reference: ``torch.mv(W, x)`` (cuBLAS on a GPU).
"""

from __future__ import annotations

from _helpers import as_torch, host_shapes, randn

import tilevm as tv
from tilevm.layouts import local

CATEGORY = "matmul"
SHAPES = [(8192, 8192), (14336, 4096), (4096, 14336), (4096, 4096), (33, 300), (1, 1), (7, 1000)]
DEVICE_SHAPES = host_shapes([(33, 300), (1, 1), (7, 1000), (64, 4096)], [(5, 37), (9, 130)])
TOLERANCE = {"atol": 2e-3, "rtol": 2e-3}
ROWS, WARPS = 4, 4


@tv.kernel
def gemv(w: tv.Tensor, x: tv.Tensor, y: tv.Tensor, ROWS: tv.constexpr):
    n0 = tv.block_id(0) * ROWS
    threads = tv.num_threads()
    BK = threads * 8  # 16 bytes of f16 per thread and row
    rows = local(ROWS, 1).spatial(1, threads).local(1, 8)  # each thread: the same 8 columns
    acc = tv.zeros([ROWS, BK], tv.f32)
    for k in tv.range(0, w.shape[1], BK):
        tile = tv.load(w, [n0, k], [ROWS, BK], layout=rows).to(tv.f32)
        acc += tile * tv.load(x, [k], [BK]).to(tv.f32)[None, :]
    tv.store(y, tv.sum(acc, axis=1).to(y.dtype), [n0])


def make_inputs(shape, device, rng):
    n, k = shape
    w = randn(rng, (n, k), "float16", k**-0.5, device=device)  # y ~ N(0, 1)
    return w, randn(rng, (k,), "float16", device=device)


def outputs(w, x):
    return [((w.shape[0],), "float16")]


def solution(w, x, y, device):
    gemv[tv.cdiv(w.shape[0], ROWS),](w, x, y, ROWS=ROWS, warps=WARPS, device=device)


def reference(w, x):
    return as_torch(w).mv(as_torch(x))
