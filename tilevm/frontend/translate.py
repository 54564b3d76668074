"""Python AST -> VM IR.

Compile-time values (constexprs, Python numbers, dtypes, layouts, tuples) are plain Python
objects and fold; runtime values are IR ``Var``s. ``if`` on a compile-time condition keeps one
branch; ``tv.static_range`` unrolls; ``range``/``tv.range`` and ``while`` become loops. A
variable reassigned inside a loop or a branch becomes a mutable variable updated with ``Assign``.
"""

from __future__ import annotations

import ast
import builtins
import inspect
from dataclasses import dataclass
from typing import Any

from tilevm import language as lang
from tilevm.errors import CompileError, UnsupportedSyntaxError
from tilevm.frontend import ops
from tilevm.frontend.builder import INDEX, Builder, describe
from tilevm.frontend.calls import call_builtin, tensor_dim
from tilevm.frontend.source import FunctionSource
from tilevm.ir.nodes import Assign, For, If, Var, While
from tilevm.ir.types import GlobalType, ScalarType, TileType

_BINOPS = {
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

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)  # plain Python use of a helper (e.g. on constants)


_MISSING = object()


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class Translator:
    def __init__(
        self,
        src: FunctionSource,
        fn_globals: dict[str, Any],
        builder: Builder,
        num_threads: int,
        warp_size: int,
    ) -> None:
        self.src = src
        self.globals = fn_globals
        self.b = builder
        self.num_threads = num_threads
        self.warp_size = warp_size
        self.env: dict[str, Any] = {}
        self.mutable: set[Var] = set()  # variables updated with Assign (loop-carried, branches)
        self.in_func = False

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

    # ----- statements -------------------------------------------------------------------------
    def run_body(self, stmts: list[ast.stmt]) -> None:
        for stmt in stmts:
            self.b.loc = self.src.loc(stmt)
            try:
                self.statement(stmt)
            except CompileError as err:
                if err.location is None:
                    err.location = self.src.loc(stmt)
                raise

    def statement(self, node: ast.stmt) -> None:
        method = getattr(self, f"stmt_{type(node).__name__}", None)
        if method is None:
            raise self.unsupported(node, f"the statement '{type(node).__name__}'")
        method(node)

    def stmt_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # docstring
        self.expr(node.value)

    def stmt_Pass(self, node: ast.Pass) -> None:
        pass

    def stmt_Assign(self, node: ast.Assign) -> None:
        value = self.expr(node.value)
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = self.b.name_result(value, node.targets[0].id)
        for target in node.targets:
            self.bind(target, value)

    def stmt_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is None:
            raise self.unsupported(node, "a declaration without a value")
        self.bind(node.target, self.expr(node.value))

    def stmt_AugAssign(self, node: ast.AugAssign) -> None:
        if not isinstance(node.target, ast.Name):
            raise self.unsupported(node, "augmented assignment to anything but a name")
        current = self.lookup(node.target.id, node.target)
        self.bind(
            node.target, ops.binary(self.b, _BINOPS[type(node.op)], current, self.expr(node.value))
        )

    def bind(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.assign_name(target.id, value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            if not isinstance(value, (tuple, list)) or len(value) != len(target.elts):
                raise CompileError(
                    "cannot unpack",
                    expected=f"a sequence of {len(target.elts)} values",
                    found=describe(value),
                    location=self.src.loc(target),
                    code="unpack",
                )
            for t, v in zip(target.elts, value):
                self.bind(t, v)
        else:
            raise self.unsupported(
                target,
                "assignment to a subscript or attribute",
                "tiles are values: build a new one",
            )

    def assign_name(self, name: str, value: Any) -> None:
        current = self.env.get(name)
        if isinstance(current, Var) and current in self.mutable:
            self.b.emit(Assign(current, self.coerce_like(current, value, name), self.b.loc))
            return
        self.env[name] = value

    def coerce_like(self, target: Var, value: Any, name: str) -> Any:
        """A new value for a mutable variable must keep its type (dtype and shape)."""
        if not isinstance(value, Var):
            return self.b.literal(value, target.type.dtype)
        same = type(value.type) is type(target.type) and value.type.dtype == target.type.dtype
        if same and isinstance(target.type, TileType):
            same = value.type.shape == target.type.shape
        if not same:
            raise self.b.type_error(
                f"'{name}' changes type inside a loop or branch",
                expected=str(target.type),
                found=str(value.type),
                hint="keep one dtype and shape per variable (convert with .to(...))",
            )
        return value

    def make_mutable(self, name: str) -> None:
        """Turn ``name`` into a mutable variable (before a loop or branch that reassigns it)."""
        current = self.env.get(name)
        if current is None or (isinstance(current, Var) and current in self.mutable):
            return
        if isinstance(current, Var):
            if not isinstance(current.type, (ScalarType, TileType)):
                return
            initial = current
        elif isinstance(current, (bool, int, float)):
            initial = self.b.materialize(current)
        else:
            return  # compile-time objects (dtypes, layouts) cannot vary at run time
        mutable = self.b.var(name, initial.type)
        self.mutable.add(mutable)
        self.b.emit(Assign(mutable, initial, self.b.loc))
        self.env[name] = mutable

    def stmt_If(self, node: ast.If) -> None:
        cond = self.expr(node.test)
        if not ops.is_runtime(cond):
            self.run_body(node.body if cond else node.orelse)
            return
        cond = self.scalar_condition(cond, node.test)
        for name in assigned_names(node.body + node.orelse):
            self.make_mutable(name)
        before = dict(self.env)
        then_body, then_env = self.branch(node.body, before)
        else_body, else_env = self.branch(node.orelse, before)
        self.env = before
        for name, value in then_env.items():
            if name in before:
                if value is not before[name]:
                    raise CompileError(
                        f"compile-time value '{name}' is reassigned under a run-time condition",
                        expected="the same value on both sides of the if",
                        found=describe(value),
                        location=self.src.loc(node),
                        code="branch-value",
                    )
                continue
            other = else_env.get(name, _MISSING)
            if isinstance(value, Var) and isinstance(other, Var):
                merged = self.b.var(name, value.type)
                self.mutable.add(merged)
                then_body.append(Assign(merged, value, self.src.loc(node)))
                else_body.append(
                    Assign(merged, self.coerce_like(merged, other, name), self.src.loc(node))
                )
                self.env[name] = merged
            elif not isinstance(value, Var) and other is value:
                self.env[name] = value
        self.b.emit(If(cond, tuple(then_body), tuple(else_body), self.src.loc(node)))

    def branch(self, stmts: list[ast.stmt], before: dict[str, Any]) -> tuple[list, dict[str, Any]]:
        self.env = dict(before)
        self.b.push()
        self.run_body(stmts)
        return list(self.b.pop()), self.env

    def scalar_condition(self, cond: Any, node: ast.AST) -> Var:
        if not isinstance(cond.type, ScalarType):
            raise CompileError(
                "a condition must be a block-uniform scalar",
                expected="a scalar (all threads agree), e.g. k < K",
                found=describe(cond),
                hint="select per element with tv.where(cond, a, b)",
                location=self.src.loc(node),
                code="condition",
            )
        return cond if cond.type.dtype == ops.BOOL else ops.binary(self.b, "ne", cond, 0)

    def stmt_For(self, node: ast.For) -> None:
        if node.orelse:
            raise self.unsupported(node, "for ... else")
        if not isinstance(node.target, ast.Name):
            raise self.unsupported(node.target, "a loop target other than a name")
        call = node.iter
        fn = self.expr(call.func) if isinstance(call, ast.Call) else None
        if fn not in (builtins.range, lang.range, lang.static_range):
            raise self.unsupported(
                node.iter,
                "iterating over anything but range()",
                "use range(...), tv.range(...) or tv.static_range(...)",
            )
        args = [self.expr(a) for a in call.args]
        kwargs = {k.arg: self.expr(k.value) for k in call.keywords}
        start, stop, step = _range_args(args)
        if fn is lang.static_range:
            if ops.is_runtime(start, stop, step):
                raise CompileError(
                    "tv.static_range needs compile-time bounds",
                    expected="ints",
                    found=f"{describe(start)}, {describe(stop)}, {describe(step)}",
                    location=self.src.loc(node),
                    code="static-range",
                )
            for i in builtins.range(start, stop, step):
                self.env[node.target.id] = i
                self.run_body(node.body)
            return
        for name in assigned_names(node.body):
            self.make_mutable(name)
        operands = [self.b.scalar_index(v, "range bound") for v in (start, stop, step)]
        loop_var = self.b.var(node.target.id, ScalarType(INDEX))
        self.env[node.target.id] = loop_var
        self.b.push()
        self.run_body(node.body)
        body = self.b.pop()
        attrs = tuple(sorted((k, v) for k, v in kwargs.items() if v is not None))
        self.b.emit(For(loop_var, *operands, body, attrs, self.src.loc(node)))

    def stmt_While(self, node: ast.While) -> None:
        if node.orelse:
            raise self.unsupported(node, "while ... else")
        for name in assigned_names(node.body):
            self.make_mutable(name)
        self.b.push()
        cond = self.expr(node.test)
        if not ops.is_runtime(cond):
            raise CompileError(
                "a while condition must depend on run-time values",
                expected="a scalar condition",
                found=repr(cond),
                hint="use tv.static_range for compile-time loops",
                location=self.src.loc(node.test),
                code="condition",
            )
        cond = self.scalar_condition(cond, node.test)
        cond_body = self.b.pop()
        self.b.push()
        self.run_body(node.body)
        body = self.b.pop()
        self.b.emit(While(cond_body, cond, body, self.src.loc(node)))

    def stmt_Return(self, node: ast.Return) -> None:
        if not self.in_func:
            raise self.unsupported(
                node, "return in a kernel", "kernels write results with tv.store"
            )
        raise _Return(None if node.value is None else self.expr(node.value))

    def stmt_Assert(self, node: ast.Assert) -> None:
        cond = self.expr(node.test)
        if ops.is_runtime(cond):
            raise self.unsupported(
                node,
                "assert on run-time values",
                "use tv.assume for facts the compiler may rely on",
            )
        if not cond:
            msg = self.expr(node.msg) if node.msg is not None else "assertion failed"
            raise CompileError(str(msg), location=self.src.loc(node), code="static-assert")

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
        if name in self.globals:
            return self.globals[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        raise CompileError(
            f"name '{name}' is not defined", location=self.src.loc(node), code="undefined-name"
        )

    def expr_Tuple(self, node: ast.Tuple) -> tuple:
        return tuple(self.expr(e) for e in node.elts)

    def expr_List(self, node: ast.List) -> list:
        return [self.expr(e) for e in node.elts]

    def expr_Attribute(self, node: ast.Attribute) -> Any:
        value = self.expr(node.value)
        if not isinstance(value, Var):
            try:
                return getattr(value, node.attr)
            except AttributeError:
                raise CompileError(
                    f"{describe(value)} has no attribute '{node.attr}'",
                    location=self.src.loc(node),
                    code="attribute",
                ) from None
        if node.attr == "dtype":
            return value.type.dtype
        if node.attr == "shape":
            return ShapeOf(value) if isinstance(value.type, GlobalType) else value.type.shape
        if node.attr in ("to", "stride"):
            return Method(value, node.attr)
        if node.attr == "T" and isinstance(value.type, TileType):
            return ops.transpose(self.b, value, None)
        raise CompileError(
            f"{describe(value)} has no attribute '{node.attr}'",
            expected="shape, dtype, to(dtype), stride(i) or T",
            found=node.attr,
            location=self.src.loc(node),
            code="attribute",
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
        return ops.expand_dims(self.b, tile, [], tuple(shape))

    def expr_Slice(self, node: ast.Slice) -> slice:
        return slice(
            *(None if p is None else self.expr(p) for p in (node.lower, node.upper, node.step))
        )

    def expr_BinOp(self, node: ast.BinOp) -> Any:
        op = _BINOPS.get(type(node.op))
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
        op = _CMPOPS.get(type(node.ops[0]))
        if op is None:
            raise self.unsupported(node, f"the comparison {type(node.ops[0]).__name__}")
        return ops.binary(self.b, op, self.expr(node.left), self.expr(node.comparators[0]))

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

    def expr_Call(self, node: ast.Call) -> Any:
        fn = self.expr(node.func)
        args = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                args.extend(self.expr(a.value))
            else:
                args.append(self.expr(a))
        kwargs = {k.arg: self.expr(k.value) for k in node.keywords if k.arg is not None}
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

    def inline(self, func: Func, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        try:
            bound = inspect.signature(func.fn).bind(*args, **kwargs)
        except TypeError as exc:
            raise CompileError(
                f"bad call to {func.__name__}: {exc}", location=self.src.loc(node), code="call"
            ) from None
        bound.apply_defaults()
        scope = func.fn.__globals__ | closure_vars(func.fn)
        inner = Translator(func.source, scope, self.b, self.num_threads, self.warp_size)
        inner.env = dict(bound.arguments)
        inner.in_func = True
        saved = self.b.loc
        try:
            inner.run_body(func.source.tree.body)
            return None
        except _Return as ret:
            return ret.value
        finally:
            self.b.loc = saved


def _range_args(args: list[Any]) -> tuple[Any, Any, Any]:
    if len(args) == 1:
        return 0, args[0], 1
    if len(args) == 2:
        return args[0], args[1], 1
    return args[0], args[1], args[2]


def closure_vars(fn: Any) -> dict[str, Any]:
    """The values a function closes over: names a kernel may use besides its globals."""
    if not fn.__closure__:
        return {}
    return {name: cell.cell_contents for name, cell in zip(fn.__code__.co_freevars, fn.__closure__)}


def assigned_names(stmts: list[ast.stmt]) -> list[str]:
    names: list[str] = []
    for stmt in stmts:
        for node in ast.walk(stmt):
            if (
                isinstance(node, ast.Name)
                and isinstance(node.ctx, ast.Store)
                and node.id not in names
            ):
                names.append(node.id)
    return names
