"""Running one test on every executor: the interpreter and the CPU (natively, and emulating the
CUDA and AMD targets' lowerings) always, SYCL on the OpenCL CPU device where that runtime is
installed (always in CI), CUDA where a GPU is present.

``run(launcher, *args, device=...)`` moves array arguments to the device, launches, waits, and
copies every array back into the caller's host objects, so a test body reads the same on every
device.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import tilevm as tv
from tilevm.backends.cuda import driver
from tilevm.dtypes.interop import torch_dtype
from tilevm.runtime import registry

CPU_DEVICES = ["cpu", "cpu:cuda", "cpu:amd"]
SYCL_CPU = "sycl:opencl:cpu"


def _sycl_devices() -> list[str]:
    """The OpenCL CPU device through the SYCL backend: host arrays, copied in and out."""
    why = registry.backend_for("sycl").unavailable()
    if why is None:
        return [SYCL_CPU]
    if os.environ.get("CI"):  # CI installs the SYCL runtime: its absence is a failure there
        raise RuntimeError(f"the SYCL backend cannot run in CI: {why}")
    return []


def need(reason: str | None) -> None:
    """Skip with ``reason`` (a missing toolchain's) when there is one; in CI, which installs
    every toolchain (.ci/setup*.sh), fail instead."""
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"a toolchain is missing in CI: {reason} (run .ci/setup)")
    pytest.skip(reason)


def need_compiler(target: str) -> None:
    """Skip a test that compiles for ``target`` (``"hip:gfx942"``, ``"cuda:sm_90a"``) where that
    compiler is not installed; in CI, which installs them all, fail instead."""
    backend = registry.backend_for(target)
    try:
        backend.toolchain(backend.target(target), target)
    except Exception as exc:  # noqa: BLE001 - whatever stops the compiler here
        need(f"no compiler for {target} here: {exc}")


DEVICES = ["interp", *CPU_DEVICES, *_sycl_devices()] + (["cuda"] if driver.available() else [])
HOST_DEVICES = ("interp", "cpu", "sycl")  # host arrays are launched as they are


def _to_gpu(arg, where: str = "cuda"):
    import torch

    if isinstance(arg, tv.PackedArray):
        return arg.to(where)
    if isinstance(arg, np.ndarray):
        dt = tv.dtype(arg.dtype)
        raw = torch.from_numpy(np.ascontiguousarray(arg).reshape(-1).view(np.uint8).copy()).to(
            where
        )
        twin = torch_dtype(dt)
        gpu = raw.view(twin) if twin is not None else raw
        gpu = gpu.reshape(arg.shape) if arg.ndim else gpu
        if not arg.flags.c_contiguous:  # keep the caller's strides: a strided view on the GPU
            base = _to_gpu(np.ascontiguousarray(arg.base), where)
            offset = (arg.ctypes.data - arg.base.ctypes.data) // arg.itemsize
            gpu = base.reshape(-1).as_strided(
                arg.shape, tuple(s // arg.itemsize for s in arg.strides), offset
            )
        return gpu
    return arg


def _back(host, gpu) -> None:
    import torch

    if isinstance(host, tv.PackedArray):
        data = gpu.data
        host.data[:] = data.cpu().numpy() if hasattr(data, "cpu") else data
    elif isinstance(host, np.ndarray):
        raw = gpu.contiguous().reshape(-1).view(torch.uint8).cpu().numpy()
        host[...] = raw.view(host.dtype).reshape(host.shape)


def run(launcher, *args, device: str = "interp", **kwargs) -> None:
    if device.startswith(HOST_DEVICES):
        launcher(*args, device=device, **kwargs)
        return
    moved = [_to_gpu(a) for a in args]
    launcher(*moved, device=device, **kwargs)
    driver.synchronize()
    for host, gpu in zip(args, moved):
        if gpu is not host:
            _back(host, gpu)


def at(device: str, launcher):
    """``at(device, kernel[grid])(*args)``: launch on ``device`` with host arrays."""
    return lambda *args, **kwargs: run(launcher, *args, device=device, **kwargs)
