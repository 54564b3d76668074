"""Row scans against torch on one GPU, side by side in one run: ``tv.cumsum`` and a running max
(``tv.associative_scan``) along the rows of a matrix, against ``torch.cumsum`` and
``torch.cummax``.

    python3 benchmarks/scan.py            (prints a table; needs a CUDA GPU, torch and triton)

Each kernel is checked against a float64 reference on fresh random data (outputs poisoned with
NaN first) before it is timed. A scan reads its input once and writes its output once: the floor
is those bytes at the measured device-to-device copy bandwidth.
"""

from __future__ import annotations

import torch
from triton.testing import do_bench

import tilevm as tv


@tv.func
def larger(a, b):
    return tv.maximum(a, b)


@tv.kernel
def row_scan(x: tv.Tensor, out: tv.Tensor, BM: tv.constexpr, BN: tv.constexpr, MAX: tv.constexpr):
    m0 = tv.block_id(0) * BM
    if MAX:
        tile = tv.load(x, [m0, 0], [BM, BN], other=float("-inf"))
        y = tv.associative_scan(tile, 1, larger)
    else:
        y = tv.cumsum(tv.load(x, [m0, 0], [BM, BN]), axis=1)
    tv.store(out, y, [m0, 0])


# (rows, cols, rows per block, warps)
SHAPES = [(16384, 256, 8, 4), (8192, 1024, 2, 4), (4096, 4096, 1, 8), (1024, 8192, 1, 16)]


def bench(fn) -> float:
    """Median microseconds."""
    return do_bench(fn, warmup=25, rep=200, return_mode="median") * 1e3


def copy_bandwidth() -> float:
    """Bytes per second of a 1 GiB device-to-device copy (read + write)."""
    src = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    return 2 * src.numel() / (bench(lambda: dst.copy_(src)) * 1e-6)


def check(x: torch.Tensor, out: torch.Tensor, is_max: bool) -> None:
    if is_max:
        assert torch.equal(out, torch.cummax(x, dim=1).values)
        return
    ref = torch.cumsum(x.double(), dim=1)
    scale = torch.cumsum(x.double().abs(), dim=1)  # float32 sums: ~64 roundings per path
    tol = 2.0**-10 if x.dtype == torch.float16 else 64 * 2.0**-23
    assert bool(((out.double() - ref).abs() <= tol * scale + 1e-6).all())


def measure(x: torch.Tensor, bm: int, warps: int, is_max: bool) -> tuple[float, float]:
    """Median microseconds of tilevm's scan and torch's, after checking tilevm's."""
    rows, cols = x.shape
    bn = 1 << (cols - 1).bit_length()
    out = torch.full_like(x, float("nan"))
    launch = row_scan[tv.cdiv(rows, bm),]

    def ours() -> None:
        launch(x, out, BM=bm, BN=bn, MAX=is_max, warps=warps)

    ours()
    torch.cuda.synchronize()
    check(x, out, is_max)
    scan = torch.cummax if is_max else torch.cumsum
    return bench(ours), bench(lambda: scan(x, dim=1))


def main() -> None:
    bandwidth = copy_bandwidth()
    print(f"{torch.cuda.get_device_name()}: copy {bandwidth / 1e12:.2f} TB/s")
    print(f"{'scan':<8} {'dtype':<9} {'shape':>12} {'tilevm us':>10} {'torch us':>9} "
          f"{'speedup':>8} {'of floor':>9}")  # fmt: skip
    for dtype in (torch.float32, torch.float16):
        for rows, cols, bm, warps in SHAPES:
            x = torch.randn(rows, cols, device="cuda", dtype=dtype)
            floor = 2 * x.numel() * x.element_size() / bandwidth * 1e6
            for name, is_max in (("cumsum", False), ("cummax", True)):
                ours, theirs = measure(x, bm, warps, is_max)
                shape = f"{rows}x{cols}"
                print(f"{name:<8} {str(dtype)[6:]:<9} {shape:>12} {ours:>10.1f} {theirs:>9.1f} "
                      f"{theirs / ours:>7.2f}x {floor / ours:>8.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
