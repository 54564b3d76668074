"""Lowering of elementwise instructions, casts, constants, index tiles and views.

Every elementwise result is computed slot by slot: operands decoded to their compute type, one
operation, one rounding (or wrap) back to the result dtype. Broadcast operands were given the
layout that puts the needed element in the same thread (``broadcast_layout``), so reading them
is a compile-time slot mapping.
"""

from __future__ import annotations

from functools import lru_cache

from tilevm import dtypes as dts
from tilevm.dtypes import DataType
from tilevm.ir.nodes import Instr, Literal, Operand
from tilevm.ir.types import TileType
from tilevm.layouts import RegisterLayout
from tilevm.lowering import thread_ir as t
from tilevm.lowering.conversions import convert_value
from tilevm.lowering.exprs import broadcast_project, compute_type, const, coords, slot_map
from tilevm.lowering.lower import Lowerer, lowers
from tilevm.lowering.lower_cast import lower_packed_cast
from tilevm.lowering.lower_half2 import lower_half_pairs

_BIN = {"add": "add", "sub": "sub", "mul": "mul", "div": "div", "and": "and", "or": "or",
        "xor": "xor"}  # fmt: skip
_CALL = {"floordiv": "floordiv", "mod": "mod", "pow": "pow", "maximum": "max", "minimum": "min"}


@lru_cache(maxsize=1024)
def _broadcast_map(out: RegisterLayout, src: RegisterLayout):
    return slot_map(out, src, broadcast_project(out.shape, src.shape))


def operand_at(lw: Lowerer, op: Operand, out: RegisterLayout, i: t.Expr) -> t.Expr:
    """Operand ``op`` (compute type) at slot ``i`` of a result of layout ``out``."""
    if isinstance(op, Literal) or not isinstance(op.type, TileType):
        return lw.scalar(op)
    layout = op.type.layout
    return lw.element(op, i if layout == out else _broadcast_map(out, layout)(i))


def elementwise(lw: Lowerer, ins: Instr, compute) -> None:
    """``out[i] = encode(compute(operands at i))``, for tiles and scalars alike."""
    out = ins.out
    if not isinstance(out.type, TileType):
        lw.define_scalar(out, compute([lw.scalar(a) for a in ins.args]))
        return
    name = lw.declare_tile(out)
    layout = out.type.layout

    def slot(i: t.Expr) -> None:
        value = compute([operand_at(lw, a, layout, i) for a in ins.args])
        lw.emit(t.Set(t.Elem(name, i, out.type.dtype), t.Encode(value, out.type.dtype)))

    lw.slots(layout.local_size, slot)


def _dtype(op: Operand) -> DataType:
    return op.dtype if isinstance(op, Literal) else op.type.dtype


def _literal_as(expr: t.Expr, ct: DataType) -> t.Expr:
    return t.Const(expr.value, ct) if isinstance(expr, t.Const) else expr


def approx_name(op: str, ct: DataType) -> str:
    """The thread-IR call of ``op``'s approximate form: ``approx_exp`` and friends exist for f32
    (what GPUs' fast instructions compute; narrower floats compute in f32 too); f64 keeps the
    exact function, which approx never makes worse. Every renderer spells ``approx_*`` calls:
    the CPU with the exact function, GPUs with their fast instructions."""
    return f"approx_{op}" if ct == dts.f32 else op


@lowers("binary")
def _binary(lw: Lowerer, ins: Instr) -> None:
    if lower_half_pairs(lw, ins):  # halves and bfloats: one packed operation per register
        return
    dtype = ins.out.type.dtype
    ct = compute_type(dtype)
    op = ins.attr("op")

    def compute(args: list[t.Expr]) -> t.Expr:
        a, b = (_literal_as(x, ct) for x in args)
        if op in ("add", "sub", "mul") and ct.is_integer:
            return t.Bin("w" + op, a, b, ct)  # integers wrap (C's signed overflow would not)
        if op == "div" and ins.attr("approx") and ct == dts.f32:  # f64 divides exactly
            return t.Call("approx_div", (a, b), ct)
        if op in _BIN:
            return t.Bin(_BIN[op], a, b, ct)
        if op in _CALL:
            return t.Call(_CALL[op], (a, b), ct)
        assert op in ("lshift", "rshift"), op
        return t.Call("shl" if op == "lshift" else "shr", (a, b, const(dtype.bits)), ct)

    elementwise(lw, ins, compute)


@lowers("compare")
def _compare(lw: Lowerer, ins: Instr) -> None:
    ct = compute_type(_dtype(ins.args[0]))
    op = ins.attr("op")
    elementwise(lw, ins, lambda args: t.Bin(op, *(_literal_as(x, ct) for x in args), dts.u1))


@lowers("unary")
def _unary(lw: Lowerer, ins: Instr) -> None:
    op = ins.attr("op")
    src = compute_type(_dtype(ins.args[0]))
    ct = compute_type(ins.out.type.dtype)

    def compute(args: list[t.Expr]) -> t.Expr:
        (a,) = args
        if op in ("neg", "invert"):
            return t.Un(op, a, ct)
        if op == "not":
            return t.Bin("eq", a, t.Const(0, src), dts.u1)
        if op == "abs":
            return t.Call("abs", (a,), ct)
        fn = approx_name(op, ct) if ins.attr("approx") else op
        return t.Call(fn, (t.Convert(a, ct) if src != ct else a,), ct)

    elementwise(lw, ins, compute)


@lowers("where")
def _where(lw: Lowerer, ins: Instr) -> None:
    ct = compute_type(ins.out.type.dtype)

    def compute(args: list[t.Expr]) -> t.Expr:
        cond, a, b = args
        return t.Select(
            t.Bin("ne", cond, const(0), dts.u1), _literal_as(a, ct), _literal_as(b, ct), ct
        )

    elementwise(lw, ins, compute)


@lowers("cast")
def _cast(lw: Lowerer, ins: Instr) -> None:
    if lower_packed_cast(lw, ins):  # fields of a view: magic numbers on the words beneath
        return
    src, dst = _dtype(ins.args[0]), ins.out.type.dtype
    elementwise(lw, ins, lambda args: convert_value(args[0], src, dst))


@lowers("full")
def _full(lw: Lowerer, ins: Instr) -> None:
    src, dst = _dtype(ins.args[0]), ins.out.type.dtype
    elementwise(lw, ins, lambda args: convert_value(args[0], src, dst))


@lowers("arange")
def _arange(lw: Lowerer, ins: Instr) -> None:
    out = ins.out
    name = lw.declare_tile(out)
    ct = compute_type(out.type.dtype)

    def slot(i: t.Expr) -> None:
        (index,) = coords(out.type.layout, lw.tid, i)
        value = t.Bin("add", index, const(ins.attr("start")), dts.i32)
        value = value if ct == dts.i32 else t.Convert(value, ct)
        lw.emit(t.Set(t.Elem(name, i, out.type.dtype), t.Encode(value, out.type.dtype)))

    lw.slots(out.type.layout.local_size, slot)


@lowers("reshape", "transpose")
def _same_registers(lw: Lowerer, ins: Instr) -> None:
    """The layouts line up (inference made sure): the same registers seen another way."""
    lw.names.of[ins.out] = lw.name(ins.args[0])


@lowers("view")
def _view(lw: Lowerer, ins: Instr) -> None:
    """Each thread's slots are one bit string, slot 0 in the lowest bits; the result's slots cut
    it anew. Compile-time shifts and masks (the CUDA compiler turns them into prmt/lop3)."""
    src, out = ins.args[0], ins.out
    a, b = src.type.dtype.bits, out.type.dtype.bits
    lw.views[out] = (src, lw.reads_unchanged(src))
    if src.type.dtype == out.type.dtype and src not in lw.carried:
        lw.names.of[out] = lw.name(src)  # a relabelling: the very same registers
        return
    name = lw.declare_tile(out)
    word = dts.u64 if max(a, b) > 32 else dts.u32
    n_out = out.type.layout.local_size
    in_name = lw.name(src)

    def piece(slot: int, lo: int, width: int, at: int) -> t.Expr:
        bits = t.ToBits(t.Elem(in_name, const(slot), src.type.dtype), word)
        if lo:
            bits = t.Bin("shr", bits, const(lo), word)
        if width < a:
            bits = t.Bin("and", bits, t.Const((1 << width) - 1, word), word)
        return t.Bin("shl", bits, const(at), word) if at else bits

    for j in range(n_out):
        value: t.Expr | None = None
        start, at = j * b, 0
        while at < b:
            slot, lo = divmod(start + at, a)
            width = min(a - lo, b - at)
            part = piece(slot, lo, width, at)
            value = part if value is None else t.Bin("or", value, part, word)
            at += width
        lw.emit(t.Set(t.Elem(name, const(j), out.type.dtype), t.FromBits(value, out.type.dtype)))
