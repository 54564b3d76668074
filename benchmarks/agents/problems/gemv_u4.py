"""Weight-only 4-bit GEMV: ``y = W x`` with ``W = (q - 8) * scale``, ``q`` unsigned 4-bit codes
packed two per byte (column ``2j`` in the low nibble of byte ``j``: tilevm's ``u4`` bit order),
``wq [N, K/2]`` u8, one f16 scale per row and group of 128 columns (``scales [N, K/128]``),
f16 ``x [K]`` and ``y [N]``, f32 math.

A block of 4 warps owns 4 rows. Each step loads 16 bytes (32 codes) per thread and row,
``tv.view``s them as ``u4`` (the same bits, no data movement), converts with the packed-field
fast cast, and multiplies by ``x`` in f32; a thread's 32 columns lie in one group, so its
partial sum is scaled once per step. Reference (f32, stated): the dequantized matrix in
torch, then ``W @ x`` in f32, rounded to f16.
"""

from __future__ import annotations

import numpy as np
import torch
from _helpers import as_torch, host_shapes, randn

import tilevm as tv
from tilevm.layouts import local, spatial

CATEGORY = "quantized matmul"
GROUP = 128
SHAPES = [(8192, 8192), (14336, 4096), (4096, 14336), (4096, 4096), (33, 256), (1, 128)]
DEVICE_SHAPES = host_shapes([(33, 256), (1, 128), (64, 4096), (7, 640)], [(5, 128), (9, 384)])
TOLERANCE = {"atol": 2e-3, "rtol": 2e-3}
ROWS, WARPS = 4, 4


@tv.kernel
def gemv_u4(
    wq: tv.Tensor[tv.u8],
    scales: tv.Tensor[tv.f16],
    x: tv.Tensor[tv.f16],
    y: tv.Tensor[tv.f16],
    ROWS: tv.constexpr,
    GROUP: tv.constexpr,
):
    n0 = tv.block_id(0) * ROWS
    threads = tv.num_threads()
    BK = threads * 32  # 32 codes (16 bytes) per thread and row
    G = BK // GROUP  # groups per step
    TG = GROUP // 32  # threads per group
    per_thread = local(ROWS, 1) * spatial(1, threads)  # then the thread's bytes or codes
    acc = tv.zeros([ROWS, G, TG], tv.f32)
    for kb in tv.range(0, wq.shape[1], BK // 2):  # byte offsets: provably 16-byte aligned
        k = kb * 2
        raw = tv.load(wq, [n0, kb], [ROWS, BK // 2], layout=per_thread * local(1, 16))
        q = tv.view(raw, dtype=tv.u4, layout=per_thread * local(1, 32))
        prod = (q.to(tv.f32) - 8.0) * tv.load(x, [k], [BK]).to(tv.f32)[None, :]
        part = tv.sum(tv.reshape(prod, [ROWS, G, TG, 32]), axis=3)  # inside each thread
        s = tv.load(scales, [n0, k // GROUP], [ROWS, G]).to(tv.f32)
        acc += part * s[:, :, None]
    tv.store(y, tv.sum(tv.sum(acc, axis=2), axis=1).to(y.dtype), [n0])


def make_inputs(shape, device, rng):
    n, k = shape
    codes = rng.integers(0, 16, (n, k))
    wq = (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8)
    scales = (rng.uniform(0.5, 1.5, (n, k // GROUP)) * 0.3 / np.sqrt(k)).astype(np.float16)
    return wq, scales, randn(rng, (k,), "float16", device=device)


def outputs(wq, scales, x):
    return [((wq.shape[0],), "float16")]


def solution(wq, scales, x, y, device):
    gemv_u4[tv.cdiv(wq.shape[0], ROWS),](
        wq, scales, x, y, ROWS=ROWS, GROUP=GROUP, warps=WARPS, device=device
    )


def reference(wq, scales, x):
    packed = as_torch(wq).to(torch.int32)
    codes = torch.stack([packed & 15, packed >> 4], dim=-1).reshape(packed.shape[0], -1)
    w = (codes.float() - 8.0) * as_torch(scales).float().repeat_interleave(GROUP, dim=1)
    return (w @ as_torch(x).float()).half()
