"""The shared C++ helpers of the CUDA and HIP preludes (``backends/prelude.py``), in each of their
spellings, compiled for the host with g++ and checked against exact references (``exact.py``):
the conversions rounded to odd that casts to narrow floats go through, and the shifts."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests.tilevm.exact import odd_f32, shifted, wrapped
from tilevm import dtypes as dts
from tilevm.backends import codecs, prelude
from tilevm.backends.cuda import renderer as cuda
from tilevm.backends.hip import renderer as hip

HOST = r"""
#include <math.h>
#include <stddef.h>
// the vector types the spellings name, and the device library's pow
struct uint2 { uint32_t x, y; };
struct alignas(16) uint4 { uint32_t x, y, z, w; };
struct tv_u32x2 { uint32_t w[2]; };
struct alignas(16) tv_u32x4 { uint32_t w[4]; };
static inline double tv_pow_f64(double a, double b) { return pow(a, b); }
"""

CALLS = r"""
#define TV_EACH(name, In, Out, expr) extern "C" void name(const In* in, Out* out, size_t n) \
    { for (size_t i = 0; i < n; ++i) out[i] = (expr); }
TV_EACH(odd_double, double, float, tv_to_f32_odd(in[i]))
TV_EACH(odd_int64, int64_t, float, tv_to_f32_odd(in[i]))
TV_EACH(odd_uint64, uint64_t, float, tv_to_f32_odd(in[i]))
#define TV_SHIFTS(T) \
    extern "C" void shl_##T(const T* a, const T* b, T* out, size_t n, int bits) \
    { for (size_t i = 0; i < n; ++i) out[i] = tv_shl<T>(a[i], b[i], bits); } \
    extern "C" void shr_##T(const T* a, const T* b, T* out, size_t n, int bits) \
    { for (size_t i = 0; i < n; ++i) out[i] = tv_shr<T>(a[i], b[i], bits); }
TV_SHIFTS(int32_t)
TV_SHIFTS(uint32_t)
TV_SHIFTS(int64_t)
TV_SHIFTS(uint64_t)
"""

SPELLINGS = {"cuda": cuda.SPELLING, "hip": hip.SPELLING}


def _gxx() -> str:
    gxx = shutil.which("g++")
    if gxx is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("g++ is required in CI to compile and check the prelude's helpers")
        pytest.skip("g++ not found: the prelude's helpers cannot be compiled on this machine")
    return gxx


@pytest.fixture(scope="module", params=list(SPELLINGS))
def helpers(request) -> ctypes.CDLL:
    """The helpers in one language's spelling, as a host library."""
    gxx = _gxx()
    source = codecs.HOST_PRELUDE + HOST + prelude.helpers(SPELLINGS[request.param]) + CALLS
    with tempfile.TemporaryDirectory(prefix="tv_prelude_") as work:
        src, lib = Path(work) / "helpers.cpp", Path(work) / "helpers.so"
        src.write_text(source)
        flags = ["-O2", "-std=c++17", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror"]
        flags.append("-Wno-unknown-pragmas")  # the device compilers' #pragma unroll
        done = subprocess.run([gxx, *flags, str(src), "-o", str(lib)], capture_output=True,
                              text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr[-4000:]
        yield ctypes.CDLL(str(lib))


def call(lib: ctypes.CDLL, name: str, out_type, *arrays, bits: int | None = None) -> np.ndarray:
    """``name(in..., out, n[, bits])`` over whole arrays."""
    arrays = [np.ascontiguousarray(a) for a in arrays]
    out = np.empty(arrays[0].shape, out_type)
    fn = getattr(lib, name)
    extra = () if bits is None else (bits,)
    fn.argtypes = [ctypes.c_void_p] * (len(arrays) + 1) + [ctypes.c_size_t, ctypes.c_int][
        : 1 + len(extra)
    ]
    fn(*[a.ctypes.data for a in arrays], out.ctypes.data, out.size, *extra)
    return out


# ----- rounding to odd --------------------------------------------------------------------------


def double_inputs(rng: np.random.Generator) -> np.ndarray:
    """Doubles on, between and a hair beside float32 values (normal, subnormal, the largest and
    past it), the special values, and random patterns."""
    f32 = rng.integers(0, 0x7F7FFFFF, 4000, dtype=np.uint32)  # below the largest: a next one
    f32 = np.concatenate([f32, [1, 0x800000, 0x3F800000]]).astype(np.uint32)
    above = (f32 + 1).view(np.float32).astype(np.float64)
    f32 = f32.view(np.float32).astype(np.float64)
    largest = float(np.finfo(np.float32).max)
    mids = np.concatenate([f32 / 2 + above / 2, [largest / 2 + 2.0**127]])  # then 2**128
    hair = np.ldexp(mids, -40)
    x = np.concatenate([f32, mids, mids + hair, mids - hair, f32 + hair[:-1], f32 - hair[:-1]])
    x = np.concatenate([x, [largest, 2.0**128, 1e300, 2.0**-150, 2.0**-160, 5e-324, 0.0]])
    noise = rng.integers(0, 1 << 64, 4000, dtype=np.uint64).view(np.float64)
    return np.concatenate([x, -x, noise, [np.inf, -np.inf, np.nan]])


def integer_inputs(rng: np.random.Generator, signed: bool) -> list[int]:
    """Integers of every length with float32 ties (and their neighbours) at every magnitude."""
    values = [0, 1, 2**24 + 1, 2**63 - 1, 2**63 - 2**39, 2**64 - 1, 2**64 - 2**39]
    for length in range(26, 65):
        for top in rng.integers(1 << 23, 1 << 24, 6):
            shift = length - 24
            tie = int(top) << shift | 1 << (shift - 1)
            values += [tie - 1, tie, tie + 1, int(rng.integers(0, 1 << 62)) >> (64 - length)]
    lo, hi = (-(2**63), 2**63 - 1) if signed else (0, 2**64 - 1)
    values += [-v for v in values] + [lo]
    return sorted({v for v in values if lo <= v <= hi})


def same_floats(ours: np.ndarray, want: list[float], inputs) -> None:
    want = np.asarray(want, np.float32)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(ours), nan)
    bad = np.flatnonzero(ours.view(np.uint32)[~nan] != want.view(np.uint32)[~nan])
    assert bad.size == 0, (
        f"{bad.size} differ, e.g. {np.asarray(inputs, dtype=object)[~nan][bad[0]]!r} gave "
        f"{ours[~nan][bad[0]]!r}, not {want[~nan][bad[0]]!r}"
    )


def test_doubles_round_to_odd(helpers, rng) -> None:
    x = double_inputs(rng)
    same_floats(call(helpers, "odd_double", np.float32, x), [odd_f32(float(v)) for v in x], x)


@pytest.mark.parametrize("signed", [True, False], ids=["int64", "uint64"])
def test_64_bit_integers_round_to_odd(helpers, rng, signed: bool) -> None:
    values = integer_inputs(rng, signed)
    x = np.asarray(values, np.int64 if signed else np.uint64)
    name = "odd_int64" if signed else "odd_uint64"
    same_floats(call(helpers, name, np.float32, x), [odd_f32(v) for v in values], values)


# ----- shifts -------------------------------------------------------------------------------------

# (the dtype, the helper's compute type): narrow types compute in 32 bits, as the lowering has it
SHIFTED = [
    (dts.i8, "int32_t"),
    (dts.u8, "int32_t"),
    (dts.i3, "int32_t"),
    (dts.u12, "int32_t"),
    (dts.i12, "int32_t"),
    (dts.i32, "int32_t"),
    (dts.u32, "uint32_t"),
    (dts.i64, "int64_t"),
    (dts.u64, "uint64_t"),
    (dts.u40, "uint64_t"),
    (dts.i33, "int64_t"),
]
NUMPY = {"int32_t": np.int32, "uint32_t": np.uint32, "int64_t": np.int64, "uint64_t": np.uint64}


@pytest.mark.parametrize(("dt", "compute"), SHIFTED, ids=[str(d) for d, _ in SHIFTED])
def test_shifts_by_every_kind_of_count(helpers, rng, dt, compute: str) -> None:
    """Counts -1, 0, 1, width - 1, width, width + 9 and the extremes, on values of both signs:
    the helpers against shifting one bit at a time."""
    counts = {wrapped(c, dt) for c in (-1, 0, 1, dt.bits - 1, dt.bits, dt.bits + 9, 2**63)}
    counts |= {int(dt.min), int(dt.max)}
    values = {int(dt.min), int(dt.max), 1, wrapped(-1, dt)}
    values |= {wrapped(int(v), dt) for v in rng.integers(0, 1 << 63, 16, dtype=np.uint64)}
    pairs = [(v, c) for v in sorted(values) for c in sorted(counts)]
    ty = NUMPY[compute]
    a = np.asarray([v for v, _ in pairs], ty)  # the values as the lowering computes them
    b = np.asarray([c for _, c in pairs], ty)
    mask = (1 << dt.bits) - 1
    for op, left in (("shl", True), ("shr", False)):
        ours = call(helpers, f"{op}_{compute}", ty, a, b, bits=dt.bits)
        got = [int(g) & mask for g in ours]  # the final encode keeps the low bits
        want = [shifted(v, c, dt, left) & mask for v, c in pairs]
        bad = [i for i in range(len(pairs)) if got[i] != want[i]]
        assert not bad, f"{dt} {op}: " + ", ".join(
            f"{pairs[i][0]} by {pairs[i][1]} gave {wrapped(got[i], dt)}, not {wrapped(want[i], dt)}"
            for i in bad[:4]
        )
