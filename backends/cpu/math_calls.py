"""Float math functions in LLVM IR: LLVM's intrinsics where it has one, the C library (libm,
bound when the kernel is loaded or linked) for the others, and ``sigmoid`` written out.

The CPU computes the ``approx_*`` forms (``tv.exp(x, approx=True)``, ``tv.fdiv(..., approx=True)``)
exactly: approximate instructions are a GPU speed trade, and the exact value is within every
documented bound."""

from __future__ import annotations

from llvmlite import ir

from tilevm.backends.cpu.helpers import Helpers

INTRINSICS = ("exp", "exp2", "log", "log2", "sqrt", "sin", "cos", "floor", "ceil")  # llvm.*
LIBM = ("tan", "atan", "tanh", "erf", "log1p", "expm1")  # tanf / tan, erff / erf, ...
EXACT_FORM = {"approx_exp": "exp", "approx_exp2": "exp2", "approx_log2": "log2",
              "approx_rsqrt": "rsqrt"}  # fmt: skip
UNARY = frozenset((*INTRINSICS, *LIBM, "rsqrt", "sigmoid", *EXACT_FORM))


def unary_math(b: ir.IRBuilder, helpers: Helpers, fn: str, x: ir.Value, c: str) -> ir.Value:
    """``fn(x)`` for ``x`` of the C type ``c`` ("float" or "double")."""
    fn = EXACT_FORM.get(fn, fn)
    one = ir.Constant(x.type, 1.0)
    if fn == "rsqrt":
        return b.fdiv(one, b.call(helpers.intrinsic("llvm.sqrt", c), [x]))
    if fn == "sigmoid":
        return _sigmoid(b, helpers, x, c)
    if fn in LIBM:
        return b.call(helpers.libm(fn + "f" if c == "float" else fn, x.type), [x])
    return b.call(helpers.intrinsic(f"llvm.{fn}", c), [x])


def _sigmoid(b: ir.IRBuilder, helpers: Helpers, x: ir.Value, c: str) -> ir.Value:
    """``1 / (1 + e)`` for x >= 0 and ``e / (1 + e)`` below, with ``e = exp(-|x|)`` in (0, 1]:
    no overflow, 0 and 1 at the infinities, nan only for nan."""
    one = ir.Constant(x.type, 1.0)
    e = b.call(helpers.intrinsic("llvm.exp", c), [b.fneg(b.call(helpers.intrinsic("llvm.fabs", c),
                                                                 [x]))])  # fmt: skip
    s = b.fdiv(one, b.fadd(one, e))
    return b.select(b.fcmp_ordered(">=", x, ir.Constant(x.type, 0.0)), s, b.fmul(e, s))


__all__ = ["UNARY", "unary_math"]
