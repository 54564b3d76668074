"""Row softmax and RMSNorm: tilevm against Triton and torch in one run, on f16 and f32 rows.

    python3 benchmarks/rows_vs_triton.py            (needs a CUDA GPU, torch and Triton)
    python3 benchmarks/rows_vs_triton.py --sweep    (every tilevm variant, not only the best)

tilevm's kernels are written as a user would: a tile of ``ROWS`` whole rows per block, f32 math,
two reductions along the row. The variants differ in rows per block, warps, and how the
exponential and the normalization are spelled (``tv.exp`` and a division per element, or
``tv.exp2`` of a pre-scaled input and one reciprocal per row, or the opt-in approximate
instructions where the language has them). Triton's kernels are the usual shape for it:
one program per row, the row in one block, warps by row width (8 for 4096 columns).

Every kernel is checked against float64 on fresh random data (outputs poisoned with NaN) before
it is timed; times are medians of ``triton.testing.do_bench`` (L2 flushed between calls).
"""

from __future__ import annotations

import sys
import time
from functools import partial

import torch
import triton
import triton.language as tl
from triton.testing import do_bench

import tilevm as tv
from tilevm.backends.cuda import driver

LOG2E = 1.4426950408889634


@tv.kernel
def softmax(x: tv.Tensor, out: tv.Tensor, ROWS: tv.constexpr, BLOCK: tv.constexpr,
            FAST: tv.constexpr):  # fmt: skip
    r0 = tv.block_id(0) * ROWS
    v = tv.load(x, [r0, 0], [ROWS, BLOCK], other=float("-inf")).to(tv.f32)
    top = tv.max(v, axis=1, keepdims=True)
    if FAST == 2:  # the approximate instructions (ex2.approx, rcp.approx)
        e = tv.exp2((v - top) * LOG2E, approx=True)
        scale = tv.fdiv(1.0, tv.sum(e, axis=1, keepdims=True), approx=True)
        tv.store(out, (e * scale).to(out.dtype), [r0, 0])
    elif FAST == 1:  # exact exp2 of a pre-scaled input, one division per row
        e = tv.exp2((v - top) * LOG2E)
        scale = 1.0 / tv.sum(e, axis=1, keepdims=True)
        tv.store(out, (e * scale).to(out.dtype), [r0, 0])
    else:
        e = tv.exp(v - top)
        tv.store(out, (e / tv.sum(e, axis=1, keepdims=True)).to(out.dtype), [r0, 0])


@tv.kernel
def rmsnorm(x: tv.Tensor, w: tv.Tensor, out: tv.Tensor, eps: tv.f32, ROWS: tv.constexpr,
            BLOCK: tv.constexpr):  # fmt: skip
    r0 = tv.block_id(0) * ROWS
    v = tv.load(x, [r0, 0], [ROWS, BLOCK]).to(tv.f32)
    scale = tv.rsqrt(tv.sum(v * v, axis=1, keepdims=True) * (1.0 / BLOCK) + eps)
    weight = tv.load(w, [0], [BLOCK]).to(tv.f32)[None, :]
    tv.store(out, (v * scale * weight).to(out.dtype), [r0, 0])


@triton.jit
def triton_softmax(x_ptr, out_ptr, cols, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    v = tl.load(x_ptr + row * cols + offs, mask=offs < cols, other=-float("inf")).to(tl.float32)
    e = tl.exp(v - tl.max(v, axis=0))
    tl.store(out_ptr + row * cols + offs, e / tl.sum(e, axis=0), mask=offs < cols)


@triton.jit
def triton_rmsnorm(x_ptr, w_ptr, out_ptr, cols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    v = tl.load(x_ptr + row * cols + offs, mask=offs < cols, other=0.0).to(tl.float32)
    scale = tl.rsqrt(tl.sum(v * v, axis=0) / cols + eps)
    w = tl.load(w_ptr + offs, mask=offs < cols, other=0.0).to(tl.float32)
    tl.store(out_ptr + row * cols + offs, v * scale * w, mask=offs < cols)


def bench(fn) -> float:
    """Median microseconds."""
    return do_bench(fn, warmup=25, rep=100, return_mode="median") * 1e3


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    assert not torch.isnan(out).any(), "unwritten output (NaN poison survived)"
    return float((out.double() - ref).norm() / ref.norm())


def checked(launch, out: torch.Tensor, ref: torch.Tensor, tolerance: float) -> float | None:
    """Median microseconds of ``launch`` after one poisoned, checked run; None if it fails."""
    out.fill_(float("nan"))
    try:
        launch()
    except tv.TilevmError as exc:  # a variant the language or the device refuses
        print(f"    ({exc.code}: {exc.message.splitlines()[0]})")
        return None
    torch.cuda.synchronize()
    err = rel_err(out, ref)
    if not err < tolerance:
        raise AssertionError(f"relative error {err:.1e} over {tolerance:.0e}")
    return bench(launch)


def has_approx() -> bool:
    return hasattr(tv, "fdiv")


def softmax_variants(cols: int):
    fast = (0, 1, 2) if has_approx() else (0, 1)
    for rows in (1, 2, 4) if cols <= 1024 else (1, 2):
        for warps in (4, 8, 16):
            if cols * rows // (32 * warps) < 4:  # fewer than 4 elements per thread
                continue
            for f in fast:
                yield {"ROWS": rows, "warps": warps, "FAST": f}


def rmsnorm_variants(cols: int):
    for rows in (1, 2, 4) if cols <= 1024 else (1, 2):
        for warps in (4, 8, 16):
            if cols * rows // (32 * warps) >= 4:
                yield {"ROWS": rows, "warps": warps}


def triton_warps(cols: int) -> int:
    return 4 if cols <= 1024 else 8 if cols <= 4096 else 16


def main() -> None:
    sweep = "--sweep" in sys.argv
    info = driver.device_info()
    print(f"device: {info.name} ({info.arch}), {time.strftime('%Y-%m-%d')}, triton "
          f"{triton.__version__}, torch {torch.__version__}\n")  # fmt: skip
    print("| kernel | shape | tilevm us (best variant) | Triton us | torch us | tilevm / Triton |")
    print("|---|---|---|---|---|---|")
    shapes = ((4096, 4096, torch.float32), (16384, 4096, torch.float16),
              (65536, 1024, torch.float16), (16384, 8192, torch.float16))  # fmt: skip
    for rows, cols, dt in shapes:
        x = (torch.randn(rows, cols, device="cuda") * 4).to(dt)
        out = torch.empty_like(x)
        ref = torch.softmax(x.double(), dim=1)
        tol = 1e-5 if dt == torch.float32 else 2e-3
        results = []
        for v in softmax_variants(cols):
            grid = (tv.cdiv(rows, v["ROWS"]),)
            launch = partial(softmax[grid], x, out, BLOCK=cols, **v)
            us = checked(launch, out, ref, tol)
            if us is not None:
                results.append((us, v))
                if sweep:
                    print(f"    softmax {rows}x{cols} {v}: {us:.1f} us")
        block = triton.next_power_of_2(cols)
        t_launch = lambda: triton_softmax[(rows,)](x, out, cols, BLOCK=block,  # noqa: E731
                                                   num_warps=triton_warps(cols))  # fmt: skip
        t_us = checked(t_launch, out, ref, tol)
        torch_us = bench(partial(torch.softmax, x, dim=1))
        report("softmax", rows, cols, dt, results, t_us, torch_us)
    for rows, cols, dt in shapes:
        x = torch.randn(rows, cols, device="cuda").to(dt)
        w = torch.randn(cols, device="cuda").to(dt)
        out = torch.empty_like(x)
        xd = x.double()
        ref = xd * torch.rsqrt(xd.pow(2).mean(1, keepdim=True) + 1e-6) * w.double()
        tol = 1e-5 if dt == torch.float32 else 2e-3
        results = []
        for v in rmsnorm_variants(cols):
            grid = (tv.cdiv(rows, v["ROWS"]),)
            launch = partial(rmsnorm[grid], x, w, out, 1e-6, BLOCK=cols, **v)
            us = checked(launch, out, ref, tol)
            if us is not None:
                results.append((us, v))
                if sweep:
                    print(f"    rmsnorm {rows}x{cols} {v}: {us:.1f} us")
        block = triton.next_power_of_2(cols)
        t_launch = lambda: triton_rmsnorm[(rows,)](x, w, out, cols, 1e-6,  # noqa: E731
                                                   BLOCK=block, num_warps=triton_warps(cols))
        t_us = checked(t_launch, out, ref, tol)
        torch_us = bench(partial(torch.nn.functional.rms_norm, x, (cols,), w, 1e-6))
        report("rmsnorm", rows, cols, dt, results, t_us, torch_us)


def report(name, rows, cols, dt, results, t_us, torch_us) -> None:
    us, best = min(results, key=lambda r: r[0])
    spelled = " ".join(f"{k}={v}" for k, v in best.items())
    ratio = f"{t_us / us:.2f}x" if t_us else "-"
    t_text = f"{t_us:.1f}" if t_us else "failed"
    print(f"| {name} {str(dt)[6:]} | {rows}x{cols} | {us:.1f} ({spelled}) | {t_text} | "
          f"{torch_us:.1f} | {ratio} |")  # fmt: skip


if __name__ == "__main__":
    main()
