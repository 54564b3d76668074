"""Memory-bound kernels against torch on one GPU, side by side in one run: vector add, row
softmax, RMSNorm; plus compile, cached-load and launch overheads.

    python3 benchmarks/memory_bound.py            (prints a table; needs a CUDA GPU and torch)

Each kernel is checked against a float64 reference on fresh random data (outputs poisoned with
NaN first) before it is timed. Bandwidth counts the bytes that must move (inputs read once,
outputs written once) over the median time; the floor is the same bytes at the measured
device-to-device copy bandwidth.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial

import torch
from triton.testing import do_bench

import tilevm as tv
from tilevm.backends.cuda import driver


@tv.kernel
def vector_add(x: tv.Tensor, y: tv.Tensor, out: tv.Tensor, BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK
    tv.store(out, tv.load(x, [start], [BLOCK]) + tv.load(y, [start], [BLOCK]), [start])


@tv.kernel
def softmax(x: tv.Tensor, out: tv.Tensor, BLOCK: tv.constexpr):
    row = tv.block_id(0)
    v = tv.load(x, [row, 0], [1, BLOCK], other=float("-inf")).to(tv.f32)
    e = tv.exp(v - tv.max(v, axis=1, keepdims=True))
    tv.store(out, (e / tv.sum(e, axis=1, keepdims=True)).to(out.dtype), [row, 0])


@tv.kernel
def rmsnorm(x: tv.Tensor, w: tv.Tensor, out: tv.Tensor, eps: tv.f32, BLOCK: tv.constexpr):
    row = tv.block_id(0)
    v = tv.load(x, [row, 0], [1, BLOCK]).to(tv.f32)
    mean = tv.sum(v * v, axis=1, keepdims=True) / BLOCK
    scale = tv.rsqrt(mean + eps)
    weight = tv.load(w, [0], [BLOCK]).to(tv.f32)[None, :]
    tv.store(out, (v * scale * weight).to(out.dtype), [row, 0])


def bench(fn) -> float:
    """Median microseconds."""
    return do_bench(fn, warmup=25, rep=200, return_mode="median") * 1e3


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    assert not torch.isnan(out).any(), "unwritten output (NaN poison survived)"
    out, ref = out.double(), ref.double()
    return float((out - ref).norm() / ref.norm())


def copy_bandwidth() -> float:
    x = torch.randn(256 * 2**20, device="cuda")  # 1 GiB
    y = torch.empty_like(x)
    us = bench(lambda: y.copy_(x))
    return 2 * x.numel() * 4 / us / 1e3  # GB/s


def row(name, shape, nbytes, us, peak, err, torch_us) -> str:
    gbs = nbytes / us / 1e3
    return (
        f"| {name} | {shape} | {us:8.1f} | {gbs:7.0f} | {100 * gbs / peak:5.1f}% | "
        f"{torch_us:8.1f} | {torch_us / us:5.2f}x | {err:.1e} |"
    )


def main() -> None:
    info = driver.device_info()
    peak = copy_bandwidth()
    print(f"device: {info.name} ({info.arch}), {time.strftime('%Y-%m-%d')}")
    print(f"copy bandwidth (1 GiB device-to-device, read+write): {peak:.0f} GB/s\n")
    print("| kernel | shape | tilevm us | GB/s | of copy | torch us | speedup | rel err |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (2**20, 2**24, 2**28):
        x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
        out = torch.full_like(x, float("nan"))
        launch = vector_add[tv.cdiv(n, 4096),]
        launch(x, y, out, BLOCK=4096)
        err = rel_err(out, x.double() + y.double())
        us = bench(partial(launch, x, y, out, BLOCK=4096))
        t_us = bench(partial(torch.add, x, y, out=out))
        print(row("vector add f32", n, 12 * n, us, peak, err, t_us))
    for rows, cols, dt in (
        (4096, 4096, torch.float32),
        (16384, 4096, torch.float16),
        (65536, 1024, torch.float16),
    ):
        x = torch.randn(rows, cols, device="cuda").to(dt) * 4
        out = torch.full_like(x, float("nan"))
        launch = softmax[rows,]
        launch(x, out, BLOCK=cols)
        err = rel_err(out, torch.softmax(x.double(), dim=1))
        us = bench(partial(launch, x, out, BLOCK=cols))
        t_us = bench(partial(torch.softmax, x, dim=1))
        print(
            row(
                f"softmax {str(dt)[6:]}",
                f"{rows}x{cols}",
                2 * x.numel() * x.element_size(),
                us,
                peak,
                err,
                t_us,
            )
        )
    for rows, cols, dt in (
        (4096, 4096, torch.float32),
        (16384, 4096, torch.float16),
        (65536, 1024, torch.float16),
    ):
        x = torch.randn(rows, cols, device="cuda").to(dt)
        w = torch.randn(cols, device="cuda").to(dt)
        out = torch.full_like(x, float("nan"))
        launch = rmsnorm[rows,]
        launch(x, w, out, 1e-6, BLOCK=cols)
        xd = x.double()
        ref = xd * torch.rsqrt(xd.pow(2).mean(1, keepdim=True) + 1e-6) * w.double()
        err = rel_err(out, ref)
        us = bench(partial(launch, x, w, out, 1e-6, BLOCK=cols))
        t_us = bench(partial(torch.nn.functional.rms_norm, x, (cols,), w, 1e-6))
        print(
            row(
                f"rmsnorm {str(dt)[6:]}",
                f"{rows}x{cols}",
                2 * x.numel() * x.element_size(),
                us,
                peak,
                err,
                t_us,
            )
        )
    overheads()


def overheads() -> None:
    n = 1024
    x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
    out = torch.empty_like(x)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TILEVM_CACHE_DIR"] = cache
        start = time.perf_counter()
        vector_add.compile("cuda", x.cpu(), y.cpu(), out.cpu(), BLOCK=256)
        first = time.perf_counter() - start
        vector_add[4,](x, y, out, BLOCK=256)  # also fills the disk cache
        torch.cuda.synchronize()
        script = (
            "import time, torch, tilevm as tv; import benchmarks.memory_bound as m\n"
            "x = torch.randn(1024, device='cuda'); out = torch.empty_like(x)\n"
            "torch.cuda.synchronize(); s = time.perf_counter()\n"
            "m.vector_add[4,](x, x, out, BLOCK=256); torch.cuda.synchronize()\n"
            "print(time.perf_counter() - s)"
        )
        env = dict(os.environ, PYTHONPATH=os.getcwd())
        loaded = statistics.median(  # a fresh process each time, the cache warm on disk
            float(subprocess.check_output([sys.executable, "-c", script], env=env))
            for _ in range(5)
        )
    launch = vector_add[4,]
    n = x.numel()
    triton_add = triton_vector_add()
    contenders = {
        "tilevm": lambda: launch(x, y, out, BLOCK=256),
        "torch": lambda: torch.add(x, y, out=out),
    }
    if triton_add is not None:
        contenders["triton"] = lambda: triton_add[(4,)](x, y, out, n, BLOCK=256)
    for name, call in contenders.items():  # warm up, and check each computes x + y
        out.fill_(float("nan"))
        for _ in range(10):
            call()
        torch.cuda.synchronize()
        torch.testing.assert_close(out, x + y)
    # the host's speed drifts between and within runs: interleave batches of back-to-back
    # launches and keep each contender's median batch
    batches: dict[str, list[float]] = {name: [] for name in contenders}
    count = 1000
    for _ in range(9):
        for name, call in contenders.items():
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(count):
                call()
            batches[name].append((time.perf_counter() - start) / count * 1e6)
            torch.cuda.synchronize()
    host_us, torch_us = statistics.median(batches["tilevm"]), statistics.median(batches["torch"])
    triton_us = statistics.median(batches["triton"]) if "triton" in batches else None
    print(f"\nfirst compile (lower + render + NVRTC + load), new kernel: {first * 1e3:.0f} ms")
    print(f"cached kernel, first launch in a new process: {loaded * 1e3:.0f} ms")
    print(f"host launch overhead (back-to-back launches): {host_us:.1f} us")
    print(f"same for torch.add on this machine, for scale: {torch_us:.1f} us")
    if triton_us is not None:
        print(f"same for a Triton vector add (its compiled launcher): {triton_us:.1f} us")


def triton_vector_add():
    """The same vector add written in Triton (its compiled launcher), where it is installed."""
    try:
        import triton
        import triton.language as tl
    except ImportError:
        return None

    @triton.jit
    def add(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask),
                 mask=mask)  # fmt: skip

    return add


if __name__ == "__main__":
    if sys.argv[1:] == ["--overheads"]:  # compile, cached-load and launch overheads only
        overheads()
    else:
        main()
