"""Weight-only quantized matmul: y = x @ dequant(w).T with 3-bit or 6-bit weights.

The weights are bit-packed (tv.pack): row n of ``w_packed`` holds K values of ``WTYPE`` in
``K * bits / 8`` bytes. The kernel loads whole bytes, then ``view``s each thread's bytes as
``WTYPE`` values: 3 bytes are 8 three-bit integers, or 4 six-bit floats. The layouts are chosen
so that every thread holds a whole number of elements:

    bytes  [BN, BK * bits / 8]  spatial(BN, T // BN).local(1, BYTES_PER_THREAD)
    values [BN, BK]             spatial(BN, T // BN).local(1, BYTES_PER_THREAD * 8 // bits)

Each group of ``BK`` weights in a row shares one f32 scale.
"""

from __future__ import annotations

import numpy as np

import tilevm as tv
from tilevm.layouts import local, spatial


@tv.kernel
def quantized_matmul(
    x: tv.Tensor[tv.f32],  # [M, K]
    w_packed: tv.Tensor[tv.u8],  # [N, K * bits / 8]
    scales: tv.Tensor[tv.f32],  # [N, K / BK]
    y: tv.Tensor[tv.f32],  # [M, N]
    WTYPE: tv.constexpr,
    BM: tv.constexpr = 16,
    BN: tv.constexpr = 32,
    BK: tv.constexpr = 64,
):
    BYTES = BK * WTYPE.bits // 8
    LANES = tv.num_threads() // BN  # threads sharing a row of the weight tile
    byte_layout = spatial(BN, LANES) * local(1, BYTES // LANES)
    value_layout = spatial(BN, LANES) * local(1, BK // LANES)
    m0 = tv.block_id(0) * BM
    n0 = tv.block_id(1) * BN
    acc = tv.zeros([BM, BN], tv.f32)
    for g in range(0, tv.cdiv(x.shape[1], BK)):
        raw = tv.load(w_packed, [n0, g * BYTES], [BN, BYTES], layout=byte_layout)
        q = tv.view(raw, dtype=WTYPE, layout=value_layout)
        s = tv.load(scales, [n0, g], [BN, 1])
        w = q.to(tv.f32) * s
        a = tv.load(x, [m0, g * BK], [BM, BK])
        acc = tv.dot(a, tv.transpose(w), acc)
    tv.store(y, acc, [m0, n0])


def quantize(w: np.ndarray, wtype: tv.DataType, group: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-group scales mapping each group's largest magnitude onto the type's largest value."""
    n, k = w.shape
    groups = w.reshape(n, k // group, group)
    scales = np.abs(groups).max(axis=2) / float(wtype.max)
    q = wtype.round(groups / scales[..., None], overflow="saturate").reshape(n, k)
    return q, scales.astype(np.float32)


def run(
    wtype: tv.DataType,
    m: int = 20,
    n: int = 64,
    k: int = 256,
    device: str | None = None,
    seed: int | None = None,
) -> float:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    q, scales = quantize(w, wtype, 64)
    packed = tv.pack(q, wtype).reshape(n, k * wtype.bits // 8)
    y = np.full((m, n), np.nan, np.float32)
    quantized_matmul[tv.cdiv(m, 16), tv.cdiv(n, 32)](
        x, packed, scales, y, WTYPE=wtype, device=device
    )
    dequantized = (q.reshape(n, k // 64, 64) * scales[..., None]).reshape(n, k)
    reference = x.astype(np.float64) @ dequantized.T.astype(np.float64)
    return float(np.abs(y - reference).max() / np.abs(reference).max())


if __name__ == "__main__":
    for wtype in (tv.i3, tv.f6e3m2fn):
        print(f"{wtype}: max relative error vs float64 reference {run(wtype):.2e}")
