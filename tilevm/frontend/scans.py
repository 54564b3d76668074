"""Scans: ``tv.cumsum`` and ``tv.associative_scan``.

Both become one ``scan`` instruction along one axis of a tile. ``tv.associative_scan`` carries its
combining function with it: the ``@tv.func`` is translated once, on two scalar parameters of the
tile's dtype, into straight-line scalar instructions (a ``Combine``), which each executor applies
wherever its scan order needs it.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import numpy as np

from tilevm.dtypes import DataType
from tilevm.errors import CompileError, KernelTypeError, ShapeError
from tilevm.frontend.builder import Builder, describe
from tilevm.ir.nodes import Combine, Instr, Literal, Var
from tilevm.ir.types import ScalarType, TileType
from tilevm.ir.verify import SCAN_COMBINE_OPS

if TYPE_CHECKING:
    from tilevm.frontend.expressions import ExpressionTranslator

COMBINE_HINT = (
    "write the combining function as a @tv.func of two values of the tile's dtype that "
    "returns one, e.g. @tv.func def larger(a, b): return tv.maximum(a, b)"
)


def scan(
    b: Builder, x: Any, axis: Any, reverse: Any, what: str, combine: Combine | None = None
) -> Var:
    """The inclusive scan of tile ``x`` along ``axis``: with ``combine`` None, a running sum."""
    x = b.require_tile(x, what)
    axis = scan_axis(b, x, axis, what)
    flag = isinstance(reverse, (bool, int, np.bool_, np.integer))
    if not flag or reverse not in (0, 1):
        raise b.type_error(
            f"{what}'s reverse must be known when compiling",
            expected="True or False",
            found=describe(reverse),
        )
    return b.instr(
        "scan",
        TileType(x.type.dtype, x.type.shape),
        [x],
        name="cumsum" if combine is None else "scan",
        axis=axis,
        op="sum" if combine is None else "combine",
        combine=combine,
        reverse=bool(reverse),
    )


def scan_axis(b: Builder, x: Var, axis: Any, what: str) -> int:
    """``axis`` as an index into ``x``'s dimensions (negative counts from the end)."""
    rank = len(x.type.shape)
    integer = isinstance(axis, (int, np.integer)) and not isinstance(axis, (bool, np.bool_))
    if not integer or not -rank <= axis < rank:
        raise ShapeError(
            f"bad axis for {what}",
            expected=f"one int in [-{rank}, {rank}) for a tile of shape {list(x.type.shape)}",
            found=describe(axis),
            hint="a scan runs along one axis; scan a flattened tile (tv.reshape) to scan all",
            location=b.loc,
            code="scan-axis",
        )
    return int(axis) % rank


def combine_function(tr: ExpressionTranslator, fn: Any, x: Any, what: str) -> Combine:
    """``fn`` translated on two scalars of ``x``'s dtype: the scan's combining function."""
    x = tr.b.require_tile(x, what)
    dtype = x.type.dtype
    if not tr.is_func(fn):
        raise CompileError(
            f"{what}'s combine must be a @tv.func",
            expected="a @tv.func of two values returning one",
            found=describe(fn),
            hint=COMBINE_HINT,
            location=tr.b.loc,
            code="scan-combine",
        )
    names = _two_parameters(tr.b, fn, what)
    params = (tr.b.var(names[0], ScalarType(dtype)), tr.b.var(names[1], ScalarType(dtype)))
    tr.b.push()
    try:
        result = tr.inline(fn, list(params), {}, None)
    finally:
        body = tr.b.pop()
    for stmt in body:
        _check_statement(tr.b, stmt, fn, what)
    return Combine(params, tuple(body), _result(tr.b, result, dtype, fn, what))


def _two_parameters(b: Builder, fn: Any, what: str) -> tuple[str, str]:
    params = list(inspect.signature(fn.fn).parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in params if p.default is p.empty and p.kind != p.VAR_POSITIONAL]
    takes_two = len(required) <= 2 and (
        len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)
    )
    if not takes_two or any(p.kind == p.KEYWORD_ONLY for p in required):
        raise CompileError(
            f"{what}'s combine {fn.__name__} must take two values",
            expected="a @tv.func of two parameters: the running value and the next element",
            found=f"{fn.__name__}{inspect.signature(fn.fn)}",
            hint=COMBINE_HINT,
            location=b.loc,
            code="scan-combine",
        )
    names = [p.name for p in positional[:2]] + ["a", "b"]
    return names[0], names[1]


def _check_statement(b: Builder, stmt: Any, fn: Any, what: str) -> None:
    """The combine is applied element by element, any number of times, in any thread: only
    scalar arithmetic without effects or control flow can be."""
    if isinstance(stmt, Instr) and stmt.op in SCAN_COMBINE_OPS:
        if isinstance(stmt.out.type, ScalarType):
            return
        found = f"a {stmt.out.type} value"
    elif isinstance(stmt, Instr):
        found = f"the instruction {stmt.op}"
    else:
        found = f"a {type(stmt).__name__.lower()} statement on run-time values"
    raise CompileError(
        f"{what}'s combine {fn.__name__} does more than elementwise arithmetic",
        expected="arithmetic, comparisons, tv.where, math functions and casts on its two values",
        found=found,
        hint="a combine sees two elements at a time: no tiles, memory, prints, or if/for/while "
        "on run-time values (use tv.where to choose)",
        location=getattr(stmt, "loc", None) or b.loc,
        code="scan-combine",
    )


def _result(b: Builder, value: Any, dtype: DataType, fn: Any, what: str) -> Var | Literal:
    if isinstance(value, Var) and isinstance(value.type, ScalarType):
        if value.type.dtype == dtype:
            return value
        raise KernelTypeError(
            f"{what}'s combine {fn.__name__} returns {value.type.dtype}, the tile is {dtype}",
            expected=f"a {dtype} result (the dtype of the tile being scanned)",
            found=f"{value!r}: {value.type}",
            hint=f"convert the result inside the combine: (...).to(tv.{dtype})",
            location=b.loc,
            code="scan-dtype",
        )
    if value is None or isinstance(value, (Var, tuple, list)):
        raise CompileError(
            f"{what}'s combine {fn.__name__} must return one scalar value",
            expected=f"one {dtype} value (the combination of its two arguments)",
            found="nothing" if value is None else describe(value),
            hint=COMBINE_HINT,
            location=b.loc,
            code="scan-combine",
        )
    return b.literal(value, dtype)  # a constant result (a number that fits the dtype)
