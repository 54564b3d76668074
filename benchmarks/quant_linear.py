"""Weight-only quantized linear: ``tilevm.stdlib.quant.linear`` against cuBLAS f16 and torch's
int4 kernel, with the memory floor, side by side in one run.

    python3 benchmarks/quant_linear.py                (the full table; needs a CUDA GPU)
    python3 benchmarks/quant_linear.py --quick        (N = K = 8192, fewer M)
    python3 benchmarks/quant_linear.py --plot speedup.png
    python3 benchmarks/quant_linear.py --replot run.json --plot speedup.png   (no GPU needed)

For each weight shape ``(N, K)``, activation rows ``M`` and weight dtype: random codes, scales
(and, for u4, zero points) are packed on the GPU; the result is first checked against a float64
product with the dequantized weights (output poisoned with NaN); then tilevm, cuBLAS f16
(``torch.matmul`` with the dequantized f16 weights) and torch's int4 kernel
(``_weight_int4pack_mm``, bf16, group 128, its own packing) are timed on the GPU: 8 calls, each
on its own copy of the weights (so they come from device memory, not L2), captured in a CUDA
graph and replayed (median of ``triton.testing.do_bench``, L2 flushed before each replay), which
leaves out the host's launch overhead as serving's decode graphs do; ``linear() call us`` is one
plain call from Python (host overhead included). The floor is the bytes that must move (packed
weights, scales, zero points, activations, output) over the measured device-to-device copy
bandwidth.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from itertools import count

import numpy as np
import torch

import tilevm as tv
from tilevm.stdlib.matmul import matmul
from tilevm.stdlib.quant import QuantizedWeight, dispatch, linear
from tilevm.stdlib.quant.format import dequantized_values

SHAPES = [(8192, 8192), (6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336)]
MS = [1, 4, 16, 64, 256, 4096]
DTYPES = ["u4", "i4", "u2", "u3", "u5", "u6", "u7", "u8", "f4e2m1fn", "f6e3m2fn", "f8e4m3fn"]
GROUP = 128
COPIES = 8


def bench(fn) -> float:
    """Median microseconds."""
    from triton.testing import do_bench  # here: --replot runs where Triton is not installed

    return do_bench(fn, warmup=10, rep=60, return_mode="median") * 1e3


def graph_bench(fn, items) -> float:
    """Median microseconds per call of ``fn(item)``, one call per item captured in a CUDA graph
    and the graph replayed (L2 flushed before each replay): the GPU's time without the host's
    launch overhead, as serving runs decode steps."""
    fn(items[0])  # compiled, tuned and loaded before capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=torch.cuda.Stream()):
        for item in items:
            fn(item)
    return bench(graph.replay) / len(items)


def copy_bandwidth() -> float:
    """Bytes per second of a 1 GiB device-to-device copy, read plus written."""
    src = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    us = bench(lambda: dst.copy_(src))
    return 2 * src.numel() / (us * 1e-6)


def random_weight(n: int, k: int, name: str, gen: torch.Generator) -> QuantizedWeight:
    """Random codes (never a NaN code), scales around 1/sqrt(K), zero points for u4."""
    dt = tv.dtype(name)
    values = torch.from_numpy(dt.decode(np.arange(1 << dt.bits).astype(dt.storage)))
    ok = torch.nonzero(torch.isfinite(values.float())).flatten().cuda()
    codes = ok[torch.randint(0, len(ok), (n, k), device="cuda", generator=gen)]
    groups = k // GROUP
    scales = (torch.rand(n, groups, device="cuda", generator=gen) + 0.5) / k**0.5
    zeros = None
    if name == "u4":
        zeros = torch.randint(0, 16, (n, groups), device="cuda", generator=gen).half()
    elif dt.kind == "uint":  # no zero points: codes hold q + 2**(b-1)
        pass
    if dt.is_float:
        scales = scales / float(dt.max)
    return QuantizedWeight.from_codes(codes, dt, scales.half(), zeros, GROUP)


def copies(qw: QuantizedWeight) -> list[QuantizedWeight]:
    out = [qw]
    for _ in range(COPIES - 1):
        out.append(QuantizedWeight(qw.packed.clone(), qw.scales.clone(),
                                   None if qw.zeros is None else qw.zeros.clone(), qw.dtype,
                                   qw.group_size, qw.shape))  # fmt: skip
    return out


def rotating(fn, items):
    order = count()
    return lambda: fn(items[next(order) % len(items)])


def torch_int4(x: torch.Tensor, w16: torch.Tensor) -> tuple[float | None, str]:
    """torch's int4 weight-only kernel (bf16 activations, group 128) on its own packing."""
    n, k = w16.shape
    try:
        scale = w16.float().reshape(n, k // GROUP, GROUP).abs().amax(-1) / 7 + 1e-6
        q = (w16.float().reshape(n, k // GROUP, GROUP) / scale[..., None]).round().clamp(-8, 7)
        q = (q + 8).to(torch.int32).reshape(n, k)
        packed_u8 = (q[:, 1::2] << 4 | q[:, ::2]).to(torch.uint8)
        tiles = [torch.ops.aten._convert_weight_to_int4pack(packed_u8, 8) for _ in range(COPIES)]
        sz = torch.stack([scale, torch.full_like(scale, 8.0) * scale], -1)
        sz = sz.permute(1, 0, 2).contiguous().to(torch.bfloat16)
        xb = x.to(torch.bfloat16)
        mm = torch.ops.aten._weight_int4pack_mm
        mm(xb, tiles[0], GROUP, sz)
        return graph_bench(lambda t: mm(xb, t, GROUP, sz), tiles), ""
    except Exception as exc:  # an API change between torch versions: report, keep going
        return None, f"{type(exc).__name__}: {exc}"[:120]


def check(y: torch.Tensor, ref: torch.Tensor) -> float:
    assert not torch.isnan(y).any(), "unwritten output (NaN poison survived)"
    return float((y.double() - ref).norm() / ref.norm())


def run(
    n: int, k: int, ms: list[int], dtypes: list[str], bandwidth: float, rows: list[dict], saved
) -> None:
    """Measures every (M, weight type) of one shape, appending to ``rows`` and calling ``saved``
    after each."""
    gen = torch.Generator(device="cuda").manual_seed(n * 31 + k)
    weights = {name: random_weight(n, k, name, gen) for name in dtypes}
    w64s = {name: dequantized_values(qw) for name, qw in weights.items()}
    w16s = {name: w.half() for name, w in w64s.items()}
    for m in ms:
        x = torch.randn(m, k, device="cuda", dtype=torch.float16, generator=gen)
        f16 = [w16s[dtypes[0]].clone() for _ in range(COPIES)]
        cublas = graph_bench(lambda w, x=x: torch.matmul(x, w.T), f16)
        int4, why = torch_int4(x, w16s[dtypes[0]])
        # tilevm's own f16 GEMM on the same shape (the prefill target's yardstick)
        own = graph_bench(lambda w, x=x: matmul(x, w.T), f16) if m >= 64 else None
        del f16
        for name in dtypes:
            qw = weights[name]
            y = torch.full((m, n), float("nan"), device="cuda", dtype=torch.float16)
            try:
                linear(x, qw, out=y)
                torch.cuda.synchronize()
                err = check(y, x.double() @ w64s[name].T)
                assert err < 5e-3, f"relative error {err:.2e}"
            except Exception as exc:  # report and go on: one failure must not hide the rest
                print(f"| {n}x{k} | {m} | {name} | FAILED: {type(exc).__name__}: {exc} |"[:400])
                continue
            sets = copies(qw)
            us = graph_bench(lambda q, x=x, y=y: linear(x, q, out=y), sets)
            call = bench(rotating(lambda q, x=x, y=y: linear(x, q, out=y), sets))
            moved = qw.nbytes + 2 * m * (k + n)
            rows.append({"N": n, "K": k, "M": m, "dtype": name, "us": us,
                         "floor_us": moved / bandwidth * 1e6, "cublas_us": cublas,
                         "int4_us": int4, "int4_note": why, "gemm_us": own, "rel_err": err,
                         "call_us": call,
                         "tflops": 2 * m * n * k / us / 1e6})  # fmt: skip
            print(line(rows[-1]), flush=True)
            saved()
            del sets


HEAD = ("| N x K | M | weights | tilevm us | floor us | of floor | cuBLAS f16 us | vs f16 | "
        "torch int4 us | vs int4 | tilevm f16 us | vs tilevm f16 | TFLOP/s | rel err | "
        "linear() call us |")  # fmt: skip
COLUMNS = HEAD.count("|") - 1


def line(r: dict) -> str:
    int4 = f"{r['int4_us']:.1f}" if r["int4_us"] else "n/a"
    vs4 = f"{r['int4_us'] / r['us']:.2f}x" if r["int4_us"] else ""
    own = f"{r['gemm_us']:.1f}" if r.get("gemm_us") else ""
    vs_own = f"{r['gemm_us'] / r['us']:.2f}x" if r.get("gemm_us") else ""
    return (f"| {r['N']}x{r['K']} | {r['M']} | {r['dtype']} | {r['us']:.1f} | "
            f"{r['floor_us']:.1f} | {r['floor_us'] / r['us']:.0%} | {r['cublas_us']:.1f} | "
            f"{r['cublas_us'] / r['us']:.2f}x | {int4} | {vs4} | {own} | {vs_own} | "
            f"{r['tflops']:.0f} | "
            f"{r['rel_err']:.1e} | {r['call_us']:.1f} |")  # fmt: skip


def plot(rows: list[dict], path: str, device: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, k = rows[0]["N"], rows[0]["K"]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.set_prop_cycle(color=plt.cm.tab20.colors)  # more widths than the default ten colors
    for name in dict.fromkeys(r["dtype"] for r in rows):
        pts = [(r["M"], r["cublas_us"] / r["us"]) for r in rows
               if r["dtype"] == name and (r["N"], r["K"]) == (n, k)]  # fmt: skip
        ax.plot(*zip(*pts), marker="o", label=name)
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("M (activation rows)")
    ax.set_ylabel("speedup over cuBLAS f16")
    ax.set_title(f"tilevm quantized linear, N = {n}, K = {k}, {device}")
    ax.legend(ncol=2, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--shapes", default="", help="e.g. 8192x8192,4096x14336 (N x K)")
    parser.add_argument("--ms", default="")
    parser.add_argument("--dtypes", default="")
    parser.add_argument("--plot", default="")
    parser.add_argument("--json", default="")
    parser.add_argument("--replot", default="", help="only plot --plot from this --json file")
    args = parser.parse_args()
    if args.replot:
        with open(args.replot) as f:
            saved = json.load(f)
        plot(saved["rows"], args.plot, saved["device"])
        return 0
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 1
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",") if s]
    shapes = shapes or (SHAPES[:1] if args.quick else SHAPES)
    ms = [int(v) for v in args.ms.split(",") if v] or ([1, 16, 4096] if args.quick else MS)
    dtypes = [d for d in args.dtypes.split(",") if d] or DTYPES
    bandwidth = copy_bandwidth()
    print(f"device: {torch.cuda.get_device_name()}, copy bandwidth {bandwidth / 1e9:.0f} GB/s")
    print(HEAD + "\n|" + "---|" * COLUMNS, flush=True)
    rows = []

    def save() -> None:  # after every row: a run cut short keeps what it measured
        if not args.json:
            return
        chosen = {f"{tuned.__name__} {key}": str(config) for tuned in
                  (dispatch.decode_tuned, dispatch.prefill_tuned)
                  for (_, key), config in tuned._results.items()}  # fmt: skip
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "bandwidth": bandwidth,
                       "rows": rows, "configs": chosen}, f, indent=1)  # fmt: skip

    for n, k in shapes:
        run(n, k, ms, dtypes, bandwidth, rows, save)
    print("\n" + HEAD + "\n|" + "---|" * COLUMNS + "\n" + "\n".join(line(r) for r in rows))
    if args.plot:
        plot(rows, args.plot, torch.cuda.get_device_name())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
