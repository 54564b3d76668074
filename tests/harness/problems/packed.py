"""Honest, with sub-byte weights: a GEMV over 4-bit codes passed as a tv.PackedArray."""

import numpy as np

import tilevm as tv

SHAPES = [(16, 256), (33, 300)]
TOLERANCE = {"atol": 1e-4, "rtol": 1e-5}  # f32 sums of 300 products of size ~10
BN = 16


@tv.kernel
def gemv_u4(w: tv.Tensor[tv.u4], x: tv.Tensor[tv.f32], y: tv.Tensor[tv.f32], BK: tv.constexpr):
    n0 = tv.block_id(0) * BN
    acc = tv.zeros([BN, BK], tv.f32)
    for k0 in range(0, w.shape[1], BK):
        q = tv.load(w, [n0, k0], [BN, BK]).to(tv.f32) - 8.0
        acc = acc + q * tv.load(x, [k0], [BK])[None, :]
    tv.store(y, tv.sum(acc, axis=1), [n0])


def make_inputs(shape, device, rng):
    codes = rng.integers(0, 16, shape)
    return tv.PackedArray.from_values(codes, tv.u4), rng.standard_normal(shape[1]).astype("f4")


def outputs(w, x):
    return [((w.shape[0],), "float32")]


def solution(w, x, y, device):
    gemv_u4[tv.cdiv(w.shape[0], BN),](w, x, y, BK=128, device=device)


def reference(w, x):
    host = np.asarray(x.cpu() if hasattr(x, "cpu") else x, dtype=np.float64)
    return ((w.values().astype(np.float64) - 8.0) @ host).astype(np.float32)
