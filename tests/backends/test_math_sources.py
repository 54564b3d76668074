"""The math functions in CUDA, HIP and SYCL source: the approximate forms use the instructions
the documentation bounds (PTX ``ex2/lg2/rsqrt/rcp.approx.f32``; AMD ``v_exp/v_log/v_rsq/v_rcp_
f32``; ``sycl::native``), and the exact forms do not; every function compiles with NVRTC, with
hipRTC (gfx90a) and, where it needs no device library, offline with clang (gfx942). Run-time
values are checked on every executor in tests/tilevm/test_math.py."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tilevm as tv
from tests.devices import need as _need
from tilevm.backends.cuda import disasm, nvrtc
from tilevm.backends.hip import clang, hiprtc
from tilevm.backends.hip.renderer import HipRenderer
from tilevm.backends.hip.target import amd_target
from tilevm.errors import DeviceError

F32 = np.zeros(256, np.float32)


@tv.kernel
def fast(x: tv.Tensor, y: tv.Tensor, out: tv.Tensor, APPROX: tv.constexpr):
    a = tv.load(x, [0], [256])
    b = tv.load(y, [0], [256])
    r = tv.exp(a, approx=APPROX) + tv.exp2(a, approx=APPROX) + tv.log2(b, approx=APPROX)
    tv.store(out, r + tv.rsqrt(b, approx=APPROX) + tv.fdiv(a, b, approx=APPROX), [0])


@tv.kernel
def library(x: tv.Tensor, out: tv.Tensor):
    a = tv.load(x, [0], [256])
    r = tv.erf(a) + tv.sigmoid(a) + tv.log1p(a) + tv.expm1(a) + tv.tan(a) + tv.atan(a)
    tv.store(out, r + tv.pow(a, a), [0])


def _need_nvrtc() -> None:
    try:
        nvrtc.nvrtc_version()
    except DeviceError as exc:
        _need(f"NVRTC is not usable here: {exc.message}")


def ptx(source: str, arch: str = "compute_90") -> str:
    """NVRTC's PTX of ``source`` (no driver needed): the instructions as written."""
    from cuda.bindings import nvrtc as bindings

    include = nvrtc._include_dir()
    opts = [f"--gpu-architecture={arch}", "-std=c++17"] + ([f"-I{include}"] if include else [])
    err, prog = bindings.nvrtcCreateProgram(source.encode(), b"k.cu", 0, [], [])
    try:
        (err,) = bindings.nvrtcCompileProgram(prog, len(opts), [o.encode() for o in opts])
        assert err == bindings.nvrtcResult.NVRTC_SUCCESS, nvrtc._program_log(prog)
        err, size = bindings.nvrtcGetPTXSize(prog)
        text = bytearray(size)
        bindings.nvrtcGetPTX(prog, text)
        return bytes(text).rstrip(b"\0").decode()
    finally:
        bindings.nvrtcDestroyProgram(prog)


PTX_APPROX = ("ex2.approx.f32", "lg2.approx.f32", "rsqrt.approx.f32", "rcp.approx.f32")


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_cuda_approximate_math_is_the_ptx_approx_instructions(dtype) -> None:
    _need_nvrtc()
    x = np.zeros(256, dtype)
    approx = fast.emit("cuda:sm_90", x, x, x, APPROX=True)
    exact = fast.emit("cuda:sm_90", x, x, x, APPROX=False)
    assert "tv_approx_exp(" in approx and "tv_approx_div(" in approx
    assert "tv_approx" not in exact  # the helpers come only with their use
    fast_ptx, exact_ptx = ptx(approx), ptx(exact)
    for instruction in PTX_APPROX:
        assert re.search(rf"\b{re.escape(instruction)}\s", fast_ptx), instruction
    # the exact forms: div.rn, sqrt.rn and a log2 of their own (exp2f is ex2.approx.f32 too,
    # after range reduction), at more than twice the instructions
    for instruction in PTX_APPROX[1:]:
        assert not re.search(rf"\b{re.escape(instruction)}\s", exact_ptx), instruction
    assert "div.rn.f32" in exact_ptx and "div.rn.f32" not in fast_ptx
    assert 2 * _count(fast_ptx) < _count(exact_ptx)
    # and the machine code: the multi-function unit's instructions
    sass = disasm_or_skip(nvrtc.compile_cubin(approx, "sm_90"))
    for unit in ("MUFU.EX2", "MUFU.LG2", "MUFU.RSQ", "MUFU.RCP"):
        assert unit in sass


def _count(ptx_text: str) -> int:
    return len(re.findall(r"^\t[a-z]", ptx_text, re.M))


def disasm_or_skip(cubin: bytes) -> str:
    try:
        return disasm.sass(cubin)
    except disasm.DisassemblerError as exc:
        _need(exc.message)
        raise


def test_cuda_doubles_have_no_approximate_form() -> None:
    _need_nvrtc()
    x = np.zeros(256, np.float64)
    source = fast.emit("cuda:sm_90", x, x, x, APPROX=True)
    assert "tv_approx" not in source and "exp(" in source
    nvrtc.compile_cubin(source, "sm_80")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_cuda_library_functions_compile(dtype) -> None:
    _need_nvrtc()
    x = np.zeros(256, dtype)
    source = library.emit("cuda:sm_90", x, x)
    names = ("erf", "log1p", "expm1", "tan", "atan") if dtype == np.float64 else (
        "erff", "log1pf", "expm1f", "tanf", "atanf")  # fmt: skip
    for name in names:
        assert re.search(rf"\b{name}\(", source), name
    assert "tv_sigmoid(" in source and "TV_INLINE double tv_sigmoid(double x)" in source
    for arch in ("sm_80", "sm_90a"):
        assert nvrtc.compile_cubin(source, arch)[:4] == b"\x7fELF"


def _hip(kernel: tv.Kernel, arch: str, *args, **kwargs) -> str:
    return HipRenderer().render(kernel.lower(amd_target(arch), *args, **kwargs).thread)


AMD_UNITS = ("v_exp_f32", "v_log_f32", "v_rsq_f32", "v_rcp_f32")


def test_hip_approximate_math_is_the_amd_transcendental_unit() -> None:
    source = _hip(fast, "gfx942", F32, F32, F32, APPROX=True)
    assert "__builtin_amdgcn_rsqf" in source and "__builtin_amdgcn_rcpf" in source
    assert "tv_approx" not in _hip(fast, "gfx942", F32, F32, F32, APPROX=False)
    _need(clang.unavailable())
    _need(None if clang.find_objdump() else "no llvm-objdump (apt-get install llvm-19)")
    offline = clang.disassemble(clang.compile_offline(source, "gfx942", "fast"))
    for unit in AMD_UNITS:
        assert re.search(rf"\b{unit}", offline), unit  # v_exp_f32_e32 and the like
    _need(hiprtc.unavailable())
    rtc = _hip(fast, "gfx90a", F32, F32, F32, APPROX=True)
    listing = clang.disassemble(hiprtc.compile_code_object(rtc, "gfx90a", "fast"))
    for unit in AMD_UNITS:
        assert re.search(rf"\b{unit}", listing), unit


def test_hip_library_functions_compile_with_hiprtc_and_name_what_offline_lacks() -> None:
    _need(hiprtc.unavailable())
    code = hiprtc.compile_code_object(_hip(library, "gfx90a", F32, F32), "gfx90a", "library")
    assert code[:4] == b"\x7fELF"
    _need(clang.unavailable())
    with pytest.raises(tv.CompileError) as info:
        clang.compile_offline(_hip(library, "gfx942", F32, F32), "gfx942", "library")
    assert "__ocml_erf_f32" in info.value.hint and "hipRTC" in info.value.hint


def test_hip_sigmoid_compiles_offline() -> None:
    @tv.kernel
    def sigmoid(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
        tv.store(out, tv.sigmoid(tv.load(x, [0], [256])), [0])

    _need(clang.unavailable())
    assert clang.compile_offline(_hip(sigmoid, "gfx942", F32, F32), "gfx942", "sigmoid")


def test_sycl_approximate_math_is_sycl_native() -> None:
    source = fast.emit("sycl:xe", F32, F32, F32, APPROX=True)
    for fn in ("exp", "exp2", "log2", "rsqrt", "divide"):
        assert f"sycl::native::{fn}(" in source, fn
    assert "sycl::native" not in fast.emit("sycl:xe", F32, F32, F32, APPROX=False)
    exact = library.emit("sycl:xe", F32, F32)
    for fn in ("erf", "log1p", "expm1", "tan", "atan"):
        assert f"sycl::{fn}(" in exact, fn
