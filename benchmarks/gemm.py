"""Dense f16/bf16 GEMM: tilevm's stdlib matmul against torch.matmul (cuBLAS), side by side.

    python3 benchmarks/gemm.py             (prints a table; needs a CUDA GPU and torch)
    python3 benchmarks/gemm.py --quick     (fewer sizes and configs)

Every shape is checked first against a float64 product on fresh random data (the output
poisoned with NaN). Shapes with M <= 256 rotate among 8 weight sets (B), so B comes from device
memory, not L2. For each shape every candidate tile configuration is timed and the best one is
reported next to the heuristic's choice; the fraction is tilevm's best time over cuBLAS's.
"""

from __future__ import annotations

import argparse
import sys

import torch
from triton.testing import do_bench

import tilevm as tv
from tilevm.stdlib import matmul as mm

SHAPES = [(4096, 4096, 4096), (8192, 8192, 8192), (16, 8192, 8192), (256, 8192, 8192)]
CANDIDATES = {
    "large": mm.CONFIGS["large"],
    "wide": mm.CONFIGS["wide"],
    "medium": mm.CONFIGS["medium"],
    "large-k64": mm.GemmConfig(128, 128, 64, 3, 4),
    "wide-k64-8w": mm.GemmConfig(128, 256, 64, 3, 8),
    "tall-8w": mm.GemmConfig(256, 128, 32, 3, 8),
    "skinny": mm.CONFIGS["skinny"],
    "skinny-n32": mm.GemmConfig(16, 32, 128, 4, 2),
    "skinny-k256": mm.GemmConfig(16, 64, 256, 3, 4),
    "m64": mm.GemmConfig(64, 64, 64, 4, 4),
}


EXTRA: list[str] = []  # configs named on the command line


@tv.kernel
def mma_only(a: tv.Tensor, b: tv.Tensor, out: tv.Tensor, ITERS: tv.constexpr):
    """The matrix units' ceiling for this code: the GEMM's 128x128x32 block step on 4 warps,
    repeated on registers with no memory traffic."""
    x = tv.load(a, [0, 0], [128, 32])
    y = tv.load(b, [0, 0], [32, 128])
    acc = tv.zeros([128, 128], tv.f32)
    for _ in range(ITERS):
        acc = tv.dot(x, y, acc)
    tv.store(out, acc, [tv.block_id(0) * 128, 0])


def mma_ceiling(dtype: torch.dtype) -> float:
    """TFLOP/s of back-to-back mma.sync, as the GEMM issues them (4 warps, 64x64 per warp)."""
    blocks, iters = 132 * 16, 512
    a = torch.randn(128, 32, device="cuda", dtype=dtype) / 16
    b = torch.randn(32, 128, device="cuda", dtype=dtype) / 16
    out = torch.empty(blocks * 128, 128, device="cuda", dtype=torch.float32)
    run = lambda: mma_only[blocks,](a, b, out, ITERS=iters, warps=4)  # noqa: E731
    run()
    torch.cuda.synchronize()
    ref = (a.double() @ b.double()) * iters
    assert rel_err(out[:128], ref) < 1e-3
    us = bench(run)
    return 2 * 128 * 128 * 32 * iters * blocks / us / 1e6


def bench(fn) -> float:
    """Median microseconds."""
    return do_bench(fn, warmup=25, rep=200, return_mode="median") * 1e3


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    assert not torch.isnan(out).any(), "unwritten output (NaN poison survived)"
    return float((out.double() - ref).norm() / ref.norm())


def candidates(m: int, quick: bool) -> dict[str, mm.GemmConfig]:
    names = (
        ["skinny", "skinny-n32", "skinny-k256"] if m <= 16
        else ["medium", "large", "m64"] if m <= 256
        else ["large", "wide", "large-k64", "wide-k64-8w", "tall-8w"]
    )  # fmt: skip
    names = (names[:2] if quick else names) + EXTRA
    return {n: CANDIDATES[n] for n in names}


def run_shape(m: int, n: int, k: int, dtype: torch.dtype, quick: bool) -> list[str]:
    sets = 8 if m <= 256 else 1
    a = torch.randn(m, k, device="cuda", dtype=dtype)
    bs = [torch.randn(k, n, device="cuda", dtype=dtype) for _ in range(sets)]
    c = torch.full((m, n), float("nan"), device="cuda", dtype=dtype)
    ref = a.double() @ bs[0].double()
    rows = []
    it = iter(range(1 << 62))
    cublas = bench(lambda: torch.matmul(a, bs[next(it) % sets]))
    flops = 2 * m * n * k
    heuristic = mm.choose_config(m, n, k)
    configs = {"heuristic": heuristic, **candidates(m, quick)}
    best = None
    for name, cfg in configs.items():
        if cfg.shared_bytes() > 227 * 1024:
            continue
        c.fill_(float("nan"))
        mm.matmul(a, bs[0], out=c, config=cfg)
        torch.cuda.synchronize()
        err = rel_err(c, ref)
        assert err < 1e-2, f"{name}: relative error {err:.2e}"
        order = iter(range(1 << 62))
        us = bench(
            lambda cfg=cfg, order=order: mm.matmul(a, bs[next(order) % sets], out=c, config=cfg)
        )
        if best is None or us < best[0]:
            best = (us, name)
        rows.append(
            f"| {m}x{n}x{k} | {str(dtype)[6:]} | {name} {cfg.BM}x{cfg.BN}x{cfg.BK} "
            f"s{cfg.STAGES} w{cfg.warps} | {us:.1f} | {flops / us / 1e6:.0f} | {cublas:.1f} | "
            f"{flops / cublas / 1e6:.0f} | {cublas / us:.0%} | {err:.1e} |"
        )
    rows.append(f"| {m}x{n}x{k} | {str(dtype)[6:]} | **best: {best[1]}** | {best[0]:.1f} | "
                f"{flops / best[0] / 1e6:.0f} | {cublas:.1f} | {flops / cublas / 1e6:.0f} | "
                f"**{cublas / best[0]:.0%}** | |")  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dtypes", default="float16,bfloat16")
    parser.add_argument("--shapes", default="", help="e.g. 4096x4096x4096,16x8192x8192")
    parser.add_argument("--configs", default="", help="extra configs, e.g. 128x128x64s3w4")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 1
    print(f"device: {torch.cuda.get_device_name()}")
    head = "| shape MxNxK | dtype | config | tilevm us | TFLOP/s | cuBLAS us | TFLOP/s | of cuBLAS | rel err |"  # noqa: E501
    lines = [head, "|" + "---|" * 9]
    for text in filter(None, args.configs.split(",")):
        tile, rest = text.split("s")
        stages, warps = rest.split("w")
        bm, bn, bk = (int(x) for x in tile.split("x"))
        CANDIDATES[text] = mm.GemmConfig(bm, bn, bk, int(stages), int(warps))
        EXTRA.append(text)
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",") if s] or SHAPES
    ceilings = []
    for dtype in (getattr(torch, d) for d in args.dtypes.split(",")):
        ceilings.append(f"mma.sync ceiling ({str(dtype)[6:]}): {mma_ceiling(dtype):.0f} TFLOP/s")
        print(ceilings[-1], flush=True)
        for m, n, k in shapes:
            lines += run_shape(m, n, k, dtype, args.quick)
            print(lines[-1], flush=True)
    print("\n".join(ceilings + lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
