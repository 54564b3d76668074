"""Expressions of the kernel language: names, operators, attributes, subscripts, calls.

Compile-time values fold as Python; runtime values become instructions through ``ops``.
"""

from __future__ import annotations

import ast
import builtins
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tilevm import language as lang
from tilevm.errors import (
    CompileError,
    InlineDepthError,
    KernelAttributeError,
    UnsupportedSyntaxError,
)
from tilevm.frontend import ops
from tilevm.frontend.builder import Builder, describe
from tilevm.frontend.calls import call_builtin, tensor_dim
from tilevm.frontend.scope import Scope
from tilevm.frontend.source import FunctionSource
from tilevm.frontend.suggestions import missing_attribute_hint, public_names
from tilevm.ir.nodes import Var
from tilevm.ir.types import GlobalType, TileType

MAX_INLINE_DEPTH = 64  # nested @tv.func calls (each inlined); deeper is endless recursion

BINOPS = {
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mul",
    ast.Div: "div",
    ast.FloorDiv: "floordiv",
    ast.Mod: "mod",
    ast.Pow: "pow",
    ast.BitAnd: "and",
    ast.BitOr: "or",
    ast.BitXor: "xor",
    ast.LShift: "lshift",
    ast.RShift: "rshift",
}
_CMPOPS = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge"}
_UNARY = {ast.USub: "neg", ast.Not: "not", ast.Invert: "invert"}

VALUE_ATTRIBUTES = ["shape", "dtype", "to", "stride", "T"]  # what a tile, scalar or tensor has


@dataclass
class Method:
    """``x.to`` / ``x.stride`` waiting for its call."""

    target: Var
    name: str


@dataclass
class ShapeOf:
    """``x.shape`` of a tensor argument: sizes known only at run time."""

    tensor: Var


class Func:
    """``@tv.func``: a helper whose body is inlined into the kernels that call it."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self._source: FunctionSource | None = None

    @property
    def source(self) -> FunctionSource:
        if self._source is None:
            self._source = FunctionSource.of(self.fn)
        return self._source

    @property
    def read_source(self) -> FunctionSource | None:
        """The source as read for translating, or None before it is."""
        return self._source

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)  # plain Python use of a helper (e.g. on constants)


class Return(Exception):
    """``return`` in a ``@tv.func``: carries the value out of the inlined body."""

    def __init__(self, value: Any) -> None:
        self.value = value


class ExpressionTranslator:
    """Turns expressions into values; the statement half lives in ``translate.Translator``."""

    def __init__(
        self,
        src: FunctionSource,
        scope: Scope,
        builder: Builder,
        num_threads: int,
        warp_size: int,
    ) -> None:
        self.src = src
        self.scope = scope  # names the body does not bind: closure, globals, builtins
        self.b = builder
        self.num_threads = num_threads
        self.warp_size = warp_size
        self.env: dict[str, Any] = {}
        self.mutable: set[Var] = set()  # variables updated with Assign (loop-carried, branches)
        self.in_func = False
        self.depth = 0  # how many @tv.func calls deep this body is inlined

    # ----- errors -----------------------------------------------------------------------------
    def unsupported(
        self, node: ast.AST, what: str, hint: str | None = None
    ) -> UnsupportedSyntaxError:
        return UnsupportedSyntaxError(
            f"{what} is not part of the kernel language",
            expected="tile instructions, arithmetic, if/for/while over block-uniform values",
            found=type(node).__name__,
            hint=hint,
            location=self.src.loc(node),
        )

    # ----- expressions ------------------------------------------------------------------------
    def expr(self, node: ast.expr) -> Any:
        method = getattr(self, f"expr_{type(node).__name__}", None)
        if method is None:
            raise self.unsupported(node, f"the expression '{type(node).__name__}'")
        # instructions (and errors) point at the sub-expression they come from
        outer, self.b.loc = self.b.loc, self.src.loc(node)
        try:
            return method(node)
        finally:
            self.b.loc = outer

    def expr_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def expr_Name(self, node: ast.Name) -> Any:
        return self.lookup(node.id, node)

    def lookup(self, name: str, node: ast.AST) -> Any:
        if name in self.env:
            return self.env[name]
        try:
            return self.scope.lookup(name, self.src.loc(node))
        except KeyError:
            raise CompileError(
                f"name '{name}' is not defined", location=self.src.loc(node), code="undefined-name"
            ) from None

    def expr_Tuple(self, node: ast.Tuple) -> tuple:
        return tuple(self.expr(e) for e in node.elts)

    def expr_List(self, node: ast.List) -> list:
        return [self.expr(e) for e in node.elts]

    def expr_Attribute(self, node: ast.Attribute) -> Any:
        value = self.expr(node.value)
        if not isinstance(value, Var):
            try:
                found = getattr(value, node.attr)
            except AttributeError:
                raise self.missing_attribute(node, value) from None
            return self.scope.attribute(value, node.attr, found, self.src.loc(node))
        if node.attr == "dtype":
            return value.type.dtype
        if node.attr == "shape":
            return ShapeOf(value) if isinstance(value.type, GlobalType) else value.type.shape
        if node.attr in ("to", "stride"):
            return Method(value, node.attr)
        if node.attr == "T" and isinstance(value.type, TileType):
            return ops.transpose(self.b, value, None)
        raise KernelAttributeError(
            f"{describe(value)} has no attribute '{node.attr}'",
            expected="shape, dtype, to(dtype), stride(i) or T",
            found=node.attr,
            hint=missing_attribute_hint(node.attr, VALUE_ATTRIBUTES, ast.unparse(node.value)),
            location=self.src.attribute_loc(node),
        )

    def missing_attribute(self, node: ast.Attribute, owner: Any) -> KernelAttributeError:
        """``tv.sigmod``: the caret under the name, the nearest names that exist, and for a
        well-known name tilevm spells differently (``tv.relu``) how to write it."""
        prefix = ast.unparse(node.value)
        is_module = inspect.ismodule(owner)
        what = f"module '{owner.__name__}'" if is_module else describe(owner)
        return KernelAttributeError(
            f"{prefix}.{node.attr}: {what} has no attribute '{node.attr}'",
            expected=f"a name that {prefix} has" + (" (its public names)" if is_module else ""),
            found=f"'{node.attr}'",
            hint=missing_attribute_hint(
                node.attr,
                public_names(owner),
                prefix,
                well_known=getattr(owner, "__name__", None) == "tilevm",
            ),
            location=self.src.attribute_loc(node),
        )

    def expr_Subscript(self, node: ast.Subscript) -> Any:
        value = self.expr(node.value)
        index = self.expr(node.slice)
        if isinstance(value, ShapeOf):
            return tensor_dim(self, value.tensor, index, "dim")
        if isinstance(value, Var) and isinstance(value.type, TileType):
            return self.tile_subscript(value, index, node)
        if isinstance(value, Var):
            raise self.unsupported(
                node,
                "indexing a scalar or tensor argument",
                "load a tile with tv.load(x, offsets, shape)",
            )
        return value[index]

    def tile_subscript(self, tile: Var, index: Any, node: ast.AST) -> Var:
        """``x[:, None]``: full slices keep a dimension, None adds one of size 1."""
        items = index if isinstance(index, tuple) else (index,)
        shape, dims = [], iter(tile.type.shape)
        for item in items:
            if item is None:
                shape.append(1)
            elif isinstance(item, slice) and item == slice(None):
                shape.append(next(dims, None))
            else:
                raise self.unsupported(
                    node,
                    "tile indexing other than ':' and None",
                    "tiles are indexed as a whole: x[:, None]",
                )
        shape.extend(dims)
        if None in shape or len([s for s in items if s is not None]) > len(tile.type.shape):
            raise CompileError(
                "too many ':' for the tile's rank",
                found=str(list(tile.type.shape)),
                location=self.src.loc(node),
                code="subscript",
            )
        return ops.expand_dims(self.b, tile, tuple(shape))

    def expr_Slice(self, node: ast.Slice) -> slice:
        return slice(
            *(None if p is None else self.expr(p) for p in (node.lower, node.upper, node.step))
        )

    def expr_BinOp(self, node: ast.BinOp) -> Any:
        op = BINOPS.get(type(node.op))
        if op is None:
            raise self.unsupported(node, f"the operator {type(node.op).__name__}")
        return ops.binary(self.b, op, self.expr(node.left), self.expr(node.right))

    def expr_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.expr(node.operand)
        if isinstance(node.op, ast.UAdd):
            return value
        return ops.unary(self.b, _UNARY[type(node.op)], value)

    def expr_Compare(self, node: ast.Compare) -> Any:
        if len(node.ops) != 1:
            raise self.unsupported(node, "a chained comparison", "write (a < b) & (b < c)")
        if isinstance(node.ops[0], (ast.Is, ast.IsNot)):
            return self.identity(node)
        op = _CMPOPS.get(type(node.ops[0]))
        if op is None:
            raise self.unsupported(node, f"the comparison {type(node.ops[0]).__name__}")
        return ops.binary(self.b, op, self.expr(node.left), self.expr(node.comparators[0]))

    def identity(self, node: ast.Compare) -> bool:
        """``a is b`` / ``a is not b`` between compile-time values (``LAYOUT is None``)."""
        left, right = self.expr(node.left), self.expr(node.comparators[0])
        if ops.is_runtime(left, right):
            raise self.unsupported(
                node, "'is' on a run-time value", "compare run-time values with == or !="
            )
        return (left is right) == isinstance(node.ops[0], ast.Is)

    def expr_BoolOp(self, node: ast.BoolOp) -> Any:
        values = [self.expr(v) for v in node.values]
        if not ops.is_runtime(*values):
            result = values[0]
            for v in values[1:]:
                result = (result and v) if isinstance(node.op, ast.And) else (result or v)
            return result
        op = "and" if isinstance(node.op, ast.And) else "or"
        result = self._as_bool(values[0])
        for v in values[1:]:
            result = ops.binary(self.b, op, result, self._as_bool(v))
        return result

    def _as_bool(self, value: Any) -> Any:
        if isinstance(value, Var):
            return value if value.type.dtype == ops.BOOL else ops.binary(self.b, "ne", value, 0)
        return bool(value)

    def expr_IfExp(self, node: ast.IfExp) -> Any:
        cond = self.expr(node.test)
        if not ops.is_runtime(cond):
            return self.expr(node.body if cond else node.orelse)
        return ops.where(self.b, cond, self.expr(node.body), self.expr(node.orelse))

    def keywords(self, keywords: list[ast.keyword]) -> dict[str, Any]:
        """A call's keyword arguments, ``**mapping`` (a mapping known at compile time)
        unpacked in place; a name given twice is an error, as in Python."""
        out: dict[str, Any] = {}
        for k in keywords:
            value = self.expr(k.value)
            if k.arg is not None:
                items = [(k.arg, value)]
            elif isinstance(value, Mapping) and all(isinstance(n, str) for n in value):
                items = list(value.items())
            else:
                raise CompileError(
                    "** unpacks a mapping of names known when the kernel compiles",
                    expected="a dict (or other mapping) of str keys",
                    found=describe(value),
                    location=self.src.loc(k.value),
                    code="unsupported",
                )
            for name, item in items:
                if name in out:
                    raise CompileError(
                        f"keyword argument {name!r} given twice",
                        expected="each keyword once",
                        found=f"{name}= twice",
                        location=self.src.loc(k.value),
                        code="unsupported",
                    )
                out[name] = item
        return out

    def expr_Call(self, node: ast.Call) -> Any:
        fn = self.expr(node.func)
        args = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                args.extend(self.expr(a.value))
            else:
                args.append(self.expr(a))
        kwargs = self.keywords(node.keywords)
        if isinstance(fn, lang.Builtin):
            return call_builtin(self, fn, args, kwargs)
        if isinstance(fn, Method):
            if fn.name == "to":
                return call_builtin(self, lang.cast, [fn.target, *args], kwargs)
            return tensor_dim(self, fn.target, args[0] if args else None, "stride")
        if isinstance(fn, Func):
            return self.inline(fn, args, kwargs, node)
        if fn in (builtins.min, builtins.max) and ops.is_runtime(*args):
            name = "minimum" if fn is builtins.min else "maximum"
            return ops.binary(self.b, name, *args)
        if ops.is_runtime(*args, *kwargs.values()):
            raise CompileError(
                f"cannot call {getattr(fn, '__name__', fn)!r} on run-time values",
                expected="a tv.* instruction or a @tv.func helper",
                found=describe(fn),
                hint="decorate helpers with @tv.func so they are inlined",
                location=self.src.loc(node),
                code="call",
            )
        try:
            return fn(*args, **kwargs)  # compile-time evaluation on constants
        except CompileError:
            raise
        except Exception as exc:
            raise CompileError(
                f"compile-time call to {getattr(fn, '__name__', fn)!r} failed: {exc}",
                location=self.src.loc(node),
                code="constexpr-call",
            ) from exc

    @staticmethod
    def is_func(value: Any) -> bool:
        """Whether ``value`` is a ``@tv.func`` helper (one that ``inline`` takes)."""
        return isinstance(value, Func)

    def inline(
        self, func: Func, args: list[Any], kwargs: dict[str, Any], node: ast.AST | None
    ) -> Any:
        """The value of ``func(*args, **kwargs)``, its body translated where the call is
        (``node`` None: a call the language makes itself, at the current instruction)."""
        where = self.b.loc if node is None else self.src.loc(node)
        try:
            bound = inspect.signature(func.fn).bind(*args, **kwargs)
        except TypeError as exc:
            raise CompileError(
                f"bad call to {func.__name__}: {exc}", location=where, code="call"
            ) from None
        bound.apply_defaults()
        if self.depth >= MAX_INLINE_DEPTH:
            raise InlineDepthError(
                f"@tv.func calls nest deeper than {MAX_INLINE_DEPTH} (at {func.__name__})",
                expected="helpers that end: each call is inlined where it is made",
                found=f"{func.__name__} called {MAX_INLINE_DEPTH} levels deep (recursion?)",
                hint="write the repetition as a loop (tv.range / tv.static_range)",
                location=where,
            )
        self.scope.reads.inlined.append(func)
        scope = Scope(func.fn, self.scope.reads, func)
        inner = type(self)(func.source, scope, self.b, self.num_threads, self.warp_size)
        inner.env = dict(bound.arguments)
        inner.in_func = True
        inner.depth = self.depth + 1
        saved = self.b.loc
        try:
            inner.run_body(func.source.tree.body)
            return None
        except Return as ret:
            return ret.value
        finally:
            self.b.loc = saved
