"""Hints for a name that does not exist: the nearest names the owner has (difflib), and for
names well known from numpy, PyTorch and Triton that tilevm spells differently or does not
have, how to write them."""

from __future__ import annotations

import difflib
from typing import Any

# name -> how to write it in tilevm (x, y: tiles)
WELL_KNOWN = {
    "relu": "tv.maximum(x, 0.0)",
    "leaky_relu": "tv.where(x > 0, x, 0.01 * x)",
    "gelu": "0.5 * x * (1.0 + tv.erf(x * 0.7071067811865476)), or its tanh form with tv.tanh",
    "silu": "x * tv.sigmoid(x)",
    "swish": "x * tv.sigmoid(x)",
    "softplus": "tv.maximum(x, 0.0) + tv.log1p(tv.exp(-tv.abs(x)))",
    "softmax": "e = tv.exp(x - tv.max(x, axis=1, keepdims=True)); "
    "e / tv.sum(e, axis=1, keepdims=True)",
    "log_softmax": "s = x - tv.max(x, axis=1, keepdims=True); "
    "s - tv.log(tv.sum(tv.exp(s), axis=1, keepdims=True))",
    "mean": "tv.sum(x, axis) / n (n: the count along axis)",
    "clamp": "tv.minimum(tv.maximum(x, lo), hi)",
    "clip": "tv.minimum(tv.maximum(x, lo), hi)",
    "square": "x * x",
    "reciprocal": "tv.fdiv(1.0, x) (approx=True for the fast GPU reciprocal)",
    "div": "x / y, or tv.fdiv(x, y, approx=True) for the fast GPU division",
    "fast_dividef": "tv.fdiv(x, y, approx=True)",
    "fast_expf": "tv.exp(x, approx=True)",
    "power": "tv.pow(x, y) for floats, x ** n for integers",
    "arctan": "tv.atan(x)",
    "exp10": "tv.exp2(x * 3.321928094887362)",
    "log10": "tv.log2(x) * 0.3010299956639812",
    "sign": "tv.where(x > 0, 1.0, tv.where(x < 0, -1.0, 0.0))",
    "matmul": "tv.dot(a, b, acc)",
    "select": "tv.where(cond, a, b)",
    "astype": "x.to(dtype)",
    "zeros_like": "tv.zeros(x.shape, x.dtype)",
    "full_like": "tv.full(x.shape, value, x.dtype)",
    "program_id": "tv.block_id(axis)",
    "num_programs": "tv.num_blocks(axis)",
    "debug_barrier": "tv.sync()",
    "syncthreads": "tv.sync()",
    "barrier": "tv.sync()",
    "device_print": "tv.print(...)",
    "static_assert": "assert on compile-time values (a check when the kernel compiles)",
    "float32": "tv.f32",
    "float16": "tv.f16",
    "bfloat16": "tv.bf16",
    "float64": "tv.f64",
    "int8": "tv.i8",
    "int16": "tv.i16",
    "int32": "tv.i32",
    "int64": "tv.i64",
    "uint8": "tv.u8",
}


def public_names(owner: Any) -> list[str]:
    """A module's ``__all__`` where it has one, else what ``dir`` lists without a ``_``."""
    names = getattr(owner, "__all__", None)
    if names is None:
        names = [n for n in dir(owner) if not n.startswith("_")]
    return [str(n) for n in names]


def nearest(name: str, candidates: list[str], count: int = 3) -> list[str]:
    """The candidates closest to ``name`` (a typo, another capitalization, a near spelling)."""
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=count, cutoff=0.6)
    return [lowered[c] for c in close]


def missing_attribute_hint(
    name: str, candidates: list[str], prefix: str, well_known: bool = False
) -> str | None:
    """How to fix ``prefix.name``, which is not among ``candidates``; ``well_known``: the owner
    is ``tv``, so names from other libraries get their tilevm spelling. None without a
    suggestion."""
    if well_known and name in WELL_KNOWN:
        return f"tilevm has no {name}: write {WELL_KNOWN[name]}"
    close = [c for c in nearest(name, candidates) if c != name]
    if close:
        return "did you mean " + " or ".join(f"{prefix}.{c}" for c in close) + "?"
    if well_known:
        return "docs/language.md lists the kernel language's instructions"
    return None


__all__ = ["WELL_KNOWN", "missing_attribute_hint", "nearest", "public_names"]
