"""Planted bugs that each sanitizer tool must report, so that its "0 errors" on the kernel zoo
means something: raw CUDA kernels compiled with NVRTC and launched through tilevm's driver
layer on torch allocations, exactly as the zoo's tensors are allocated.

Each tool's process runs a clean kernel, its planted bug, and the clean kernel again: the bug
must be reported, and attributed to the bug alone (the clean runs around it stay at 0, which
also shows the context survived the fault).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

SOURCE = r"""
extern "C" __global__ void clean_copy(const float* x, float* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = 2.0f * x[i];
}

// memcheck: the guard lets thread n write one element past the end of out.
extern "C" __global__ void planted_out_of_bounds(float* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) out[i] = 1.0f;
}

// racecheck: each thread reads the slot another warp writes, with no barrier in between.
extern "C" __global__ void planted_shared_race(const float* x, float* out, int n) {
    __shared__ float slots[256];
    int t = threadIdx.x;
    int i = blockIdx.x * blockDim.x + t;
    slots[t] = i < n ? x[i] : 0.0f;
    float other = slots[(t + 32) % 256];
    if (i < n) out[i] = other;
}

// synccheck: threads 0-16 reach __syncwarp, but the mask names only threads 0-15.
extern "C" __global__ void planted_bad_syncwarp(float* out) {
    __shared__ float slots[32];
    unsigned t = threadIdx.x;
    if (t < 16) slots[t] = (float)t;
    unsigned mask = __ballot_sync(0xffffffffu, t < 16);
    if (t < 17) __syncwarp(mask);
    if (t == 0) {
        float total = 0.0f;
        for (int k = 0; k < 16; ++k) total += slots[k];
        out[0] = total;
    }
}

// initcheck: x is allocated but never written before the kernel reads it.
extern "C" __global__ void planted_uninitialized_read(const float* x, float* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = x[i] + 1.0f;
}

// initcheck (shared memory): the upper half of slots is read but never written.
extern "C" __global__ void planted_uninitialized_shared(float* out) {
    __shared__ float slots[64];
    int t = threadIdx.x;
    if (t < 32) slots[t] = (float)t;
    __syncthreads();
    out[t] = slots[63 - t];
}
"""

N = 1000  # 4000 bytes: the element past the end is inside the allocation's alignment slack
BLOCK = 256


@dataclass(frozen=True)
class Planted:
    """One selftest case: the kernel, and whether its tool must report it."""

    name: str
    kernel: str
    expect_reports: bool


def plan(tool: str, shared_initcheck: bool) -> list[Planted]:
    """The cases one tool's selftest process runs, in order."""
    bugs = {
        "memcheck": ["planted_out_of_bounds"],
        "racecheck": ["planted_shared_race"],
        "synccheck": ["planted_bad_syncwarp"],
        "initcheck": ["planted_uninitialized_read"]
        + (["planted_uninitialized_shared"] if shared_initcheck else []),
    }[tool]
    clean = Planted("clean_before", "clean_copy", False)
    after = Planted("clean_after", "clean_copy", False)
    return [clean, *(Planted(b.removeprefix("planted_"), b, True) for b in bugs), after]


def compile_cubin(arch: str) -> bytes:
    from tilevm.backends.cuda import nvrtc

    return nvrtc.compile_cubin(SOURCE, arch, ("-lineinfo",), name="sanitize_selftest.cu")


def launch(module, case: Planted) -> None:
    """Run one selftest case on fresh torch allocations and wait for it."""
    import numpy as np
    import torch

    from tilevm.backends.cuda import driver

    # copied from the host, as the zoo's tensors are: no torch kernel runs under the tool
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(N, np.float32)).to("cuda")
    out = torch.from_numpy(np.full(N, np.nan, np.float32)).to("cuda")
    ptr = lambda t: ctypes.c_void_p(t.data_ptr())  # noqa: E731
    blocks = (-(-N // BLOCK), 1, 1)
    fn = module.function(case.kernel)
    if case.kernel in ("clean_copy", "planted_shared_race"):
        fn.launch(blocks, (BLOCK, 1, 1), 0, [ptr(x), ptr(out), ctypes.c_int32(N)])
    elif case.kernel == "planted_out_of_bounds":
        fn.launch(blocks, (BLOCK, 1, 1), 0, [ptr(out), ctypes.c_int32(N)])
    elif case.kernel == "planted_bad_syncwarp":
        fn.launch((1, 1, 1), (32, 1, 1), 0, [ptr(out)])
    elif case.kernel == "planted_uninitialized_read":
        # 64 reads, one report each: few enough that the shared-memory case after it is
        # still under the sanitizer's print limit
        never_written = torch.empty(N, device="cuda")
        fn.launch((1, 1, 1), (64, 1, 1), 0, [ptr(never_written), ptr(out), ctypes.c_int32(64)])
    elif case.kernel == "planted_uninitialized_shared":
        fn.launch((1, 1, 1), (64, 1, 1), 0, [ptr(out)])
    else:
        raise ValueError(f"no launch for selftest kernel {case.kernel!r}")
    driver.synchronize()
