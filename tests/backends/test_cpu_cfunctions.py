"""The generated C codecs translated to LLVM IR (``backends/cpu/cfunctions.py``), JIT-compiled
with llvmlite and checked bit for bit against ``tilevm.dtypes``: every code decoded, encode on the
inputs of the g++ check (tests/backends/test_codecs.py) plus a strided sweep of all float32
patterns; then C's semantics on small hand-written functions, and the refusals."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import llvmlite.binding as llvm
import numpy as np
import pytest
from llvmlite import ir

import tilevm as tv
from tests.backends.test_codecs import ALL, FAST, check_decode, check_decode_f16, encode_inputs
from tilevm.backends.codecs import (
    CFunction,
    decode_f16_function,
    decode_function,
    encode_function,
    f16_exact,
)
from tilevm.backends.cpu.cfunctions import define
from tilevm.errors import CompileError

I32, I64, F32, PTR = ir.IntType(32), ir.IntType(64), ir.FloatType(), ir.PointerType()

llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
_LOOP = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


def _loop(module: ir.Module, name: str, fn: ir.Function) -> None:
    """``void name(<param>* in, <ret>* out, i64 n)``: ``out[i] = fn(in[i])``."""
    (in_ty,), out_ty = fn.function_type.args, fn.function_type.return_type
    run = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64]), name)
    src, dst, n = run.args
    entry, body, done = (run.append_basic_block(s) for s in ("entry", "body", "done"))
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed(">", n, I64(0)), body, done)
    b.position_at_end(body)
    i = b.phi(I64)
    x = b.load(b.gep(src, [i], inbounds=True, source_etype=in_ty), typ=in_ty)
    b.store(b.call(fn, [x]), b.gep(dst, [i], inbounds=True, source_etype=out_ty))
    step = b.add(i, I64(1))
    i.add_incoming(I64(0), entry)
    i.add_incoming(step, body)
    b.cbranch(b.icmp_signed("<", step, n), body, done)
    b.position_at_end(done)
    b.ret_void()


class Jit:
    """Translated C functions, each behind an array loop, in one JIT-compiled module: optimized
    as the CPU backend will (O3 pipeline, host CPU) or not at all."""

    def __init__(self, functions: list[CFunction], optimize: bool = True) -> None:
        module = ir.Module("cfunctions")
        self.types: dict[str, tuple[type, type]] = {}
        for cf in functions:
            fn = define(module, cf)
            assert define(module, cf) is fn  # defined once
            _loop(module, f"run_{cf.name}", fn)
            (arg,), ret = fn.function_type.args, fn.function_type.return_type
            self.types[cf.name] = tuple(np.float32 if t == F32 else np.uint32 for t in (arg, ret))
        tm = llvm.Target.from_default_triple().create_target_machine(
            cpu=llvm.get_host_cpu_name(),
            features=llvm.get_host_cpu_features().flatten(),
            opt=3 if optimize else 0,
            jit=True,
        )
        mod = llvm.parse_assembly(str(module))
        mod.verify()
        if optimize:
            pto = llvm.create_pipeline_tuning_options(speed_level=3)
            pb = llvm.create_pass_builder(tm, pto)
            pb.getModulePassManager().run(mod, pb)
        self.engine = llvm.create_mcjit_compiler(mod, tm)
        self.engine.finalize_object()
        self.loops: dict[str, Callable[..., None]] = {}

    def __call__(self, name: str, x: np.ndarray) -> np.ndarray:
        in_dtype, out_dtype = self.types[name]
        x = np.ascontiguousarray(x.astype(in_dtype) if x.dtype.kind == "f" else x.view(in_dtype))
        out = np.empty(x.shape, out_dtype)
        if name not in self.loops:
            address = self.engine.get_function_address(f"run_{name}")
            self.loops[name] = _LOOP(address)
        self.loops[name](x.ctypes.data, out.ctypes.data, x.size)
        return out


class JitCodecs:
    """The codecs of some types behind the interface of test_codecs' checks."""

    def __init__(self, types: list[tv.DataType], optimize: bool = True) -> None:
        functions = []
        for dt in types:
            functions += [decode_function(dt), encode_function(dt)]
            functions += [decode_f16_function(dt)] if f16_exact(dt) else []
        self.jit = Jit(functions, optimize)

    def decode(self, dt: tv.DataType, codes: np.ndarray) -> np.ndarray:
        return self.jit(decode_function(dt).name, codes.astype(np.uint32))

    def encode(self, dt: tv.DataType, x: np.ndarray) -> np.ndarray:
        return self.jit(encode_function(dt).name, x.astype(np.float32))

    def decode_f16(self, dt: tv.DataType, codes: np.ndarray) -> np.ndarray:
        return self.jit(decode_f16_function(dt).name, codes.astype(np.uint32))


_LIBRARIES: dict[str, JitCodecs] = {}


def _library(key: str, types: list[tv.DataType], optimize: bool) -> JitCodecs:
    if key not in _LIBRARIES:
        _LIBRARIES[key] = JitCodecs(types, optimize)
    return _LIBRARIES[key]


def check_encode(lib: JitCodecs, dt: tv.DataType, x: np.ndarray) -> None:
    theirs = dt.encode(x, overflow="default").astype(np.uint32)
    ours = lib.encode(dt, x)
    bad = np.flatnonzero(ours != theirs)
    assert bad.size == 0, (
        f"{dt}: encode of {x[bad[0]]!r} (bits {x.view(np.uint32)[bad[0]]:#010x}) gives "
        f"{ours[bad[0]]:#x}, expected {theirs[bad[0]]:#x} ({bad.size} inputs differ)"
    )


def sweep(rng: np.random.Generator, stride: int) -> np.ndarray:
    """Every ``stride``-th float32 pattern from a random start: all signs, binades, NaNs."""
    start = int(rng.integers(stride))
    return np.arange(start, 1 << 32, stride, dtype=np.uint64).astype(np.uint32).view(np.float32)


# ----- the codecs -----------------------------------------------------------------------------


@pytest.mark.parametrize("dt", FAST, ids=str)
def test_translated_codecs_are_exact(dt: tv.DataType, rng: np.random.Generator) -> None:
    lib = _library("fast", FAST, optimize=True)
    check_decode(lib, dt)
    check_encode(lib, dt, np.concatenate([encode_inputs(dt, rng), sweep(rng, 1 << 12)]))
    if f16_exact(dt):
        check_decode_f16(lib, dt)


# Every type: unoptimized (no passes, codegen at -O0), the translation as it stands, and fast to
# build (~1 s). The reference encoder on the boundary inputs of every type takes longer.


def test_translated_decoders_are_exact_for_every_float_type() -> None:
    lib = _library("all", ALL, optimize=False)
    for dt in ALL:
        check_decode(lib, dt)
        if f16_exact(dt):
            check_decode_f16(lib, dt)


@pytest.mark.slow
def test_translated_encoders_are_exact_for_every_float_type(rng: np.random.Generator) -> None:
    lib = _library("all", ALL, optimize=False)
    for dt in ALL:
        check_encode(lib, dt, encode_inputs(dt, rng))


def test_define_is_idempotent_internal_and_always_inlined() -> None:
    module = ir.Module("m")
    dt = tv.dtypes.f8e4m3fn
    fn = define(module, decode_function(dt))
    assert define(module, decode_function(dt)) is fn
    assert fn.name == "tv_decode_f8e4m3fn" and fn.linkage == "internal"
    assert "alwaysinline" in fn.attributes
    assert str(fn.function_type) == "float (i32)"
    assert str(define(module, encode_function(dt)).function_type) == "i32 (float)"
    llvm.parse_assembly(str(module)).verify()
    other = ir.Module("n")
    ir.Function(other, ir.FunctionType(I32, [I32]), "tv_decode_f8e4m3fn")
    with pytest.raises(CompileError, match="already declared"):
        define(other, decode_function(dt))


# ----- C's semantics on small functions -------------------------------------------------------


def _c(name: str, signature: str, body: str) -> CFunction:
    ret, param = signature.split(" ", 1)
    lines = "\n".join(f"    {line.strip()}" for line in body.strip().splitlines())
    source = f"// {name}\n/* a test */\nTV_INLINE {ret} {name}({param}) {{\n{lines}\n}}\n"
    return CFunction(name, source)


U = np.uint32
SEMANTICS = [
    # signed >> is arithmetic, unsigned >> logical
    (_c("sh", "uint32_t uint32_t x", "return (uint32_t)((int32_t)x >> 3) ^ (x >> 3);"),
     lambda x: (x.view(np.int32) >> 3).view(U) ^ (x >> 3)),
    # literal types: hex 0x7fffffff and decimal are int, hex 0x80000000 is unsigned
    (_c("lit", "uint32_t uint32_t x", """
        int32_t i = (int32_t)x;
        return (i < 0x7fffffff) | ((i < 0x80000000) << 1) | ((i < 2147483647) << 2)
            | ((-1 < x) << 3) | ((i < -1) << 4);"""),
     lambda x: ((x.view(np.int32) < 0x7FFFFFFF) | ((x < 0x80000000) << 1)
                | ((x.view(np.int32) < 0x7FFFFFFF) << 2) | ((x.view(np.int32) < -1) << 4)
                ).astype(U)),
    # precedence, ?: (right-associative), && || !
    (_c("logic", "uint32_t uint32_t x", """
        uint32_t y = x & 0xffu;
        return y > 100u && y < 200u ? 1u : !y || y == 5u ? 2u : y + 2u * 3u << 1 | 1u;"""),
     lambda x: (lambda y: np.where((y > 100) & (y < 200), 1, np.where((y == 0) | (y == 5), 2,
                ((y + 6) << 1) | 1)).astype(U))(x & 0xFF)),
    # C's precedence between the levels, left associativity within one
    (_c("prec", "uint32_t uint32_t x", """
        return (x & 3u == 3u) + (x << 1u + 2u) + (x | 5u ^ 6u) * 7u + (x ^ 5u & 6u)
            + (1u == x < 5u) + (x - 1u - 2u) + (x < 3u || x > 5u && x > 100u);"""),
     lambda x: (x & 1) + (x << 3) + (x | 3) * 7 + (x ^ 4) + (x < 5).astype(U) + (x - 3)
     + ((x < 3) | ((x > 5) & (x > 100))).astype(U)),
    # compound assignment rebinds; unsigned arithmetic wraps; unary - and ~
    (_c("assign", "uint32_t uint32_t x", """
        uint32_t y = x; y |= 1u; y <<= 2; y ^= 0xfu; y -= 3u; y *= 5u; y &= 0xfffffu;
        y += 7u; y >>= 1; return y + -x + ~x;"""),
     lambda x: (((((((x | 1) << 2) ^ 15) - 3) * 5 & 0xFFFFF) + 7) >> 1) + (U(0) - x) + ~x),
    # int -> float is sitofp, unsigned -> float uitofp; float * int converts the int
    (_c("tofloat", "float uint32_t x", "return (float)x + (float)(int32_t)x * 2.0f - (int32_t)x;"),
     lambda x: (x.astype(np.float32) + x.view(np.int32).astype(np.float32) * np.float32(2))
     - x.view(np.int32).astype(np.float32)),
    # float comparisons: a NaN is unordered, != holds for it; !x tests against zero
    (_c("nan", "uint32_t float x", """
        return (x != x) | ((x == x) << 1) | ((x < 1.5f) << 2) | (!x << 3) | ((x >= -x) << 4)
            | ((x && 1) << 5) | ((x ? 1 : 0) << 6);"""),
     lambda x: ((x != x).astype(U) | ((x == x) << 1) | ((x < 1.5) << 2) | ((x == 0) << 3)
                | ((x >= -x) << 4) | ((x != 0) << 5) | ((x != 0) << 6)).astype(U)),
    # float -> int truncates (fptosi / fptoui); the bit-cast macros convert their argument
    (_c("toint", "int32_t float x", """
        float y = x > -1000.0f && x < 1000.0f ? x : 0.0f;
        return (int32_t)y - (int32_t)(uint32_t)(y * y) + (int32_t)TV_FLOAT_TO_BITS(-2)
            + (int32_t)TV_BITS_TO_FLOAT(0x40400000u);"""),
     lambda x: (lambda y: (y.astype(np.int32) - (y * y).astype(U).astype(np.int32)
                           - 0x40000000 + 3).view(U))(
         np.where((x > -1000) & (x < 1000), x, np.float32(0)).astype(np.float32))),
]  # fmt: skip


def test_c_semantics(rng: np.random.Generator) -> None:
    jit = Jit([cf for cf, _ in SEMANTICS], optimize=False)
    ints = np.concatenate(
        [rng.integers(0, 1 << 32, 4096, dtype=np.uint64), np.arange(-300, 300) % (1 << 32)]
    ).astype(U)
    floats = np.concatenate(
        [
            rng.uniform(-2000, 2000, 4096).astype(np.float32),
            np.float32([0.0, -0.0, 1.5, -1.5, 1.0, np.inf, -np.inf, np.nan, -np.nan, 999.9]),
        ]
    )
    for cf, reference in SEMANTICS:
        x = floats if "(float x)" in cf.source else ints
        with np.errstate(all="ignore"):
            expected = np.asarray(reference(x))
        got = jit(cf.name, x)
        assert np.array_equal(got.view(U), expected.view(U)), (
            cf.name,
            x[got.view(U) != expected.view(U)][:4],
        )


def test_the_translation_is_one_block_of_selects() -> None:
    module = ir.Module("m")
    fn = define(module, encode_function(tv.dtypes.f6e3m2fn))
    assert len(fn.blocks) == 1 and "select" in str(module) and "br " not in str(module)


# ----- refusals -------------------------------------------------------------------------------

REFUSED = [
    ("uint32_t uint32_t x", "uint32_t s = 0u; for (s = 0u; s < x; s = s + 1u) x = x; return s;",
     "statement starting with 'for'"),
    ("uint32_t uint32_t x", "if (x) return 1u; return 0u;", "statement starting with 'if'"),
    ("uint32_t uint32_t x", "return foo(x);", r"the call foo\(\)"),
    ("uint32_t uint32_t x", "return x / 3u;", "'/' where ';' belongs"),
    ("uint32_t uint32_t x", "return x % 3u;", "'%' where ';' belongs"),
    ("uint32_t uint32_t x", "return x[0];", "'\\[' where ';' belongs"),
    ("uint32_t float x", "return (uint32_t)(x * 0.5);", "float literal '0.5'"),
    ("uint32_t float x", "return (uint32_t)(x * 0.1f);", "float literal '0.1f'"),
    ("uint32_t uint32_t x", "return x + 4294967296u;", "integer literal '4294967296u'"),
    ("uint32_t uint32_t x", "return x + 2147483648;", "integer literal '2147483648'"),
    ("uint32_t uint32_t x", "return x + 017u;", "integer literal '017u'"),
    ("uint32_t uint32_t x", "return x + 1ul;", "integer literal '1ul'"),
    ("uint32_t uint32_t x", "uint64_t y = x; return y;", "statement starting with 'uint64_t'"),
    ("uint32_t uint32_t x", "return (int)x;", "'int' \\(undeclared\\)"),
    ("uint32_t uint32_t x", "return y;", "'y' \\(undeclared\\)"),
    ("uint32_t uint32_t x", "uint32_t x = 1u; return x;", "second declaration of 'x'"),
    ("uint32_t uint32_t x", "x++; return x;", "statement starting with 'x'"),
    ("uint32_t uint32_t x", "uint32_t y = x;", "does not end in a return"),
    ("uint32_t uint32_t x", "return x; x = 1u;", "'x' where '}' belongs"),
    ("uint32_t float x", "return TV_FLOAT_TO_BITS(x << 1);", "'<<' on a float"),
    ("uint32_t float x", "return TV_FLOAT_TO_BITS(~x);", "'~' of a float"),
    ("double double x", "return x;", "the type 'double'"),
    ("uint32_t uint32_t x", "return x ? : 1u;", "':'"),
    ("uint32_t uint32_t x", '#define Y 1\nreturn x;', "statement starting with '#'"),
]  # fmt: skip


@pytest.mark.parametrize(("signature", "body", "match"), REFUSED, ids=[r[1] for r in REFUSED])
def test_constructs_outside_the_subset_are_refused(signature: str, body: str, match: str) -> None:
    cf = _c("tv_f", signature, body)
    with pytest.raises(CompileError, match=match) as info:
        define(ir.Module("m"), cf)
    assert info.value.code == "cfunction-subset"
    assert "tv_f: " in str(info.value) and "line " in str(info.value)


def test_the_header_must_be_the_generators() -> None:
    good = decode_function(tv.dtypes.f4e2m1fn)
    for source, match in [
        (good.source.replace("TV_INLINE ", "static inline "), "'static' where 'TV_INLINE'"),
        (good.source.replace(good.name, "tv_other"), f"not named {good.name}"),
        (good.source.replace("uint32_t code)", "uint32_t code, uint32_t)"), "'\\)' where a name"),
    ]:
        with pytest.raises(CompileError, match=match):
            define(ir.Module("m"), CFunction(good.name, source))
