"""Python AST -> VM IR.

Compile-time values (constexprs, Python numbers, dtypes, layouts, tuples) are plain Python
objects and fold; runtime values are IR ``Var``s. ``if`` on a compile-time condition keeps one
branch; ``tv.static_range`` unrolls; ``range``/``tv.range`` and ``while`` become loops. A
variable reassigned inside a loop or a branch becomes a mutable variable updated with ``Assign``.
"""

from __future__ import annotations

import ast
import builtins
from typing import Any

import numpy as np

from tilevm import dtypes as dts
from tilevm import language as lang
from tilevm.dtypes import DataType
from tilevm.errors import CompileError, KernelValueError
from tilevm.frontend import ops
from tilevm.frontend.builder import INDEX, describe
from tilevm.frontend.expressions import BINOPS, ExpressionTranslator, Return
from tilevm.ir.nodes import Assign, For, If, Literal, Var, While, walk
from tilevm.ir.types import ScalarType, TileType

_MISSING = object()
# The most VM instructions one tv.static_range may unroll to: far more than any kernel needs,
# few enough that the unrolled program still compiles in minutes rather than hours.
UNROLL_LIMIT = 100_000


class Translator(ExpressionTranslator):
    """Statements; expressions come from ``ExpressionTranslator``."""

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
        since = self.b.position()
        value = self.expr(node.value)
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = self.b.name_result(value, node.targets[0].id, since)
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
            node.target, ops.binary(self.b, BINOPS[type(node.op)], current, self.expr(node.value))
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
        if self.is_mutable(current):
            self.update(current, value, name)
            return
        self.env[name] = value

    def is_mutable(self, value: Any) -> bool:
        """A mutable variable, or a tuple holding one (a tuple carried through a loop)."""
        if isinstance(value, Var):
            return value in self.mutable
        return isinstance(value, tuple) and any(self.is_mutable(v) for v in value)

    def update(self, current: Any, value: Any, name: str) -> None:
        """Assign ``value`` to the mutable variable (or tuple of them) ``current``."""
        if isinstance(current, Var):
            self.b.emit(Assign(current, self.coerce_like(current, value, name), self.b.loc))
            return
        if not isinstance(value, (tuple, list)) or len(value) != len(current):
            raise self.b.type_error(
                f"'{name}' changes structure inside a loop or branch",
                expected=f"a tuple of {len(current)} values",
                found=describe(value),
                hint="keep one tuple shape per variable",
            )
        for i, (c, v) in enumerate(zip(current, value)):
            if self.is_mutable(c):
                self.update(c, v, f"{name}[{i}]")
            elif v is not c:
                raise self.b.type_error(
                    f"compile-time element {name}[{i}] changes inside a loop or branch",
                    expected=describe(c),
                    found=describe(v),
                    hint="only run-time values (tiles, scalars) can change from one "
                    "iteration to the next",
                )

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
        """Turn ``name`` into a mutable variable (before a loop or branch that reassigns it);
        a tuple becomes a tuple of them (its compile-time elements stay as they are)."""
        current = self.env.get(name)
        if current is not None:
            self.env[name] = self.mutable_value(current, name)

    def mutable_value(self, current: Any, name: str) -> Any:
        if isinstance(current, tuple):
            return tuple(self.mutable_value(v, f"{name}_{i}") for i, v in enumerate(current))
        if isinstance(current, Var) and current in self.mutable:
            return current
        if isinstance(current, Var):
            if not isinstance(current.type, (ScalarType, TileType)):
                return current
            initial = current
        elif isinstance(current, (bool, int, float)):
            initial = self.b.materialize(current)
        else:
            return current  # compile-time objects (dtypes, layouts) cannot vary at run time
        mutable = self.b.var(name, initial.type)
        self.mutable.add(mutable)
        self.b.emit(Assign(mutable, initial, self.b.loc))
        return mutable

    def check_loop_rebinding(self, before: dict[str, Any], names: list[str], node) -> None:
        """A compile-time value rebound in a run-time loop would keep the value of the body's
        one translation in every iteration: reject it instead of computing something else."""
        for name in names:
            old = before.get(name, _MISSING)
            if old is _MISSING or self.is_mutable(old) or _same(self.env.get(name), old):
                continue
            raise CompileError(
                f"compile-time value '{name}' is reassigned inside a run-time loop",
                expected="a tile, a scalar or a tuple of them (these can change per iteration)",
                found=describe(self.env.get(name)),
                hint="compute it before the loop, or use tv.static_range to unroll",
                location=self.src.loc(_store_of(name, node.body) or node),
                code="loop-value",
            )

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
        kwargs = self.keywords(call.keywords)
        self._check_range_options(node, fn, kwargs)
        start, stop, step = _range_args(args)
        if not ops.is_runtime(step) and step == 0:  # as Python's range: never a loop
            raise KernelValueError(
                "a range's step is 0",
                expected="a non-zero step",
                found="step 0",
                location=self.src.loc(call),
                code="range-step",
            )
        if fn is lang.static_range:
            compile_time_ints = all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                for v in (start, stop, step)
            )
            if not compile_time_ints:
                raise CompileError(
                    "tv.static_range needs compile-time bounds",
                    expected="ints",
                    found=f"{describe(start)}, {describe(stop)}, {describe(step)}",
                    location=self.src.loc(node),
                    code="static-range",
                )
            self.unroll(node, builtins.range(start, stop, step))
            return
        names = assigned_names(node.body)
        for name in names:
            self.make_mutable(name)
        before = dict(self.env)
        operands = [self.b.scalar_index(v, "range bound") for v in (start, stop, step)]
        loop_var = self.b.var(node.target.id, ScalarType(counter_dtype(operands)))
        self.env[node.target.id] = loop_var
        self.b.push()
        self.run_body(node.body)
        body = self.b.pop()
        self.check_loop_rebinding(before, [n for n in names if n != node.target.id], node)
        attrs = tuple(sorted((k, v) for k, v in kwargs.items() if v is not None))
        self.b.emit(For(loop_var, *operands, body, attrs, self.src.loc(node)))

    def unroll(self, node: ast.For, counts: range) -> None:
        """``tv.static_range``: the body once per count, the counter a Python int. An unrolled
        loop larger than ``UNROLL_LIMIT`` VM instructions (nested ones included, at least one
        per iteration) is refused as soon as it gets there, before compiling it takes minutes."""
        size = 0
        for done, i in enumerate(counts, 1):
            self.env[node.target.id] = i
            self.b.push()
            try:
                self.run_body(node.body)
            finally:
                body = self.b.pop()
                for stmt in body:
                    self.b.emit(stmt)
            size += max(1, sum(1 for _ in walk(body)))
            if size > UNROLL_LIMIT:
                raise KernelValueError(
                    f"tv.static_range({counts.start}, {counts.stop}, {counts.step}) unrolls to "
                    f"more than {UNROLL_LIMIT} instructions",
                    expected=f"an unrolled loop of at most {UNROLL_LIMIT} VM instructions",
                    found=f"{size} instructions after {done} of {len(counts)} iterations",
                    hint="use tv.range(...) for a loop the kernel runs instead of unrolling it",
                    location=self.src.loc(node),
                    code="unroll-budget",
                )

    def _check_range_options(self, node: ast.For, fn: object, kwargs: dict) -> None:
        allowed = {"unroll"} if fn is lang.range else set()
        for name, value in kwargs.items():
            if name == "stages" and fn is lang.range:
                if value is None:
                    continue
                raise CompileError(
                    "tv.range(..., stages=) is not supported yet",
                    expected="a loop without stages=",
                    found=f"stages={describe(value)}",
                    hint="pipeline explicitly: tv.copy_async into a ring of shared buffers, "
                    "tv.commit_async(), tv.wait_async(STAGES - 2) (see tilevm.stdlib.matmul)",
                    location=self.src.loc(node.iter),
                    code="unsupported-option",
                )
            if name not in allowed:
                raise CompileError(
                    f"unknown loop option {name}=",
                    expected=", ".join(sorted(allowed)) or "no keyword arguments",
                    found=f"{name}={describe(value)}",
                    location=self.src.loc(node.iter),
                    code="unsupported-option",
                )

    def stmt_While(self, node: ast.While) -> None:
        if node.orelse:
            raise self.unsupported(node, "while ... else")
        names = assigned_names(node.body)
        for name in names:
            self.make_mutable(name)
        before = dict(self.env)
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
        self.check_loop_rebinding(before, names, node)
        self.b.emit(While(cond_body, cond, body, self.src.loc(node)))

    def stmt_Return(self, node: ast.Return) -> None:
        if not self.in_func:
            raise self.unsupported(
                node, "return in a kernel", "kernels write results with tv.store"
            )
        raise Return(None if node.value is None else self.expr(node.value))

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


def _range_args(args: list[Any]) -> tuple[Any, Any, Any]:
    if len(args) == 1:
        return 0, args[0], 1
    if len(args) == 2:
        return args[0], args[1], 1
    return args[0], args[1], args[2]


def _store_of(name: str, stmts: list[ast.stmt]) -> ast.AST | None:
    """The first place ``stmts`` assign ``name``."""
    for stmt in stmts:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id == name:
                return node
    return None


def _same(a: Any, b: Any) -> bool:
    """The same compile-time value (an equal one built again counts)."""
    if a is b:
        return True
    if isinstance(a, Var) or isinstance(b, Var):
        return False
    try:
        return bool(a == b)
    except Exception:  # values without a usable == are different
        return False


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


def counter_dtype(bounds: list) -> DataType:
    """A loop counter is i32 unless a bound needs more (a 64-bit integer, or a u32 past
    2**31): then i64, so the counter reaches every value between the bounds."""
    for b in bounds:
        dt = b.dtype if isinstance(b, Literal) else b.type.dtype
        if dt.bits > 32 or (dt.bits == 32 and dt.kind == "uint"):
            return dts.i64
    return INDEX
