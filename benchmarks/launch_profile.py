"""Where a repeat launch's host time goes: the whole call, then each step of the repeat path
(binding, the key, the guards, packing, the stream, cuLaunchKernel), on a 4-block vector add.

    python3 benchmarks/launch_profile.py [--cprofile]
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time

import torch

import tilevm as tv


@tv.kernel
def vector_add(x: tv.Tensor, y: tv.Tensor, out: tv.Tensor, BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK
    tv.store(out, tv.load(x, [start], [BLOCK]) + tv.load(y, [start], [BLOCK]), [start])


def per_call_us(fn, count: int = 5000) -> float:
    for _ in range(100):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(count):
        fn()
    elapsed = time.perf_counter() - start
    torch.cuda.synchronize()
    return elapsed / count * 1e6


def _builds(held):
    """The CUDA builds among what a kernel holds (however its cache nests them)."""
    if hasattr(held, "_function"):
        yield held
    elif isinstance(held, dict):
        for value in held.values():
            yield from _builds(value)
    elif isinstance(held, (list, tuple)):
        for value in held:
            yield from _builds(value)
    elif hasattr(held, "built"):
        yield from _builds(held.built)


def raw_launch_us(kernel, key, bound, reads) -> None:
    """The repeat path's pieces on their own, and cuLaunchKernel called in a few ways."""
    import ctypes

    from tilevm.backends.cuda import driver
    from tilevm.backends.cuda.runtime import raw_stream_reader
    from tilevm.runtime.fast_launch import ParamPacker

    entry = kernel._fast.find(key, bound)
    built = next(_builds(kernel._binaries))
    packer = ParamPacker(entry.plan, entry.scalars)
    stream_of = raw_stream_reader(torch, 0)
    print(f"  pack: {per_call_us(lambda: packer.pack(bound, reads)):.2f} us")
    print(f"  stream: {per_call_us(lambda: stream_of()):.2f} us")
    launch = driver.raw_launcher(built._function)
    stream = stream_of()
    block = (built.num_threads, 1, 1)
    pointers = packer.pointers
    print(f"  raw_launcher call: "
          f"{per_call_us(lambda: launch((4, 1, 1), block, 0, stream, pointers)):.2f} us")
    lib = ctypes.PyDLL("libcuda.so.1")
    bare = lib.cuLaunchKernel  # no argtypes: every argument preconverted
    handle, s, p = ctypes.c_void_p(int(built._function._handle)), ctypes.c_void_p(stream), \
        ctypes.cast(pointers, ctypes.c_void_p)
    print(f"  cuLaunchKernel, no argtypes: "
          f"{per_call_us(lambda: bare(handle, 4, 1, 1, block[0], 1, 1, 0, s, p, None)):.2f} us")
    lib2 = ctypes.CDLL("libcuda.so.1")
    released = lib2.cuLaunchKernel  # releases the GIL
    print(f"  cuLaunchKernel, CDLL: "
          f"{per_call_us(lambda: released(handle, 4, 1, 1, block[0], 1, 1, 0, s, p, None)):.2f} us")
    from cuda.bindings import driver as cu

    addr = ctypes.addressof(pointers)
    fn = built._function._handle
    print(f"  cuLaunchKernel, cuda-python: "
          f"{per_call_us(lambda: cu.cuLaunchKernel(fn, 4, 1, 1, block[0], 1, 1, 0, stream, addr, 0)):.2f} us")


def main() -> None:
    x, y = torch.randn(1024, device="cuda"), torch.randn(1024, device="cuda")
    out = torch.empty_like(x)
    launch = vector_add[4,]
    launch(x, y, out, BLOCK=256)
    torch.cuda.synchronize()
    torch.testing.assert_close(out, x + y)
    fast = vector_add._fast
    args, kwargs = (x, y, out), {"BLOCK": 256}
    bound = fast.bind(args, kwargs)
    key, reads = fast.probe(bound, 4, "auto")
    entry = fast.find(key, bound)
    print(f"whole call: {per_call_us(lambda: launch(x, y, out, BLOCK=256)):.2f} us")
    print(f"  bind: {per_call_us(lambda: fast.bind(args, kwargs)):.2f} us")
    print(f"  probe (the key): {per_call_us(lambda: fast.probe(bound, 4, 'auto')):.2f} us")
    print(f"  find: {per_call_us(lambda: fast.find(key, bound)):.2f} us")
    print(f"  entry.run (pack, stream, cuLaunchKernel): "
          f"{per_call_us(lambda: entry.run(bound, reads, (4, 1, 1))):.2f} us")
    print(f"torch.add: {per_call_us(lambda: torch.add(x, y, out=out)):.2f} us")
    raw_launch_us(vector_add, key, bound, reads)
    if "--cprofile" in sys.argv:
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(20000):
            launch(x, y, out, BLOCK=256)
        profile.disable()
        torch.cuda.synchronize()
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
