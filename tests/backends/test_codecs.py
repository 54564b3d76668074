"""The generated C++ float codecs, compiled for the host with g++, against ``tilevm.dtypes`` on
whole domains: every code decoded, and for encode every value, every midpoint between
neighbours, their float32 neighbours, the overflow and underflow boundaries, the special values
and 2**16 random float32 patterns."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import tilevm as tv
from tests.dtypes.helpers import all_small_floats
from tilevm.backends.codecs import (
    HOST_PRELUDE,
    CFunction,
    codec_sources,
    decode_f16_function,
    decode_function,
    encode_function,
    f16_exact,
    needs_codec,
)

GXX = shutil.which("g++")

# The ml_dtypes floats, the tiny ones, 12-bit splits, and the corners of the generator: biases
# that need two multiplies (b-2) or make float32 subnormals normal codes (b140, b130), the
# lowest weight at 2**-149 (b147), exponent 8 with a finite top field (fnuz), zero-less fnu.
FAST_NAMES = [
    "f8e4m3fn",
    "f8e5m2",
    "f8e4m3fnuz",
    "f8e5m2fnuz",
    "f8e4m3b11fnuz",
    "f8e8m0fnu",
    "f8e3m4",
    "f8e4m3",
    "f4e2m1fn",
    "f6e2m3fn",
    "f6e3m2fn",
    "f3e1m1",
    "f5e2m2",
    "f6e3m2",
    "f12e5m6",
    "f12e4m7fnuz",
    "f12e6m5fn",
    "f12e7m5fnu",
    "f16",
    "bf16",
    "f16e8m7fnuz",
    "f16e8m7b130fnuz",
    "f9e8m0fn",
    "f9e8m0",
    "f8e4m3b-2fn",
    "f8e4m3b140fn",
    "f8e4m3b147",
    "f4e4m0b140fnu",
    "f2e2m0fnu",
    "f3e2m0",
    "f2e1m0fn",
    "f8e4m4fnu",
    "f16e1m15fnu",
    "f16e2m13fn",
]
FAST = [tv.dtypes.parse(name) for name in FAST_NAMES]
# Every float of up to 16 bits whose values float32 holds (the others have no codec).
ALL = [dt for dt in all_small_floats() if dt.value_dtype == np.float32]


def _require_gxx() -> str:
    if GXX is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("g++ is required in CI to compile and check the generated C++ codecs")
        pytest.skip("g++ not found: the generated C++ codecs cannot be compiled on this machine")
    return GXX


def _ident(dt: tv.DataType) -> str:
    return decode_function(dt).name.removeprefix("tv_decode_")


def _translation_unit(types: list[tv.DataType]) -> str:
    parts = [HOST_PRELUDE, "#include <stddef.h>"]
    for dt in types:
        ident = _ident(dt)
        functions = [decode_function(dt), encode_function(dt)]
        if f16_exact(dt):
            functions.append(decode_f16_function(dt))
        parts += [f.source for f in functions]
        parts.append(
            f'extern "C" void tvt_dec_{ident}(const uint32_t* in, float* out, size_t n)'
            f" {{ for (size_t i = 0; i < n; ++i) out[i] = tv_decode_{ident}(in[i]); }}\n"
            f'extern "C" void tvt_enc_{ident}(const float* in, uint32_t* out, size_t n)'
            f" {{ for (size_t i = 0; i < n; ++i) out[i] = tv_encode_{ident}(in[i]); }}"
        )
        if f16_exact(dt):
            parts.append(
                f'extern "C" void tvt_f16_{ident}(const uint32_t* in, uint32_t* out, size_t n)'
                f" {{ for (size_t i = 0; i < n; ++i) out[i] = tv_decode_{ident}_f16bits(in[i]); }}"
            )
    return "\n".join(parts) + "\n"


class CodecLibrary:
    """The generated codecs of some types, compiled into one shared library (a few translation
    units compiled in parallel) and called through ctypes."""

    def __init__(self, types: list[tv.DataType]) -> None:
        gxx = _require_gxx()
        self._dir = tempfile.TemporaryDirectory(prefix="tv_codecs_")
        work = Path(self._dir.name)
        jobs = max(1, min(8, os.cpu_count() or 1))
        chunks = [types[i::jobs] for i in range(jobs) if types[i::jobs]]
        flags = ["-O2", "-std=c++17", "-fPIC", "-Wall", "-Wextra", "-Werror"]

        def compile_one(index: int) -> Path:
            src, obj = work / f"codecs{index}.cpp", work / f"codecs{index}.o"
            src.write_text(_translation_unit(chunks[index]))
            cmd = [gxx, *flags, "-c", str(src), "-o", str(obj)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-4000:]
            return obj

        with ThreadPoolExecutor(len(chunks)) as pool:
            objects = list(pool.map(compile_one, range(len(chunks))))
        lib = work / "codecs.so"
        done = subprocess.run(
            [gxx, "-shared", "-o", str(lib), *map(str, objects)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-4000:]
        self._lib = ctypes.CDLL(str(lib))

    def _call(self, kind: str, dt: tv.DataType, x: np.ndarray, out_dtype: type) -> np.ndarray:
        fn = getattr(self._lib, f"tvt_{kind}_{_ident(dt)}")
        x = np.ascontiguousarray(x)
        out = np.empty(x.shape, out_dtype)
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        fn(x.ctypes.data, out.ctypes.data, x.size)
        return out

    def decode(self, dt: tv.DataType, codes: np.ndarray) -> np.ndarray:
        return self._call("dec", dt, codes.astype(np.uint32), np.float32)

    def encode(self, dt: tv.DataType, x: np.ndarray) -> np.ndarray:
        return self._call("enc", dt, x.astype(np.float32), np.uint32)

    def decode_f16(self, dt: tv.DataType, codes: np.ndarray) -> np.ndarray:
        return self._call("f16", dt, codes.astype(np.uint32), np.uint32)


_LIBRARIES: dict[str, CodecLibrary] = {}


def _library(key: str, types: list[tv.DataType]) -> CodecLibrary:
    if key not in _LIBRARIES:
        _LIBRARIES[key] = CodecLibrary(types)
    return _LIBRARIES[key]


# ----- inputs and checks ----------------------------------------------------------------------


def encode_inputs(dt: tv.DataType, rng: np.random.Generator) -> np.ndarray:
    """float32 inputs on and beside every rounding boundary of ``dt``, plus random patterns."""
    values = dt.decode(np.arange(1 << dt.bits)).astype(np.float64)
    mags = np.unique(np.abs(values[np.isfinite(values)]))
    mids = mags[:-1] / 2 + mags[1:] / 2
    top = float(dt.max)
    ulp = np.ldexp(1.0, int(np.floor(np.log2(top))) - dt.mantissa)  # top + ulp: next code
    tiny = float(dt.smallest_subnormal)
    extra = [top + ulp / 2, top + ulp, *(top * f for f in (1.0625, 1.125, 1.5, 2.0, 4.0, 1e10))]
    extra += [tiny / 2, tiny / 4, tiny * 0.75, tiny * 1.5, 2.0**-149, 2.0**-126, 3e38, 1.0]
    with np.errstate(over="ignore"):
        x = np.concatenate([mags, mids, extra]).astype(np.float32)
    x = x[np.isfinite(x)]
    x = np.concatenate([x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(0))])
    x = np.concatenate([x, -x, np.float32([np.finfo(np.float32).max, np.inf, 0.0])])
    x = np.concatenate([x, -x])
    specials = np.array(
        [0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF, 0xFFFFFFFF, 0x7FA00000],
        np.uint32,
    ).view(np.float32)
    noise = rng.integers(0, 1 << 32, 1 << 16, dtype=np.uint32).view(np.float32)
    return np.concatenate([x, specials, noise])


def check_decode(lib: CodecLibrary, dt: tv.DataType) -> None:
    codes = np.arange(1 << dt.bits, dtype=np.uint32)
    theirs = dt.decode(codes)
    ours = lib.decode(dt, codes)
    nan = np.isnan(theirs)
    assert np.array_equal(np.isnan(ours), nan), f"{dt}: NaN patterns differ"
    bad = np.flatnonzero(ours.view(np.uint32)[~nan] != theirs.view(np.uint32)[~nan])
    assert bad.size == 0, (
        f"{dt}: decode of code {codes[~nan][bad[0]]:#x} gives {ours[~nan][bad[0]]!r}, "
        f"expected {theirs[~nan][bad[0]]!r} ({bad.size} codes differ)"
    )


def check_encode(lib: CodecLibrary, dt: tv.DataType, rng: np.random.Generator) -> None:
    x = encode_inputs(dt, rng)
    theirs = dt.encode(x, overflow="default").astype(np.uint32)
    ours = lib.encode(dt, x)
    bad = np.flatnonzero(ours != theirs)
    assert bad.size == 0, (
        f"{dt}: encode of {x[bad[0]]!r} (bits {x.view(np.uint32)[bad[0]]:#010x}) gives "
        f"{ours[bad[0]]:#x}, expected {theirs[bad[0]]:#x} ({bad.size} inputs differ)"
    )


def check_decode_f16(lib: CodecLibrary, dt: tv.DataType) -> None:
    codes = np.arange(1 << dt.bits, dtype=np.uint32)
    values = dt.decode(codes)
    ours = lib.decode_f16(dt, codes)
    assert (ours >> 16 == 0).all()
    halves = ours.astype(np.uint16).view(np.float16)
    nan = np.isnan(values)
    assert np.array_equal(np.isnan(halves), nan), f"{dt}: NaN patterns differ"
    expected = values[~nan].astype(np.float16).view(np.uint16)
    bad = np.flatnonzero(ours[~nan] != expected)
    assert bad.size == 0, (
        f"{dt}: code {codes[~nan][bad[0]]:#x} gives half {ours[~nan][bad[0]]:#06x}, "
        f"expected {expected[bad[0]]:#06x} ({bad.size} codes differ)"
    )


# ----- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dt", FAST, ids=str)
def test_codecs_are_exact(dt: tv.DataType, rng: np.random.Generator) -> None:
    lib = _library("fast", FAST)
    check_decode(lib, dt)
    check_encode(lib, dt, rng)
    if f16_exact(dt):
        check_decode_f16(lib, dt)


def test_codecs_are_exact_for_every_float_type(rng: np.random.Generator) -> None:
    # ~360 types, one library: about 10 s on two cores, so not marked slow
    lib = _library("all", ALL)
    for dt in ALL:
        check_decode(lib, dt)
        check_encode(lib, dt, rng)
        if f16_exact(dt):
            check_decode_f16(lib, dt)


def test_f16_exact_types() -> None:
    exact = {dt.name for dt in FAST if f16_exact(dt)}
    for name in ("f8e4m3fn", "f8e5m2", "f8e4m3fnuz", "f8e5m2fnuz", "f8e4m3b11fnuz", "f4e2m1fn"):
        assert name in exact
    assert {"f6e2m3fn", "f6e3m2fn", "f8e3m4", "f8e4m3", "f16"} <= exact
    assert not {"f8e8m0fnu", "bf16", "f12e6m5fn", "f16e1m15fnu"} & exact
    with pytest.raises(tv.DtypeError, match="IEEE half"):
        decode_f16_function(tv.dtypes.f8e8m0fnu)


def test_every_float_type_has_a_codec_or_a_clear_refusal() -> None:
    for dt in all_small_floats():
        if dt.value_dtype == np.float32:
            assert encode_function(dt).source and decode_function(dt).source
            continue
        with pytest.raises(tv.DtypeError, match="float32") as info:
            decode_function(dt)
        assert info.value.code == "codec-range"


@pytest.mark.parametrize("name", ["f16e8m7fn", "f16e9m6", "f32", "f64", "i8", "u4"])
def test_types_without_a_float32_codec_are_refused(name: str) -> None:
    dt = tv.dtypes.parse(name)
    with pytest.raises(tv.DtypeError):
        decode_function(dt)
    with pytest.raises(tv.TilevmError):
        encode_function(dt)


def test_names_and_shape_of_the_generated_functions() -> None:
    dec, enc = decode_function(tv.dtypes.f6e3m2fn), encode_function(tv.dtypes.f6e3m2fn)
    assert isinstance(dec, CFunction)
    assert dec.name == "tv_decode_f6e3m2fn" and enc.name == "tv_encode_f6e3m2fn"
    assert "TV_INLINE float tv_decode_f6e3m2fn(uint32_t code)" in dec.source
    assert "TV_INLINE uint32_t tv_encode_f6e3m2fn(float x)" in enc.source
    assert decode_function(tv.dtypes.parse("f8e4m3b-2fn")).name == "tv_decode_f8e4m3b_2fn"
    for text in (dec.source, enc.source):
        assert "[" not in text and "math" not in text  # no tables, no libm


def test_needs_codec_and_codec_sources() -> None:
    d = tv.dtypes
    assert needs_codec(d.f6e3m2fn) and needs_codec(d.f8e8m0fnu)
    assert not any(needs_codec(t) for t in (d.f16, d.bf16, d.f32, d.f64, d.i4, d.u8))
    text = codec_sources([d.f8e4m3fn, d.i4, d.f16, d.f6e3m2fn, d.f8e4m3fn, d.bf16])
    assert text == codec_sources([d.f6e3m2fn, d.f8e4m3fn])
    assert text.count("tv_decode_f8e4m3fn(") == 1 and text.count("tv_encode_f6e3m2fn(") == 1
    assert text.index("tv_decode_f6e3m2fn") < text.index("tv_decode_f8e4m3fn")
    assert "f16(" not in text and "bf16" not in text
    assert codec_sources([]) == ""
