"""Emits VM instructions with their types; the typing rules of the language live here.

Rules: operands of one instruction share a dtype (a Python number adopts the other operand's
dtype, if it fits); tiles broadcast like numpy; comparisons give ``u1``; ``/`` needs floats;
``//`` and ``%`` follow Python (floor) semantics on integers, at compile time and at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import tilevm.dtypes as dts
from tilevm.dtypes import DataType, SourceLocation
from tilevm.errors import KernelTypeError, ShapeError
from tilevm.ir.nodes import Instr, Literal, Operand, Stmt, Var
from tilevm.ir.types import GlobalType, ScalarType, SharedType, TileType, ValueType

BOOL = dts.u1
INDEX = dts.i32

ARITH = {"add", "sub", "mul", "div", "floordiv", "mod", "pow", "maximum", "minimum"}
BITWISE = {"and", "or", "xor", "lshift", "rshift"}
COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}
FLOAT_UNARY = {"exp", "exp2", "log", "log2", "sqrt", "rsqrt", "sin", "cos", "tan", "atan", "tanh",
               "erf", "sigmoid", "log1p", "expm1", "floor", "ceil"}  # fmt: skip
# functions with an approximate form on GPUs (``tv.exp(x, approx=True)``; ``div``: ``tv.fdiv``)
APPROX = {"exp", "exp2", "log2", "rsqrt", "div"}
ANY_UNARY = {"neg", "abs"}
INT_UNARY = {"invert"}
BOOL_UNARY = {"not"}


class Builder:
    """Collects statements into nested bodies and types every value it creates."""

    def __init__(self) -> None:
        self._bodies: list[list[Stmt]] = [[]]
        self.loc: SourceLocation | None = None
        self._names: dict[str, int] = {}

    # ----- bodies and names -------------------------------------------------------------------
    def push(self) -> None:
        self._bodies.append([])

    def pop(self) -> tuple[Stmt, ...]:
        return tuple(self._bodies.pop())

    def emit(self, stmt: Stmt) -> None:
        self._bodies[-1].append(stmt)

    def var(self, hint: str, type_: ValueType) -> Var:
        count = self._names.get(hint, 0)
        self._names[hint] = count + 1
        return Var(hint if count == 0 else f"{hint}.{count}", type_)

    def instr(
        self,
        opcode: str,
        type_: ValueType | None,
        args: Sequence[Operand],
        /,
        name: str = "",
        **attrs: Any,
    ) -> Var | None:
        """Emit ``opcode``; ``name`` seeds the result's printed name; ``attrs`` are attributes."""
        out = self.var(name or opcode, type_) if type_ is not None else None
        self.emit(Instr(opcode, out, tuple(args), tuple(sorted(attrs.items())), self.loc))
        return out

    def position(self) -> tuple[int, int]:
        """Where the next instruction goes (for ``name_result``)."""
        return id(self._bodies[-1]), len(self._bodies[-1])

    def name_result(self, value: Any, name: str, since: tuple[int, int]) -> Any:
        """Give the value the user's variable name when the instruction that made it was
        emitted after ``since`` (by the assignment's own expression; ``b = a`` keeps ``a``'s
        name, whose uses come before), so that the IR and generated code read like the
        source."""
        body = self._bodies[-1]
        last = body[-1] if body else None
        if id(body) != since[0] or len(body) <= since[1]:  # no new instruction here
            return value
        if not isinstance(value, Var) or not isinstance(last, Instr) or last.out is not value:
            return value
        renamed = self.var(name, value.type)
        body[-1] = Instr(last.op, renamed, last.args, last.attrs, last.loc)
        return renamed

    # ----- errors -----------------------------------------------------------------------------
    def type_error(
        self, message: str, expected: str, found: str, hint: str | None = None
    ) -> KernelTypeError:
        return KernelTypeError(
            message, expected=expected, found=found, hint=hint, location=self.loc
        )

    def shape_error(
        self, message: str, expected: str, found: str, hint: str | None = None
    ) -> ShapeError:
        return ShapeError(message, expected=expected, found=found, hint=hint, location=self.loc)

    # ----- operands ---------------------------------------------------------------------------
    def literal(self, value: Any, dtype: DataType) -> Literal:
        """A Python number as an operand of ``dtype``: an integer that fits it, a float rounded
        once to it (f32 and f64 literals are rounded by the backends' own parsing, once)."""
        if isinstance(value, (bool, np.bool_)):
            value = int(value)
        if not isinstance(value, (int, float, np.integer, np.floating)):
            raise self.type_error(
                f"{describe(value)} where a number or a value of the kernel is needed",
                expected=f"a number (it becomes a {dtype} constant), a tile or a scalar",
                found=describe(value),
            )
        if dtype.is_integer:
            if isinstance(value, float) and not value.is_integer():
                raise self.type_error(
                    "a fractional number where an integer is needed",
                    expected=f"an integer for {dtype}",
                    found=repr(value),
                    hint="cast the other operand to a float type with .to(tv.f32)",
                )
            if not dtype.min <= int(value) <= dtype.max:
                raise self.type_error(
                    f"constant {value} does not fit in {dtype}",
                    expected=f"a value in [{dtype.min}, {dtype.max}]",
                    found=repr(value),
                )
            return Literal(int(value), dtype)
        if dtype.bits < 32:  # as the dtype holds it, rounded once (as .to() does), not as f32
            value = dtype.round(np.asarray([float(value)]))[0]
        return Literal(float(value), dtype)

    def materialize(self, value: Any, dtype: DataType | None = None) -> Var:
        """A Python constant as a scalar value (for loop-carried variables and the like)."""
        if isinstance(value, Var):
            return value
        dtype = dtype or python_dtype(value)
        return self.instr("const", ScalarType(dtype), [self.literal(value, dtype)], name="c")

    # ----- typing helpers ---------------------------------------------------------------------
    def require_values(self, *values: Any, what: str) -> None:
        """Operands of arithmetic are tiles, scalars or numbers: a tensor or a shared tile is
        refused here, at the line, rather than reaching an executor."""
        for v in values:
            if isinstance(v, Var) and not isinstance(v.type, (TileType, ScalarType)):
                raise self.type_error(
                    f"{describe(v)} as an operand of {what}",
                    expected="a tile, a scalar or a number",
                    found=describe(v),
                    hint="load it first: tv.load(t, offsets, shape) for a tensor, "
                    "tv.load_shared(s) for a shared tile",
                )

    def unify(self, *values: Any, what: str) -> tuple[DataType, list[Operand]]:
        """One dtype for all operands: the values' common dtype, literals adopt it."""
        self.require_values(*values, what=what)
        dtypes = {value_dtype(v) for v in values if isinstance(v, Var)}
        if len(dtypes) > 1:
            found = ", ".join(str(value_dtype(v)) for v in values if isinstance(v, Var))
            raise self.type_error(
                f"operands of {what} have different dtypes",
                expected="one dtype for all operands",
                found=found,
                hint="convert one side explicitly, e.g. x.to(tv.f32)",
            )
        dtype = dtypes.pop() if dtypes else python_dtype(values[0])
        return dtype, [v if isinstance(v, Var) else self.literal(v, dtype) for v in values]

    def broadcast_shape(self, *values: Any, what: str) -> tuple[int, ...] | None:
        """numpy broadcasting over the tile operands; None when all are scalars."""
        shapes = [
            v.type.shape for v in values if isinstance(v, Var) and isinstance(v.type, TileType)
        ]
        if not shapes:
            return None
        try:
            return tuple(int(n) for n in np.broadcast_shapes(*shapes))
        except ValueError:
            raise self.shape_error(
                f"tile shapes of {what} do not broadcast",
                expected="equal sizes, or 1, in each trailing dimension",
                found=" and ".join(str(list(s)) for s in shapes),
                hint="use x[:, None] / x[None, :] to add unit dimensions",
            ) from None

    def result_type(self, dtype: DataType, shape: tuple[int, ...] | None) -> ValueType:
        return ScalarType(dtype) if shape is None else TileType(dtype, shape)

    def require_tile(self, value: Any, what: str) -> Var:
        if not isinstance(value, Var) or not isinstance(value.type, TileType):
            raise self.type_error(
                f"{what} needs a register tile",
                expected="a tile (from tv.load, tv.arange, tv.zeros, ...)",
                found=describe(value),
            )
        return value

    def require_global(self, value: Any, what: str) -> Var:
        if not isinstance(value, Var) or not isinstance(value.type, GlobalType):
            raise self.type_error(
                f"{what} needs a tensor argument of the kernel",
                expected="a tv.Tensor parameter",
                found=describe(value),
            )
        return value

    def require_shared(self, value: Any, what: str) -> Var:
        if not isinstance(value, Var) or not isinstance(value.type, SharedType):
            raise self.type_error(
                f"{what} needs a shared tile",
                expected="a value from tv.shared(...)",
                found=describe(value),
            )
        return value

    def scalar_index(self, value: Any, what: str) -> Operand:
        """An index operand: a Python int or an integer scalar."""
        if isinstance(value, Var):
            if not isinstance(value.type, ScalarType) or not value.type.dtype.is_integer:
                raise self.type_error(
                    f"{what} must be an integer scalar",
                    expected="an int or an integer scalar value",
                    found=describe(value),
                )
            return value
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise self.type_error(
                f"{what} must be an integer", expected="an int", found=describe(value)
            )
        return self.literal(int(value), python_dtype(value))


def python_dtype(value: Any) -> DataType:
    if isinstance(value, (bool, np.bool_)):
        return BOOL
    if isinstance(value, (int, np.integer)):
        return INDEX if -(2**31) <= int(value) < 2**31 else dts.i64
    return dts.f32


def value_dtype(value: Var) -> DataType:
    return value.type.dtype


def describe(value: Any) -> str:
    if isinstance(value, Var):
        return f"{value!r}: {value.type}"
    return f"{value!r} ({type(value).__name__})"
