"""out = x + y, one tile of BLOCK elements per block; the last block is masked at the edge."""

from __future__ import annotations

import numpy as np

import tilevm as tv


@tv.kernel
def vector_add(
    x: tv.Tensor[tv.f32], y: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], BLOCK: tv.constexpr = 1024
):
    start = tv.block_id(0) * BLOCK
    a = tv.load(x, [start], [BLOCK])  # elements past the end read as 0
    b = tv.load(y, [start], [BLOCK])
    tv.store(out, a + b, [start])  # elements past the end are not written


def run(n: int = 10_000, device: str | None = None, seed: int | None = None) -> float:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    out = np.full(n, np.nan, np.float32)
    vector_add[tv.cdiv(n, 1024),](x, y, out, device=device)
    return float(np.abs(out - (x + y)).max())


if __name__ == "__main__":
    print(f"vector_add: max error {run():.1e}")
