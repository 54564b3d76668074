"""Tiled matmul through shared memory: C[M, N] = A[M, K] @ B[K, N], f16 inputs, f32 result.

Each block computes a BM x BN tile of C, stepping over K in BK-wide slices staged in shared
memory. Edges of every dimension are masked, so any M, N, K work.
"""

from __future__ import annotations

import numpy as np

import tilevm as tv


@tv.kernel
def matmul(
    a: tv.Tensor[tv.f16],
    b: tv.Tensor[tv.f16],
    c: tv.Tensor[tv.f32],
    BM: tv.constexpr = 32,
    BN: tv.constexpr = 32,
    BK: tv.constexpr = 16,
):
    m0 = tv.block_id(0) * BM
    n0 = tv.block_id(1) * BN
    a_tile = tv.shared([BM, BK], tv.f16)
    b_tile = tv.shared([BK, BN], tv.f16)
    acc = tv.zeros([BM, BN], tv.f32)
    for k in range(0, a.shape[1], BK):
        tv.store_shared(a_tile, tv.load(a, [m0, k], [BM, BK]))
        tv.store_shared(b_tile, tv.load(b, [k, n0], [BK, BN]))
        tv.sync()
        acc = tv.dot(tv.load_shared(a_tile), tv.load_shared(b_tile), acc)
        tv.sync()
    tv.store(c, acc, [m0, n0])


def run(
    m: int = 70, n: int = 50, k: int = 90, device: str | None = None, seed: int | None = None
) -> float:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float16)
    b = rng.standard_normal((k, n)).astype(np.float16)
    c = np.full((m, n), np.nan, np.float32)
    matmul[tv.cdiv(m, 32), tv.cdiv(n, 32)](a, b, c, device=device)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    return float(np.abs(c - ref).max() / np.abs(ref).max())


if __name__ == "__main__":
    print(f"matmul: max relative error {run():.1e}")
