"""The CUDA driver layer: a clean ``NoCudaDevice`` where there is no driver (CI, development
machines), and real launches where there is a GPU (tests marked ``gpu``)."""

from __future__ import annotations

import ctypes
import importlib.util
import sys
import traceback

import numpy as np
import pytest

from tilevm.backends.cuda import driver, nvrtc
from tilevm.errors import DeviceError, LaunchError, LaunchTypeError

from .test_cuda_nvrtc import HALF8_DOUBLE

needs_gpu = pytest.mark.skipif(not driver.available(), reason="no CUDA driver/device here")


@pytest.mark.skipif(driver.available(), reason="this machine has a CUDA device")
def test_without_a_device_the_error_is_clean() -> None:
    assert driver.available() is False
    with pytest.raises(driver.NoCudaDevice) as info:
        driver.device_info()
    err = info.value
    assert isinstance(err, DeviceError) and err.code == "no-cuda-device"
    assert "no CUDA driver/device here" in err.message
    assert "device='interp'" in (err.hint or "")
    # No chain from deep inside cuda-python: the user sees one short error.
    assert err.__cause__ is None and err.__suppress_context__
    assert len(traceback.format_exception(err)) < 12
    with pytest.raises(driver.NoCudaDevice):
        driver.Module(b"\x7fELF")
    with pytest.raises(driver.NoCudaDevice):
        driver.synchronize()


def test_a_missing_driver_library_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "_library", None)
    monkeypatch.setattr(driver, "_LIBCUDA", "libcuda-that-is-not-there.so.1")
    assert driver._initialize() == "the CUDA driver library cannot be loaded (OSError)"


def test_launching_needs_no_cuda_python() -> None:
    """The driver layer is libcuda through ctypes: importing it, and asking whether CUDA is
    there, imports none of cuda-python (whose import is most of a cached kernel's start)."""
    import subprocess

    code = (
        "import sys\n"
        "from tilevm.backends.cuda import driver\n"
        "driver.available()\n"
        "print(sorted(m for m in sys.modules if m.startswith('cuda')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- on a GPU ------------------------------------------------------------------------------


class _DeviceBuffer(driver.DeviceBuffer):
    """Device memory through the driver API, so GPU tests need no torch."""

    def read(self, dtype: type, count: int) -> np.ndarray:
        return self.read_into(np.empty(count, dtype))

    def arg(self) -> ctypes.c_void_p:
        return ctypes.c_void_p(self.address)


@pytest.mark.gpu
@needs_gpu
def test_device_info() -> None:
    info = driver.device_info()
    assert info is driver.device_info(0)  # cached
    major, minor = info.compute_capability
    assert info.arch == f"sm_{major}{minor}"
    assert info.arch_for_compile == (info.arch + "a" if major >= 9 else info.arch)
    assert info.multiprocessors > 0 and info.l2_bytes > 0 and info.name
    assert info.max_shared_per_block_optin >= 48 * 1024
    with pytest.raises(driver.NoCudaDevice, match="no CUDA device 99"):
        driver.device_info(99)


@pytest.mark.gpu
@needs_gpu
def test_launch_a_compiled_kernel(rng: np.random.Generator) -> None:
    info = driver.device_info()
    fn = driver.Module(nvrtc.compile_cubin(HALF8_DOUBLE, info.arch_for_compile)).function(
        "double_half8"
    )
    n = 8 * 1000
    x = rng.standard_normal(n).astype(np.float16)
    src, dst = _DeviceBuffer(x.nbytes), _DeviceBuffer(x.nbytes)
    try:
        src.write(x)
        n8 = n // 8
        fn.launch(
            ((n8 + 127) // 128, 1, 1), (128, 1, 1), 0, [src.arg(), dst.arg(), ctypes.c_int32(n8)]
        )
        driver.synchronize()
        np.testing.assert_array_equal(dst.read(np.float16, n), x + x)
    finally:
        src.free()
        dst.free()


SHARED_REVERSE = """\
extern "C" __global__ void reverse(const float* src, float* dst, int n, float scale) {
    extern __shared__ float tile[];
    for (int i = threadIdx.x; i < n; i += blockDim.x) tile[i] = src[i] * scale;
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = tile[n - 1 - i];
}
"""


@pytest.mark.gpu
@needs_gpu
def test_more_than_48_kib_of_dynamic_shared_memory(rng: np.random.Generator) -> None:
    info = driver.device_info()
    module = driver.Module(nvrtc.compile_cubin(SHARED_REVERSE, info.arch_for_compile))
    fn = module.function("reverse")
    assert module.function("reverse") is fn
    n = min(info.max_shared_per_block_optin, 200 * 1024) // 4
    x = rng.standard_normal(n).astype(np.float32)
    src, dst = _DeviceBuffer(x.nbytes), _DeviceBuffer(x.nbytes)
    try:
        src.write(x)
        args = [src.arg(), dst.arg(), ctypes.c_int32(n), ctypes.c_float(2.0)]
        fn.launch((1, 1, 1), (256, 1, 1), 4 * n, args)
        fn.launch((1, 1, 1), (256, 1, 1), 4 * n, args)  # the opt-in is already done
        driver.synchronize()
        np.testing.assert_array_equal(dst.read(np.float32, n), (x * 2)[::-1])
        with pytest.raises(LaunchError, match="shared memory"):
            fn.launch((1, 1, 1), (256, 1, 1), info.max_shared_per_block_optin + 4, args)
        with pytest.raises(LaunchError, match="three positive sizes"):
            fn.launch((0, 1, 1), (256, 1, 1), 0, args)
        with pytest.raises(LaunchTypeError, match="not a ctypes value"):
            fn.launch((1, 1, 1), (256, 1, 1), 0, [src.arg(), dst.arg(), n, ctypes.c_float(2.0)])
    finally:
        src.free()
        dst.free()


@pytest.mark.gpu
@needs_gpu
def test_errors_name_the_call() -> None:
    info = driver.device_info()
    module = driver.Module(nvrtc.compile_cubin(SHARED_REVERSE, info.arch_for_compile))
    with pytest.raises(driver.CudaRuntimeError, match="cuModuleGetFunction") as err:
        module.function("no_such_kernel")
    assert err.value.error_name == "CUDA_ERROR_NOT_FOUND"
    with pytest.raises(driver.CudaRuntimeError, match="cuModuleLoadData"):
        driver.Module(b"not a cubin\0")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torch_tensors_share_the_primary_context(rng: np.random.Generator) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    info = driver.device_info()
    fn = driver.Module(nvrtc.compile_cubin(HALF8_DOUBLE, info.arch_for_compile)).function(
        "double_half8"
    )
    x = torch.from_numpy(rng.standard_normal(8 * 64).astype(np.float16)).cuda()
    y = torch.empty_like(x)
    stream = torch.cuda.current_stream().cuda_stream
    args = [ctypes.c_void_p(x.data_ptr()), ctypes.c_void_p(y.data_ptr()), ctypes.c_int32(64)]
    fn.launch((1, 1, 1), (64, 1, 1), 0, args, stream=stream)
    torch.cuda.synchronize()
    assert torch.equal(y, x + x)
