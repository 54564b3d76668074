"""NVRTC to cubin, checked through the SASS that cuobjdump prints: no GPU needed.

On CI (``CI`` set) a missing CUDA toolchain fails these tests, so CI cannot silently stop
checking the CUDA backend; elsewhere it skips them with the reason.
"""

from __future__ import annotations

import os
import sys

import pytest

from tilevm.backends.cuda import disasm, nvrtc
from tilevm.errors import CompileError, DeviceError, TilevmError

ARCHS = ["sm_80", "sm_90", "sm_90a"]

# Eight halves per thread through one float4: a 128-bit load and store (LDG.E.128/STG.E.128).
HALF8_DOUBLE = """\
#include <cuda_fp16.h>

extern "C" __global__ void double_half8(const __half* __restrict__ src, __half* __restrict__ dst,
                                        int n8) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n8) return;
    float4 v = reinterpret_cast<const float4*>(src)[i];
    __half2* h = reinterpret_cast<__half2*>(&v);
    for (int k = 0; k < 4; ++k) h[k] = __hadd2(h[k], h[k]);
    reinterpret_cast<float4*>(dst)[i] = v;
}
"""

BF16_KERNEL = """\
#include <cuda_bf16.h>

extern "C" __global__ void to_bf16(const float* src, __nv_bfloat16* dst, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __float2bfloat16(src[i] * SCALE);
}
"""


def toolchain_missing(reason: str) -> None:
    """Skip, except on CI, where a missing toolchain is a failure."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason} (CI must have the CUDA toolchain: pip install tilevm[test])")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def has_nvrtc() -> None:
    try:
        nvrtc.nvrtc_version()
    except DeviceError as exc:
        toolchain_missing(f"NVRTC is not usable here: {exc.message}")


@pytest.fixture(scope="module")
def has_cuobjdump() -> None:
    for tool in ("cuobjdump", "nvdisasm"):
        if disasm.find_tool(tool) is None:
            toolchain_missing(f"{tool} not found (pip install nvidia-cuda-{tool})")


@pytest.mark.parametrize("arch", ARCHS)
def test_compiles_a_cubin_with_128_bit_loads(arch: str, has_nvrtc, has_cuobjdump) -> None:
    cubin = nvrtc.compile_cubin(HALF8_DOUBLE, arch)
    assert cubin[:4] == b"\x7fELF"
    listing = disasm.sass(cubin)
    assert f"code for {arch}" in listing
    assert "Function : double_half8" in listing
    assert "LDG.E.128" in listing and "STG.E.128" in listing
    assert "HADD2" in listing or "HFMA2" in listing


def test_bf16_header_and_extra_options(has_nvrtc) -> None:
    cubin = nvrtc.compile_cubin(BF16_KERNEL, "sm_90a", options=["-DSCALE=2.0f"])
    assert cubin[:4] == b"\x7fELF"
    with pytest.raises(nvrtc.CudaCompileError, match="SCALE"):
        nvrtc.compile_cubin(BF16_KERNEL, "sm_90a")  # the macro is undefined without the option


def test_a_syntax_error_shows_the_offending_line(has_nvrtc) -> None:
    bad = HALF8_DOUBLE.replace("h[k] = __hadd2(h[k], h[k]);", "h[k] = __hadd2(h[k], h[k]) +;")
    with pytest.raises(nvrtc.CudaCompileError) as info:
        nvrtc.compile_cubin(bad, "sm_80")
    err = info.value
    assert isinstance(err, CompileError) and isinstance(err, TilevmError)
    text = str(err)
    assert "kernel.cu(9): error" in err.log and err.log in err.message
    assert "> 9 |     for (int k = 0; k < 4; ++k) h[k] = __hadd2(h[k], h[k]) +;" in text
    assert "  8 |     __half2* h" in text  # the line before, for context
    assert err.location is not None and err.location.line == 9 and err.location.col > 40
    assert err.to_dict()["code"] == "cuda-compile"


def test_the_source_name_appears_in_errors(has_nvrtc) -> None:
    with pytest.raises(nvrtc.CudaCompileError, match=r"gemm\.cu\(1\): error") as info:
        nvrtc.compile_cubin("this is not C++;\n", "sm_80", name="gemm.cu")
    assert "> 1 | this is not C++;" in str(info.value)


def test_unknown_arch_and_bad_options_are_compile_errors(has_nvrtc) -> None:
    with pytest.raises(nvrtc.CudaCompileError, match="cannot compile for 'sm_99'") as info:
        nvrtc.compile_cubin(HALF8_DOUBLE, "sm_99")
    assert "80" in (info.value.expected or "")
    with pytest.raises(nvrtc.CudaCompileError, match="compute_90"):
        nvrtc.compile_cubin(HALF8_DOUBLE, "compute_90")  # PTX targets are refused: cubin only
    with pytest.raises(nvrtc.CudaCompileError, match="--no-such-option"):
        nvrtc.compile_cubin(HALF8_DOUBLE, "sm_80", options=["--no-such-option"])


def test_version_and_fingerprint(has_nvrtc) -> None:
    major, minor = nvrtc.nvrtc_version()
    assert major >= 12 and minor >= 0
    assert nvrtc.compiler_fingerprint().startswith(f"nvrtc {major}.{minor}")
    assert 80 in nvrtc.supported_archs() and 90 in nvrtc.supported_archs()


def test_sass_rejects_what_is_not_a_cubin(has_cuobjdump) -> None:
    with pytest.raises(disasm.DisassemblerError, match="cuobjdump -sass failed"):
        disasm.sass(b"not an ELF file")


def test_without_cuda_python_the_error_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)  # importing it now fails
    nvrtc._nvrtc.cache_clear()
    try:
        with pytest.raises(nvrtc.CudaUnavailable) as info:
            nvrtc.compile_cubin(HALF8_DOUBLE, "sm_80")
    finally:
        nvrtc._nvrtc.cache_clear()
    assert isinstance(info.value, DeviceError)
    assert "pip install tilevm[cuda]" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
