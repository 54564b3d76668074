"""HIP code generation without an AMD GPU: every zoo kernel renders for gfx90a and gfx942 and
compiles with hipRTC (gfx90a: ROCm 5.2's hipRTC crashes on gfx940+) and with clang offline
(gfx942); the GEMM's code objects hold MFMA instructions; the bf16/half helpers of the prelude
agree bit for bit with ml_dtypes and numpy on the host; the runtime reports a clean reason where
there is no device. In CI (``CI=true``) a missing toolchain fails instead of skipping."""

from __future__ import annotations

import ctypes
import functools
import os
import re
import subprocess
import tempfile

import ml_dtypes
import numpy as np
import pytest

import tilevm as tv
from tests.devices import need as _need
from tests.kernel_zoo import zoo_calls
from tilevm.backends.hip import clang, driver, hiprtc
from tilevm.backends.hip.renderer import CONVERSIONS, HipRenderer
from tilevm.backends.hip.target import amd_target

CALLS = {name: (kernel, args, kwargs) for name, kernel, args, kwargs in zoo_calls()}
NAMES = list(CALLS)
ARCHS = ["gfx90a", "gfx942"]


@functools.cache
def _source(name: str, arch: str) -> str:
    kernel, args, kwargs = CALLS[name]
    return HipRenderer().render(kernel.lower(amd_target(arch), *args, **kwargs).thread)


def _kernel_name(name: str) -> str:
    return CALLS[name][0].__name__


# ----- rendering ------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", NAMES)
def test_every_zoo_kernel_renders_self_contained_hip(name: str, arch: str) -> None:
    source = _source(name, arch)
    assert "#include" not in source  # hipRTC brings the runtime; offline there is none
    assert re.search(rf'extern "C" __global__ void __launch_bounds__\(\d+\) {_kernel_name(name)}\(',
                     source)  # fmt: skip
    body = source[source.index('extern "C" __global__') :]
    assert "// line " in body  # the kernel's Python lines, as comments
    for cuda_only in ("__shfl_xor_sync", "tv_cp_async", "tv_ldmatrix", "tv_mma_", "threadIdx"):
        assert cuda_only not in body


def test_row_reductions_exchange_across_all_64_lanes() -> None:
    body = _source("softmax", "gfx942").split('extern "C" __global__')[1]
    masks = {int(m) for m in re.findall(r"tv_shfl_xor<(\d+)>", body)}
    assert 32 in masks and max(masks) < 64  # wave64: the 32-lane half swaps too


def test_the_gemm_uses_mfma_atoms() -> None:
    body = _source("gemm_bf16_large", "gfx942").split('extern "C" __global__')[1]
    assert "tv_mfma_f32_" in body and "_bf16(" in body


# ----- compiling ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_zoo_kernel_compiles_with_hiprtc_for_gfx90a(name: str) -> None:
    _need(hiprtc.unavailable())
    code = hiprtc.compile_code_object(_source(name, "gfx90a"), "gfx90a", name)
    assert code[:4] == b"\x7fELF"
    assert _kernel_name(name).encode() in code


@pytest.mark.parametrize("name", NAMES)
def test_every_zoo_kernel_compiles_with_clang_for_gfx942(name: str) -> None:
    _need(clang.unavailable())
    code = clang.compile_offline(_source(name, "gfx942"), "gfx942", name)
    assert code[:4] == b"\x7fELF"
    assert _kernel_name(name).encode() in code


def _need_objdump() -> None:
    _need(None if clang.find_objdump() else "no llvm-objdump (apt-get install llvm-19)")


@pytest.mark.parametrize("name", ["gemm_f16_small", "gemm_bf16_large"])
def test_gemm_code_objects_hold_mfma_instructions(name: str) -> None:
    _need(clang.unavailable())
    _need(hiprtc.unavailable())
    _need_objdump()
    offline = clang.disassemble(clang.compile_offline(_source(name, "gfx942"), "gfx942", name))
    assert re.search(r"\bv_mfma_f32_(16x16x16|32x32x8)_?(f16|bf16)", offline), offline[-2000:]
    rtc = hiprtc.compile_code_object(_source(name, "gfx90a"), "gfx90a", name)
    assert re.search(r"\bv_mfma_f32_(16x16x16|32x32x8)(f16|bf16_1k)", clang.disassemble(rtc))


def test_hiprtc_errors_carry_the_compiler_log() -> None:
    _need(hiprtc.unavailable())
    with pytest.raises(tv.CompileError) as info:
        hiprtc.compile_code_object('extern "C" __global__ void k() { int x = ; }', "gfx90a")
    assert info.value.code == "hip-compile"
    assert "expected expression" in info.value.found


def test_offline_errors_name_what_needs_device_libraries() -> None:
    _need(clang.unavailable())
    source = (
        HipRenderer.prelude + '\nextern "C" __global__ void k(double* x) { x[0] = tv_exp(x[1]); }'
    )
    with pytest.raises(tv.CompileError) as info:
        clang.compile_offline(source, "gfx942")
    assert info.value.code == "hip-compile" and "__ocml_exp_f64" in info.value.hint


@pytest.mark.parametrize("arch", ["gfx942", "gfx1100"])
def test_an_arch_the_hiprtc_cannot_target_is_an_error_not_an_abort(arch: str) -> None:
    _need(hiprtc.unavailable())
    if hiprtc.knows(arch):
        pytest.skip(f"this hipRTC targets {arch}")
    with pytest.raises(tv.CompileError, match=f"cannot compile for {arch}"):
        hiprtc.compile_code_object('extern "C" __global__ void k() {}', arch)


@tv.kernel
def _double(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    start = tv.block_id(0) * 256
    tv.store(out, tv.load(x, [start], [256]) * 2.0, [start])


def test_the_backend_builds_with_clang_what_the_hiprtc_cannot() -> None:
    _need(clang.unavailable())
    x = np.zeros(256, np.float32)
    for arch in ("gfx90a", "gfx942", "gfx1100"):
        built = _double.compile(f"hip:{arch}", x, x)
        assert built.binary[:4] == b"\x7fELF"
        assert built.compiler.startswith("hiprtc" if hiprtc.knows(arch) else "clang")


def test_the_compiler_fingerprint_names_hiprtcs_version() -> None:
    _need(hiprtc.unavailable())
    assert re.match(r"hiprtc \d+\.\d+ ", hiprtc.compiler_fingerprint())


# ----- the runtime ----------------------------------------------------------------------------


def test_no_amd_gpu_is_a_clean_reason_not_a_crash() -> None:
    reason = driver.unavailable()
    if reason is None:
        pytest.skip("an AMD GPU is present")
    assert reason.startswith(("no HIP runtime", "no AMD GPU")) and "\n" not in reason
    assert driver.device_count() == 0
    with pytest.raises(tv.TilevmError, match=re.escape(reason)):
        driver.Module(b"\x7fELF")


# ----- the prelude's conversions, on the host ---------------------------------------------------

HOST_TEST = r"""
#include <stdint.h>
#define TV_INLINE static inline
@CONVERSIONS@
extern "C" void bf16_decode(const uint16_t* in, float* out, long n) {
    for (long i = 0; i < n; ++i) out[i] = tv_bfloat2float(tv_bfloat_from_bits(in[i]));
}
extern "C" void bf16_encode(const float* in, uint16_t* out, long n) {
    for (long i = 0; i < n; ++i) out[i] = tv_bfloat_bits(tv_float2bfloat(in[i]));
}
extern "C" void pair_op(int op, const uint32_t* a, const uint32_t* b, uint32_t* out, long n) {
    for (long i = 0; i < n; ++i) {
        uint32_t x = a[i], y = b[i];
        out[i] = op == 0 ? tv_half2_add(x, y) : op == 1 ? tv_half2_sub(x, y)
               : op == 2 ? tv_half2_mul(x, y) : op == 3 ? tv_bfloat2_add(x, y)
               : op == 4 ? tv_bfloat2_sub(x, y) : tv_bfloat2_mul(x, y);
    }
}
"""


@functools.cache
def _host_helpers() -> ctypes.CDLL:
    compiler = clang.find_clang()
    tmp = tempfile.mkdtemp(prefix="tilevm-hip-host-")
    src, lib = os.path.join(tmp, "helpers.cpp"), os.path.join(tmp, "helpers.so")
    with open(src, "w") as f:
        f.write(HOST_TEST.replace("@CONVERSIONS@", CONVERSIONS))
    cmd = [compiler, "-O2", "-std=c++17", "-shared", "-fPIC", src, "-o", lib]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return ctypes.CDLL(lib)


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _need_host_clang() -> ctypes.CDLL:
    _need(clang.unavailable())
    return _host_helpers()


def test_bfloat16_decode_is_exact_for_every_pattern() -> None:
    lib = _need_host_clang()
    codes = np.arange(1 << 16, dtype=np.uint16)
    out = np.empty(codes.size, np.float32)
    lib.bf16_decode(_ptr(codes), _ptr(out), ctypes.c_long(codes.size))
    want = codes.view(ml_dtypes.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(out.view(np.uint32), want.view(np.uint32))


def _float32_probes() -> np.ndarray:
    """Every bfloat16 value and its neighbours in float32 (ties, one ulp either side), every
    float32 NaN/inf exponent with assorted payloads, and random patterns."""
    high = np.arange(1 << 16, dtype=np.uint32) << 16
    probes = [high + d for d in (0, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF)]
    probes.append(np.random.default_rng().integers(0, 1 << 32, 1 << 20, dtype=np.uint32))
    return np.concatenate(probes).view(np.float32)


def test_bfloat16_encode_rounds_to_nearest_even_and_keeps_nans() -> None:
    lib = _need_host_clang()
    x = _float32_probes()
    out = np.empty(x.size, np.uint16)
    lib.bf16_encode(_ptr(x), _ptr(out), ctypes.c_long(x.size))
    want = x.astype(ml_dtypes.bfloat16).view(np.uint16)
    nan = np.isnan(x)
    np.testing.assert_array_equal(out[~nan], want[~nan])
    assert np.isnan(out[nan].view(ml_dtypes.bfloat16).astype(np.float32)).all()
    np.testing.assert_array_equal(out[nan] >> 15, x[nan].view(np.uint32) >> 31)  # the sign


@pytest.mark.parametrize("op", ["add", "sub", "mul"])
@pytest.mark.parametrize("kind", ["half", "bfloat"])
def test_pairs_of_16_bit_floats_round_once_like_the_vm(kind: str, op: str) -> None:
    lib = _need_host_clang()
    rng = np.random.default_rng()
    n = 1 << 18
    a, b = (rng.integers(0, 1 << 32, n, dtype=np.uint32) for _ in range(2))
    out = np.empty(n, np.uint32)
    index = ("add", "sub", "mul").index(op) + (3 if kind == "bfloat" else 0)
    lib.pair_op(ctypes.c_int(index), _ptr(a), _ptr(b), _ptr(out), ctypes.c_long(n))
    dt = np.float16 if kind == "half" else ml_dtypes.bfloat16
    fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply}[op]
    with np.errstate(all="ignore"):
        want = fn(a.view(dt).astype(np.float32), b.view(dt).astype(np.float32)).astype(dt)
    got = out.view(dt)
    nan = np.isnan(want.astype(np.float32))
    np.testing.assert_array_equal(got.view(np.uint16)[~nan], want.view(np.uint16)[~nan])
    assert np.isnan(got[nan].astype(np.float32)).all()


@pytest.mark.parametrize("field", [tv.u4, tv.i3, tv.f4e2m1fn, tv.f8e4m3fn], ids=str)
def test_sub_byte_fields_become_halves_with_packed_instructions(field: tv.DataType) -> None:
    """The magic-number cast of packed fields to f16 runs two values per instruction on CDNA
    (v_pk_add_f16 / v_pk_mul_f16, masks merged by v_and_or_b32), with no per-value convert."""
    _need(clang.unavailable())
    _need_objdump()
    from tests.lowering.test_packed_cast import SLOTS, cast_fields, interleaved

    threads = 64  # one wave
    packed = np.zeros(threads * SLOTS * field.bits // 32, np.uint32)
    y = np.zeros(threads * SLOTS, np.float16)
    order = interleaved(field.bits, threads)
    built = cast_fields.compile("hip:gfx942", packed, y, FIELD=field, ORDER=order, warps=1)
    ops = re.findall(r"^\s+(v_[a-z0-9_]+)", built.disassembly(), re.M)
    packed_ops = [op for op in ops if op.startswith(("v_pk_add_f16", "v_pk_mul_f16"))]
    assert len(packed_ops) >= SLOTS // 2, ops  # one per pair of fields
    assert not [op for op in ops if op.startswith("v_cvt")], ops
