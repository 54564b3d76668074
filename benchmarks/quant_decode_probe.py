"""Where the quantized linear's time goes: the same kernel timed three ways, and a sweep of
its configs, so launch overhead and kernel time are told apart.

    python3 benchmarks/quant_decode_probe.py [--dtypes u4,i4] [--n 8192 --k 8192] [--m 1]

Up to 16 rows the decode kernel's configs are swept (row tiles, warps, the depth of the words'
ring in shared memory, 0 for none); above, the prefill kernel's (tile, stages, warps) at each
split of K, beside tilevm's f16 GEMM.

* ``linear``: the public call (Python, autotuned dispatch, launch), timed as the benchmark does;
* ``launch``: the kernel launched directly with the tuned config (the repeat-launch path);
* ``graph``: ten launches captured in a CUDA graph and replayed: the kernel alone.
Each rotates among 8 copies of the weights; ``do_bench`` flushes L2 before each timing.
"""

from __future__ import annotations

import argparse
import sys

import torch
from triton.testing import do_bench

import tilevm as tv
from tilevm.stdlib.quant import dispatch, linear, tuning

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from quant_linear import copies, random_weight, rotating  # noqa: E402


def us(fn) -> float:
    return do_bench(fn, warmup=10, rep=60, return_mode="median") * 1e3


def graph_us(launch, sets, per_graph: int = 10) -> float:
    """Microseconds per launch, from replays of ``per_graph`` launches over rotating weights."""
    stream = torch.cuda.Stream()
    launch(sets[0])  # compiled and loaded before capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        for i in range(per_graph):
            launch(sets[i % len(sets)])
    return us(graph.replay) / per_graph


def direct(x, y, config: tv.Config):
    """The decode kernel with ``config``, past the autotuner."""
    return lambda qw: dispatch.decode(x, qw, None, y, config=config)


def direct_prefill(x, y, config: tv.Config, split: int):
    return lambda qw: dispatch.prefill(x, qw, None, y, config=config, split=split)


def entry(name: str, launch, sets) -> str:
    """``name: microseconds`` of ``launch`` in a CUDA graph, or the error code it failed with."""
    try:
        return f"{name}: {graph_us(launch, sets):.1f}"
    except tv.TilevmError as exc:
        return f"{name}: {exc.code}"


def decode_sweep(x, y, sets, m: int) -> None:
    row = []
    for rn, warps, stages in ((1, 8, 0), (1, 16, 0), (2, 8, 0), (2, 16, 0), (4, 8, 0),
                              (1, 8, 4), (2, 8, 3), (2, 8, 4), (2, 4, 4), (2, 4, 6),
                              (4, 4, 3)):  # fmt: skip
        cfg = tv.Config(RN=rn, BM=8 if m <= 8 else 16, STAGES=stages, warps=warps)
        row.append(entry(f"RN={rn} w{warps} ring{stages}", direct(x, y, cfg), sets))
    print(f"  graph sweep: {'; '.join(row)}", flush=True)


def prefill_sweep(x, y, sets, qw) -> None:
    from tilevm.stdlib.matmul import matmul

    w16 = torch.randn(qw.shape, device="cuda", dtype=torch.float16)
    y16 = torch.empty_like(y)
    print(f"  tilevm f16 GEMM: {us(lambda: matmul(x, w16.T, out=y16)):.1f} us", flush=True)
    chunks = qw.packed.shape[1]
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    chosen = tuning.choose_split(x.shape[0], qw.shape[0], chunks, sms)
    for split in sorted({1, chosen} | ({2, 4} if x.shape[0] <= 1024 else set())):
        row = []
        configs = tuning.prefill_prune(tuning.PREFILL_CONFIGS, x, y, dispatch._field_dtype(qw))
        for cfg in configs:
            name = "/".join(str(v) for v in cfg.constexprs.values()) + f" w{cfg.warps}"
            row.append(entry(name, direct_prefill(x, y, cfg, split), sets))
        print(f"  split {split}{' (chosen)' if split == chosen else ''}: {'; '.join(row)}",
              flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dtypes", default="u4,i4,u8")
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--k", type=int, default=8192)
    parser.add_argument("--m", type=int, default=1)
    args = parser.parse_args()
    gen = torch.Generator(device="cuda").manual_seed(0)
    print(f"device: {torch.cuda.get_device_name()}, N={args.n} K={args.k} M={args.m}")
    for name in args.dtypes.split(","):
        qw = random_weight(args.n, args.k, name, gen)
        sets = copies(qw)
        x = torch.randn(args.m, args.k, device="cuda", dtype=torch.float16)
        y = torch.empty(args.m, args.n, device="cuda", dtype=torch.float16)
        t_linear = us(rotating(lambda qw, x=x, y=y: linear(x, qw, out=y), sets))
        if args.m > dispatch.DECODE_ROWS:
            print(f"{name}: linear {t_linear:.1f} us", flush=True)
            prefill_sweep(x, y, sets, qw)
            continue
        best = dispatch.decode_tuned.best_config(
            x, qw.packed, qw.scales, qw.zeros if qw.zeros is not None else qw.scales,
            qw.scales, y, FIELD=dispatch._field_dtype(qw), ZERO=qw.zeros is not None,
            BIAS=False, GROUP=128)  # fmt: skip
        launch = direct(x, y, best)
        t_launch = us(rotating(launch, sets))
        t_graph = graph_us(launch, sets)
        print(f"{name}: linear {t_linear:.1f} us, launch {t_launch:.1f} us, graph "
              f"{t_graph:.1f} us per kernel ({best})", flush=True)  # fmt: skip
        decode_sweep(x, y, sets, args.m)
    return 0


if __name__ == "__main__":
    sys.exit(main())
