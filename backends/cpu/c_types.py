"""The C types the thread IR's values have, as LLVM types, and C's conversions between them.

The thread IR is written against C semantics (the CUDA, HIP and SYCL renderers print it as C):
a value's type follows from the node (storage types for elements and named scalars, compute
types for arithmetic) and every assignment converts implicitly. The LLVM renderer tracks the
same C type for each value and converts as C would, so the two renderings agree by construction.
Halves and bfloats are held as their 16-bit patterns; converting one is a value conversion
through float, as ``__half``'s and ``__nv_bfloat16``'s conversions are.
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from tilevm.dtypes import DataType

I1, I8, I16, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
F32, F64, F16 = ir.FloatType(), ir.DoubleType(), ir.HalfType()
PTR = ir.PointerType()

LLVM = {"i8": I8, "u8": I8, "i16": I16, "u16": I16, "i32": I32, "u32": I32, "i64": I64,
        "u64": I64, "bool": I1, "float": F32, "double": F64, "half": I16, "bfloat": I16,
        "ptr": PTR}  # fmt: skip
SIZE = {"i8": 1, "u8": 1, "i16": 2, "u16": 2, "i32": 4, "u32": 4, "i64": 8, "u64": 8, "bool": 1,
        "float": 4, "double": 8, "half": 2, "bfloat": 2, "ptr": 8}  # fmt: skip


def intrinsic(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    """An LLVM intrinsic by its full signature (overloaded on the return and argument types)."""
    overloads = [ret] if name.endswith(".sat") else []
    overloads += [args[0]]
    return module.declare_intrinsic(name, overloads, ir.FunctionType(ret, args))


def container_bits(bits: int) -> int:
    return 8 if bits <= 8 else 16 if bits <= 16 else 32 if bits <= 32 else 64


def storage(dt: DataType) -> str:
    """How an element is held in registers and shared memory (``storage_type`` in C)."""
    if dt.is_float:
        named = {"f32": "float", "f64": "double", "f16": "half", "bf16": "bfloat"}
        return named.get(dt.name, "u8" if dt.bits <= 8 else "u16")
    return ("i" if dt.kind == "int" else "u") + str(container_bits(dt.bits))


def memory(dt: DataType) -> str:
    """Element type of a tensor parameter: sub-byte tensors are bytes of packed bits."""
    return storage(dt) if dt.bits in (8, 16, 32, 64) else "u8"


def compute(dt: DataType) -> str:
    named = {"f32": "float", "f64": "double", "i32": "i32", "u32": "u32", "i64": "i64",
             "u64": "u64", "u1": "bool"}  # fmt: skip
    return named.get(dt.name) or storage(dt)


def is_float(c: str) -> bool:
    return c in ("float", "double", "half", "bfloat")


def is_signed(c: str) -> bool:
    return c.startswith("i")


def bits(c: str) -> int:
    return SIZE[c] * 8 if c != "bool" else 1


@dataclass(frozen=True)
class Value:
    """An LLVM value with the C type it stands for."""

    v: ir.Value
    c: str


def common(a: str, b: str) -> str:
    """C's usual arithmetic conversions of two operand types."""
    for f in ("double", "float"):
        if f in (a, b):
            return f
    if "half" in (a, b) or "bfloat" in (a, b):
        return "float"
    wide = [c for c in (a, b) if c in ("i64", "u64")]
    if wide:
        return "u64" if "u64" in (a, b) else "i64"
    return "u32" if "u32" in (a, b) else "i32"


def convert(b: ir.IRBuilder, x: Value, dst: str) -> Value:
    """``(dst)x`` with C's meaning (float -> int saturates, as the GPUs' conversions do)."""
    src = x.c
    if src == dst:
        return x
    if src in ("half", "bfloat"):
        return convert(b, Value(half_to_float(b, x), "float"), dst)
    if dst in ("half", "bfloat"):
        f = convert(b, x, "float").v
        return Value(float_to_half(b, f) if dst == "half" else float_to_bfloat(b, f), dst)
    v = x.v
    if dst == "bool":
        if is_float(src):
            return Value(b.fcmp_unordered("!=", v, ir.Constant(v.type, 0.0)), dst)
        return Value(b.icmp_unsigned("!=", v, ir.Constant(v.type, 0)), dst)
    to = LLVM[dst]
    if is_float(dst):
        if is_float(src):
            return Value(b.fpext(v, to) if bits(dst) > bits(src) else b.fptrunc(v, to), dst)
        if is_signed(src):
            return Value(b.sitofp(v, to), dst)
        return Value(b.uitofp(v, to), dst)
    if is_float(src):
        sat = "llvm.fptosi.sat" if is_signed(dst) else "llvm.fptoui.sat"
        fn = intrinsic(b.module, sat, to, [v.type])
        return Value(b.call(fn, [v]), dst)
    if bits(dst) == bits(src):
        return Value(v, dst)
    if bits(dst) < bits(src):
        return Value(b.trunc(v, to), dst)
    return Value(b.sext(v, to) if is_signed(src) else b.zext(v, to), dst)


def half_to_float(b: ir.IRBuilder, x: Value) -> ir.Value:
    if x.c == "half":
        return b.fpext(b.bitcast(x.v, F16), F32)
    return b.bitcast(b.shl(b.zext(x.v, I32), ir.Constant(I32, 16)), F32)


def float_to_half(b: ir.IRBuilder, f: ir.Value) -> ir.Value:
    return b.bitcast(b.fptrunc(f, F16), I16)  # round to nearest even


def float_to_bfloat(b: ir.IRBuilder, f: ir.Value) -> ir.Value:
    """Round to nearest even; a NaN stays a (quiet) NaN with its sign."""
    u = b.bitcast(f, I32)
    odd = b.and_(b.lshr(u, ir.Constant(I32, 16)), ir.Constant(I32, 1))
    rounded = b.lshr(b.add(b.add(u, ir.Constant(I32, 0x7FFF)), odd), ir.Constant(I32, 16))
    quiet = b.or_(b.lshr(u, ir.Constant(I32, 16)), ir.Constant(I32, 0x40))
    nan = b.fcmp_unordered("uno", f, f)
    return b.trunc(b.select(nan, quiet, rounded), I16)


def const(c: str, value: int | float) -> Value:
    if is_float(c) and c in ("float", "double"):
        return Value(ir.Constant(LLVM[c], float(value)), c)
    if c == "bool":
        return Value(ir.Constant(I1, int(bool(value))), c)
    width = bits(c)
    return Value(ir.Constant(LLVM[c], int(value) % (1 << width)), c)
