"""The CPU backend against numpy on this host, side by side in one run: elementwise kernels,
row reductions and softmax, and a tiled f32 matmul against numpy's BLAS.

    python3 benchmarks/cpu.py                 (full: about 1.5 minutes on an idle 2-core host)
    python3 benchmarks/cpu.py --quick         (smaller sizes, fewer configs)
    python3 benchmarks/cpu.py --sizes 1e6,1e7 --threads 2 --only elementwise

Every kernel is checked against numpy once (outputs poisoned with NaN first) before it is
timed. Times are medians of ``time.perf_counter`` around whole launches (host launch overhead
included, as a user sees it), after a warm-up launch that compiles; tilevm and numpy runs
alternate so that both see the same machine load. Each kernel tries a few block configs (few
runs each); the best is then timed again with the full count of runs and reported. Ratio is
tilevm time / numpy time: below 1 means tilevm is faster. GB/s counts the bytes that must move
(inputs read once, outputs written once); numpy's temporaries move more than that.

numpy's elementwise ufuncs run on one core; its matmul runs on BLAS's threads. ``--threads``
sets ``TILEVM_CPU_THREADS`` (the CPU backend's worker count; default: the usable cores);
``--threads 1`` compares one core with one core for the elementwise kernels and reductions.
On a small host, other busy processes change every figure: the load average is printed before
and after the run.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable

import numpy as np

import tilevm as tv

# ----- kernels -----------------------------------------------------------------------------


@tv.kernel
def vector_add(x: tv.Tensor[tv.f32], y: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32],
               BLOCK: tv.constexpr):  # fmt: skip
    start = tv.block_id(0) * BLOCK
    tv.store(out, tv.load(x, [start], [BLOCK]) + tv.load(y, [start], [BLOCK]), [start])


@tv.kernel
def axpy(alpha: tv.f32, x: tv.Tensor[tv.f32], y: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32],
         BLOCK: tv.constexpr):  # fmt: skip
    start = tv.block_id(0) * BLOCK
    tv.store(out, alpha * tv.load(x, [start], [BLOCK]) + tv.load(y, [start], [BLOCK]), [start])


@tv.kernel
def exp_mul_add(x: tv.Tensor[tv.f32], y: tv.Tensor[tv.f32], z: tv.Tensor[tv.f32],
                out: tv.Tensor[tv.f32], BLOCK: tv.constexpr):  # fmt: skip
    start = tv.block_id(0) * BLOCK
    e = tv.exp(tv.load(x, [start], [BLOCK]))
    tv.store(out, e * tv.load(y, [start], [BLOCK]) + tv.load(z, [start], [BLOCK]), [start])


@tv.kernel
def row_sum(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], ROWS: tv.constexpr,
            COLS: tv.constexpr):  # fmt: skip
    """ROWS rows per block; each row is read in COLS-wide chunks summed elementwise, then one
    reduction across the chunk at the end."""
    r0 = tv.block_id(0) * ROWS
    acc = tv.zeros([ROWS, COLS], tv.f32)
    for c in range(0, x.shape[1], COLS):
        acc = acc + tv.load(x, [r0, c], [ROWS, COLS])
    tv.store(out, tv.sum(acc, axis=1), [r0])


@tv.kernel
def row_max(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], ROWS: tv.constexpr,
            COLS: tv.constexpr):  # fmt: skip
    r0 = tv.block_id(0) * ROWS
    acc = tv.full([ROWS, COLS], float("-inf"), tv.f32)
    for c in range(0, x.shape[1], COLS):
        acc = tv.maximum(acc, tv.load(x, [r0, c], [ROWS, COLS], other=float("-inf")))
    tv.store(out, tv.max(acc, axis=1), [r0])


@tv.kernel
def softmax(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], ROWS: tv.constexpr,
            BLOCK: tv.constexpr):  # fmt: skip
    """ROWS whole rows per block (BLOCK >= the row length), as in examples/softmax.py."""
    r0 = tv.block_id(0) * ROWS
    v = tv.load(x, [r0, 0], [ROWS, BLOCK], other=float("-inf"))
    e = tv.exp(v - tv.max(v, axis=1, keepdims=True))
    tv.store(out, e / tv.sum(e, axis=1, keepdims=True), [r0, 0])


@tv.kernel
def matmul(a: tv.Tensor[tv.f32], b: tv.Tensor[tv.f32], c: tv.Tensor[tv.f32], BM: tv.constexpr,
           BN: tv.constexpr, BK: tv.constexpr):  # fmt: skip
    """examples/matmul.py in f32: BK-wide slices of A and B staged in shared memory."""
    m0 = tv.block_id(0) * BM
    n0 = tv.block_id(1) * BN
    a_tile = tv.shared([BM, BK], tv.f32)
    b_tile = tv.shared([BK, BN], tv.f32)
    acc = tv.zeros([BM, BN], tv.f32)
    for k in range(0, a.shape[1], BK):
        tv.store_shared(a_tile, tv.load(a, [m0, k], [BM, BK]))
        tv.store_shared(b_tile, tv.load(b, [k, n0], [BK, BN]))
        tv.sync()
        acc = tv.dot(tv.load_shared(a_tile), tv.load_shared(b_tile), acc)
        tv.sync()
    tv.store(c, acc, [m0, n0])


@tv.kernel
def matmul_direct(a: tv.Tensor[tv.f32], b: tv.Tensor[tv.f32], c: tv.Tensor[tv.f32],
                  BM: tv.constexpr, BN: tv.constexpr, BK: tv.constexpr):  # fmt: skip
    """The same tiles loaded straight from global memory into the dot (no shared staging)."""
    m0 = tv.block_id(0) * BM
    n0 = tv.block_id(1) * BN
    acc = tv.zeros([BM, BN], tv.f32)
    for k in range(0, a.shape[1], BK):
        acc = tv.dot(tv.load(a, [m0, k], [BM, BK]), tv.load(b, [k, n0], [BK, BN]), acc)
    tv.store(c, acc, [m0, n0])


# ----- timing ------------------------------------------------------------------------------


class Timer:
    """Median seconds of runs of several callables, each warmed up once. Runs alternate between
    the callables (both see the same machine load) unless ``grouped``: then each callable's runs
    come together, so that OpenBLAS threads, which spin for about 0.1 s after each call, do not
    take cores from the CPU backend's workers (on 2 cores that slowed its matmul 1.5-2x)."""

    def __init__(self, runs: int, budget_s: float) -> None:
        self.runs = runs
        self.budget_s = budget_s  # stop early once this much time was spent (min 3 runs)

    def __call__(self, *fns: Callable[[], object], grouped: bool = False) -> list[float]:
        if grouped:
            results = []
            for fn in fns:
                results += self(fn)
                time.sleep(0.3)  # as above: idle BLAS threads before the next callable
            return results
        for fn in fns:
            fn()
        times: list[list[float]] = [[] for _ in fns]
        start = time.perf_counter()
        for i in range(self.runs):
            for fn, ts in zip(fns, times):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
            if i >= 2 and time.perf_counter() - start > self.budget_s * len(fns):
                break
        return [statistics.median(ts) for ts in times]


def poison(a: np.ndarray) -> None:
    a[...] = np.nan


def check(name: str, out: np.ndarray, ref: np.ndarray, rtol: float, atol: float = 0.0) -> None:
    assert not np.isnan(out).any(), f"{name}: output not written (NaN poison survived)"
    np.testing.assert_allclose(out, ref, rtol=rtol, atol=atol, err_msg=name)


def fmt_time(s: float) -> str:
    return f"{s * 1e3:.3f}" if s < 0.01 else f"{s * 1e3:.1f}"


# ----- host info ---------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_info() -> str:
    """numpy's BLAS (build config) and, for OpenBLAS, its core type and thread count."""
    text = "unknown"
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        text = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        pass
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
        for path in sorted(p for p in paths if p.startswith("/")):
            lib = ctypes.CDLL(path)
            for prefix in ("scipy_openblas_", "openblas_"):
                for suffix in ("64_", ""):
                    try:
                        threads = getattr(lib, f"{prefix}get_num_threads{suffix}")
                        core = getattr(lib, f"{prefix}get_corename{suffix}")
                    except AttributeError:
                        continue
                    core.restype = ctypes.c_char_p
                    return f"{text} ({core().decode()} kernels, {threads()} threads)"
    except Exception:
        pass
    return text


def host_info(workers: int) -> list[str]:
    import llvmlite
    import llvmlite.binding as llvm

    from tilevm.backends.cpu import jit

    jit.target_machine()  # initializes LLVM's native target
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 1
    llvm_version = ".".join(map(str, llvm.llvm_version_info))
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
            cwd=os.path.dirname(os.path.abspath(__file__)), check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return [
        f"host: {cpu_model()} (LLVM host cpu {llvm.get_host_cpu_name()}), "
        f"{usable} usable cores, tilevm CPU workers: {workers}",
        f"numpy {np.__version__}, BLAS: {blas_info()}",
        f"llvmlite {llvmlite.__version__} (LLVM {llvm_version}), "
        f"Python {platform.python_version()}, tilevm commit {commit}",
        f"date: {datetime.date.today().isoformat()}, load average before the run: "
        + " ".join(f"{v:.2f}" for v in os.getloadavg()),
    ]


# ----- sections ----------------------------------------------------------------------------

ELEMENTWISE_CONFIGS = [(1024, 4), (1024, 8), (2048, 4), (2048, 8), (4096, 4), (4096, 8),
                       (4096, 16)]  # fmt: skip
QUICK_ELEMENTWISE_CONFIGS = [(1024, 4), (1024, 8), (4096, 8), (4096, 16)]


def best_config(timer: Timer, configs: list, make: Callable[[object], Callable[[], object]]):
    """(config, seconds) of the fastest config, each timed with few runs."""
    results = []
    for cfg in configs:
        (seconds,) = timer(make(cfg))
        results.append((seconds, cfg))
    seconds, cfg = min(results, key=lambda r: r[0])
    return cfg, seconds, results


def elementwise(args, sweep: Timer, timer: Timer, verdicts: list[str]) -> None:
    configs = QUICK_ELEMENTWISE_CONFIGS if args.quick else ELEMENTWISE_CONFIGS
    rng = np.random.default_rng(0)
    for n in args.sizes:
        x, y, z = (rng.standard_normal(n, dtype=np.float32) for _ in range(3))
        elementwise_size(n, x, y, z, configs, sweep, timer, verdicts)


def elementwise_size(n, x, y, z, configs, sweep: Timer, timer: Timer, verdicts) -> None:
    out = np.empty(n, np.float32)
    alpha = 1.75

    def np_axpy_out() -> None:
        np.multiply(x, alpha, out=out)
        np.add(out, y, out=out)

    def np_chain_out() -> None:
        np.exp(x, out=out)
        np.multiply(out, y, out=out)
        np.add(out, z, out=out)

    cases = [
        ("add f32", vector_add, (x, y, out), 3,
         lambda: x + y, lambda: np.add(x, y, out=out), x + y, 0.0),
        ("axpy f32 (alpha*x+y)", axpy, (alpha, x, y, out), 3,
         lambda: alpha * x + y, np_axpy_out, np.float32(alpha) * x + y, 1e-6),
        ("exp(x)*y+z f32", exp_mul_add, (x, y, z, out), 4,
         lambda: np.exp(x) * y + z, np_chain_out, np.exp(x) * y + z, 1e-5),
    ]  # fmt: skip
    for name, kern, kargs, arrays, np_expr, np_out, ref, rtol in cases:

        def make(cfg, kern=kern, kargs=kargs):
            block, warps = cfg
            launch = kern[tv.cdiv(n, block),]
            return lambda: launch(*kargs, BLOCK=block, warps=warps, device="cpu")

        for cfg in configs:  # every config is checked, not only the winner
            poison(out)
            make(cfg)()
            check(f"{name} n={n} {cfg}", out, ref, rtol, atol=1e-6)
        (block, warps), _, _ = best_config(sweep, configs, make)
        t_tv, t_np, t_out = timer(make((block, warps)), np_expr, np_out)
        nbytes = arrays * 4 * n
        best_np = min(t_np, t_out)
        ok = t_tv / best_np <= 1.5
        print(
            f"| {name} | {n:.0e} | BLOCK={block} w{warps} | {fmt_time(t_tv)} | "
            f"{nbytes / t_tv / 1e9:.1f} | {fmt_time(t_np)} | {fmt_time(t_out)} | "
            f"{t_tv / t_np:.2f} | {t_tv / t_out:.2f} | {'yes' if ok else 'no'} |",
            flush=True,
        )
        verdicts.append(f"{name} {n:.0e}: {t_tv / best_np:.2f}x {'met' if ok else 'NOT met'}")


def reductions(args, sweep: Timer, timer: Timer) -> None:
    shapes = [(1024, 1024), (4096, 1024)] if args.quick else [(4096, 4096), (16384, 1024)]
    rng = np.random.default_rng(1)
    for m, n in shapes:
        reductions_shape(rng.standard_normal((m, n), dtype=np.float32), sweep, timer)


def reductions_shape(x: np.ndarray, sweep: Timer, timer: Timer) -> None:
    m, n = x.shape
    vec = np.empty(m, np.float32)
    full = np.empty_like(x)
    chunk_configs = [(r, c, w) for r in (1, 4) for c in (256, 1024) for w in (1, 4)
                     if c <= n and r * c >= w * 32 * 4]  # fmt: skip
    softmax_configs = [(r, w) for r in (1, 2, 4) for w in (1, 4, 8) if r * n >= w * 32 * 4]

    def np_softmax() -> np.ndarray:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        e /= e.sum(axis=1, keepdims=True)
        return e

    ref_softmax = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    ref_softmax /= ref_softmax.sum(axis=1, keepdims=True)
    cases = [
        ("row sum", row_sum, vec, chunk_configs, lambda: x.sum(axis=1),
         x.astype(np.float64).sum(axis=1), 1e-4, 2e-4 * np.sqrt(n), 4 * m * n + 4 * m),
        ("row max", row_max, vec, chunk_configs, lambda: x.max(axis=1),
         x.max(axis=1), 0.0, 0.0, 4 * m * n + 4 * m),
        ("softmax", softmax, full, softmax_configs, np_softmax,
         ref_softmax, 1e-5, 1e-7, 8 * m * n),
    ]  # fmt: skip
    for name, kern, out, configs, np_fn, ref, rtol, atol, nbytes in cases:

        def make(cfg, kern=kern, out=out):
            if kern is softmax:
                rows_per, warps = cfg
                extra = {"ROWS": rows_per, "BLOCK": n}
            else:
                rows_per, cols, warps = cfg
                extra = {"ROWS": rows_per, "COLS": cols}
            launch = kern[tv.cdiv(m, rows_per),]
            return lambda: launch(x, out, warps=warps, device="cpu", **extra)

        for cfg in configs:
            poison(out)
            make(cfg)()
            check(f"{name} {m}x{n} {cfg}", out, ref, rtol, atol)
        cfg, _, _ = best_config(sweep, configs, make)
        t_tv, t_np = timer(make(cfg), np_fn)
        label = (f"ROWS={cfg[0]} w{cfg[1]}" if kern is softmax
                 else f"ROWS={cfg[0]} COLS={cfg[1]} w{cfg[2]}")  # fmt: skip
        print(
            f"| {name} f32 | {m}x{n} | {label} | {fmt_time(t_tv)} | "
            f"{nbytes / t_tv / 1e9:.1f} | {fmt_time(t_np)} | {t_tv / t_np:.2f} |",
            flush=True,
        )


MATMUL_CONFIGS = [(matmul, 32, 32, 16, 4), (matmul, 64, 64, 16, 4), (matmul, 32, 64, 32, 4),
                  (matmul, 64, 64, 16, 8), (matmul, 128, 128, 16, 8),
                  (matmul_direct, 32, 64, 32, 4)]  # fmt: skip


def matmuls(args, sweep: Timer, timer: Timer, notes: list[str]) -> None:
    sizes = [256, 512] if args.quick else [512, 1024, 2048]
    configs = MATMUL_CONFIGS[:3] if args.quick else MATMUL_CONFIGS
    rng = np.random.default_rng(2)
    chosen = None
    for size in sizes:
        a = rng.standard_normal((size, size), dtype=np.float32)
        b = rng.standard_normal((size, size), dtype=np.float32)
        # the largest size reuses the best config of the one before (one config there)
        candidates = [chosen] if size >= 2048 and chosen is not None else configs
        chosen = matmul_size(a, b, candidates, sweep, timer, notes)


def matmul_size(a: np.ndarray, b: np.ndarray, configs, sweep: Timer, timer: Timer, notes):
    size = a.shape[0]
    c = np.empty((size, size), np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    time.sleep(0.3)  # BLAS threads spin for a while after a call; let them go idle first
    flops = 2 * size**3

    def make(cfg):
        kern, bm, bn, bk, warps = cfg
        launch = kern[tv.cdiv(size, bm), tv.cdiv(size, bn)]
        return lambda: launch(a, b, c, BM=bm, BN=bn, BK=bk, warps=warps, device="cpu")

    for cfg in configs:
        poison(c)
        make(cfg)()
        check(f"matmul {size} {cfg[1:]}", c, ref, rtol=1e-4, atol=1e-4 * np.sqrt(size))
    cfg, _, results = best_config(sweep, configs, make)
    if len(results) > 1:
        tried = ", ".join(f"{label(r[1])} {flops / r[0] / 1e9:.1f}" for r in results)
        notes.append(f"matmul {size}^3 configs (GFLOP/s): {tried}")
    t_tv, t_np = timer(make(cfg), lambda: a @ b, grouped=True)
    print(
        f"| matmul f32 | {size}^3 | {label(cfg)} | {fmt_time(t_tv)} | "
        f"{flops / t_tv / 1e9:.1f} | {fmt_time(t_np)} | {flops / t_np / 1e9:.1f} | "
        f"{t_tv / t_np:.2f} |",
        flush=True,
    )
    return cfg


def label(cfg) -> str:
    kern, bm, bn, bk, warps = cfg
    return f"{bm}x{bn}x{bk} w{warps}" + (" direct" if kern is matmul_direct else "")


def launch_overhead(timer: Timer) -> str:
    x = np.ones(1024, np.float32)
    out = np.empty_like(x)
    one = vector_add[1,]
    grid = vector_add[8,]
    t1, t8, t_np = timer(
        lambda: one(x, x, out, BLOCK=1024, warps=4, device="cpu"),
        lambda: grid(x, x, out, BLOCK=128, warps=1, device="cpu"),
        lambda: np.add(x, x, out=out),
    )
    return (
        f"launch overhead: vector add of 1024 elements, 1 block: {t1 * 1e6:.0f} us; "
        f"8 blocks: {t8 * 1e6:.0f} us; np.add(out=) of the same: {t_np * 1e6:.1f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer configs")
    parser.add_argument("--sizes", help="elementwise sizes, comma-separated (e.g. 1e5,1e6)")
    parser.add_argument("--threads", type=int, help="TILEVM_CPU_THREADS for this run")
    parser.add_argument("--runs", type=int, help="timed runs per measurement (median)")
    parser.add_argument("--only", choices=["elementwise", "reductions", "matmul"],
                        action="append", help="run only these sections (repeatable)")  # fmt: skip
    args = parser.parse_args()
    if args.threads:
        os.environ["TILEVM_CPU_THREADS"] = str(args.threads)
    default_sizes = "1e5,1e6,1e7" if args.quick else "1e5,1e6,1e7,3e7"
    args.sizes = [int(float(s)) for s in (args.sizes or default_sizes).split(",")]
    runs = args.runs or (10 if args.quick else 20)
    timer = Timer(runs, budget_s=3.0 if args.quick else 6.0)
    sweep = Timer(max(3, runs // 4), budget_s=0.5 if args.quick else 1.0)
    sections = args.only or ["elementwise", "reductions", "matmul"]

    from tilevm.backends.cpu import runner

    started = time.perf_counter()
    print("\n".join(host_info(runner.workers())))
    print(launch_overhead(timer))
    if "elementwise" in sections:
        verdicts: list[str] = []
        print("\n| kernel | elements | best config | tilevm ms | tilevm GB/s | numpy ms | "
              "numpy out= ms | ratio | ratio vs out= | within 1.5x |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|")
        elementwise(args, sweep, timer, verdicts)
        print("\ngoal (elementwise within 1.5x of numpy's faster form):")
        print("\n".join("  " + v for v in verdicts))
    if "reductions" in sections:
        print("\n| kernel | shape | best config | tilevm ms | tilevm GB/s | numpy ms | ratio |")
        print("|---|---|---|---|---|---|---|")
        reductions(args, sweep, timer)
    if "matmul" in sections:
        notes: list[str] = []
        print("\n| kernel | shape | best config | tilevm ms | tilevm GFLOP/s | numpy ms | "
              "numpy GFLOP/s | ratio |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        matmuls(args, sweep, timer, notes)
        print("\n".join(notes))
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\ntotal {time.perf_counter() - started:.0f} s, load average after: {load}")


if __name__ == "__main__":
    main()
