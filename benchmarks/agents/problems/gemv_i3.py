"""Weight-only 3-bit GEMV: ``y = W x`` with ``W = q * scale``, ``q`` signed 3-bit codes
(-4..3) bit-packed row by row as ``tv.pack`` writes an ``i3`` tensor (element ``i`` in bits
``[3i, 3i+3)``, little-endian: eight codes in every three bytes), ``wq [N, 3K/8]`` u8, one f16
scale per row and group of 128 columns, f16 ``x [K]`` and ``y [N]``, f32 math.

Like the 4-bit problem with 12 bytes (32 codes) per thread and row: three 4-byte loads
(12 bytes is not a power of two), ``tv.view`` as ``i3``, the fast signed-field cast, one scale
per thread, row and step. Reference (f32, stated): the codes unpacked and dequantized in
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
def gemv_i3(
    wq: tv.Tensor[tv.u8],
    scales: tv.Tensor[tv.f16],
    x: tv.Tensor[tv.f16],
    y: tv.Tensor[tv.f16],
    ROWS: tv.constexpr,
    GROUP: tv.constexpr,
):
    n0 = tv.block_id(0) * ROWS
    threads = tv.num_threads()
    BK = threads * 32  # 32 codes (12 bytes) per thread and row
    G = BK // GROUP
    TG = GROUP // 32
    per_thread = local(ROWS, 1) * spatial(1, threads)  # then the thread's bytes or codes
    acc = tv.zeros([ROWS, G, TG], tv.f32)
    for kb in tv.range(0, wq.shape[1], threads * 12):
        k = kb // 3 * 8
        raw = tv.load(wq, [n0, kb], [ROWS, threads * 12], layout=per_thread * local(1, 12))
        q = tv.view(raw, dtype=tv.i3, layout=per_thread * local(1, 32))
        prod = q.to(tv.f32) * tv.load(x, [k], [BK]).to(tv.f32)[None, :]
        part = tv.sum(tv.reshape(prod, [ROWS, G, TG, 32]), axis=3)
        s = tv.load(scales, [n0, k // GROUP], [ROWS, G]).to(tv.f32)
        acc += part * s[:, :, None]
    tv.store(y, tv.sum(tv.sum(acc, axis=2), axis=1).to(y.dtype), [n0])


def make_inputs(shape, device, rng):
    n, k = shape
    codes = rng.integers(-4, 4, (n, k))
    wq = tv.pack(codes.reshape(-1), tv.i3).reshape(n, 3 * k // 8)
    scales = (rng.uniform(0.5, 1.5, (n, k // GROUP)) * 0.4 / np.sqrt(k)).astype(np.float16)
    return wq, scales, randn(rng, (k,), "float16", device=device)


def outputs(wq, scales, x):
    return [((wq.shape[0],), "float16")]


def solution(wq, scales, x, y, device):
    gemv_i3[tv.cdiv(wq.shape[0], ROWS),](
        wq, scales, x, y, ROWS=ROWS, GROUP=GROUP, warps=WARPS, device=device
    )


def reference(wq, scales, x):
    packed = as_torch(wq).to(torch.int32).reshape(wq.shape[0], -1, 3)  # 8 codes per 3 bytes
    word = packed[..., 0] | (packed[..., 1] << 8) | (packed[..., 2] << 16)
    fields = (word[..., None] >> (3 * torch.arange(8, device=word.device))) & 7
    codes = torch.where(fields >= 4, fields - 8, fields).reshape(wq.shape[0], -1)
    w = codes.float() * as_torch(scales).float().repeat_interleave(GROUP, dim=1)
    return (w @ as_torch(x).float()).half()
