"""What each kernel-language name does when called: argument binding and dispatch to ops."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tilevm import language as lang
from tilevm.dtypes import DataType
from tilevm.frontend import float_ops, ops, reductions, scans, views
from tilevm.frontend.builder import APPROX, INDEX, describe
from tilevm.ir.nodes import Var
from tilevm.ir.types import GlobalType, ScalarType

if TYPE_CHECKING:
    from tilevm.frontend.translate import Translator

Handler = Callable[..., Any]
HANDLERS: dict[str, Handler] = {}


def handles(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


def call_builtin(
    tr: Translator, builtin: lang.Builtin, args: list[Any], kwargs: dict[str, Any]
) -> Any:
    handler = HANDLERS[builtin.name]
    signature = inspect.signature(handler)
    try:
        bound = signature.bind(tr, *args, **kwargs)
    except TypeError as exc:
        params = [p for p in signature.parameters if p != "tr"]
        raise tr.b.type_error(
            f"bad arguments to tv.{builtin.name}: {exc}",
            expected=f"tv.{builtin.name}({', '.join(params)})",
            found=f"{len(args)} positional argument(s), keywords {sorted(kwargs)}",
            hint=builtin.__doc__,
        ) from None
    bound.apply_defaults()
    return handler(*bound.args, **bound.kwargs)


@handles("block_id")
def _block_id(tr: Translator, axis: int = 0) -> Var:
    _axis(tr, axis)
    return tr.b.instr("block_id", ScalarType(INDEX), [], name=f"bid{axis}", axis=axis)


@handles("num_blocks")
def _num_blocks(tr: Translator, axis: int = 0) -> Var:
    _axis(tr, axis)
    return tr.b.instr("num_blocks", ScalarType(INDEX), [], name=f"nblocks{axis}", axis=axis)


def _axis(tr: Translator, axis: Any) -> None:
    if axis not in (0, 1, 2):
        raise tr.b.type_error("grid axis", expected="0, 1 or 2", found=describe(axis))


@handles("load")
def _load(
    tr: Translator, tensor: Any, offsets: Any, shape: Any, other: Any = 0, layout: Any = None
) -> Var:
    ops.check_threads(tr.b, layout, tr.num_threads)
    return ops.load(tr.b, tensor, offsets, shape, other, layout)


@handles("store")
def _store(tr: Translator, tensor: Any, value: Any, offsets: Any) -> None:
    ops.store(tr.b, tensor, value, offsets)


@handles("atomic_add")
def _atomic_add(tr: Translator, tensor: Any, value: Any, offsets: Any) -> Var | None:
    return ops.atomic_add(tr.b, tensor, value, offsets)


@handles("shared")
def _shared(tr: Translator, shape: Any, dtype: DataType, layout: Any = None) -> Var:
    return ops.shared(tr.b, shape, _dtype(tr, dtype), layout)


@handles("load_shared")
def _load_shared(tr: Translator, smem: Any, offsets: Any = None, shape: Any = None) -> Var:
    return ops.load_shared(tr.b, smem, offsets, shape)


@handles("store_shared")
def _store_shared(tr: Translator, smem: Any, value: Any, offsets: Any = None) -> None:
    ops.store_shared(tr.b, smem, value, offsets)


@handles("sync")
def _sync(tr: Translator) -> None:
    tr.b.instr("sync", None, [])


@handles("copy_async")
def _copy_async(
    tr: Translator,
    dst: Any,
    src: Any,
    offsets: Any,
    dst_offsets: Any = None,
    shape: Any = None,
) -> None:
    ops.copy_async(tr.b, dst, src, offsets, dst_offsets, shape)


@handles("commit_async")
def _commit_async(tr: Translator) -> None:
    tr.b.instr("commit_async", None, [])


@handles("wait_async")
def _wait_async(tr: Translator, pending: Any = 0) -> None:
    ops.wait_async(tr.b, pending)


@handles("zeros")
def _zeros(tr: Translator, shape: Any, dtype: DataType) -> Var:
    return ops.full(tr.b, shape, 0, _dtype(tr, dtype))


@handles("full")
def _full(tr: Translator, shape: Any, value: Any, dtype: DataType) -> Var:
    return ops.full(tr.b, shape, value, _dtype(tr, dtype))


@handles("arange")
def _arange(tr: Translator, start: Any, stop: Any = None) -> Var:
    if stop is None:
        start, stop = 0, start
    return ops.arange(tr.b, start, stop)


@handles("where")
def _where(tr: Translator, cond: Any, a: Any, b: Any) -> Any:
    return ops.where(tr.b, cond, a, b)


@handles("maximum")
def _maximum(tr: Translator, a: Any, b: Any) -> Any:
    return ops.binary(tr.b, "maximum", a, b)


@handles("minimum")
def _minimum(tr: Translator, a: Any, b: Any) -> Any:
    return ops.binary(tr.b, "minimum", a, b)


def _unary_handler(op: str) -> Handler:
    def handler(tr: Translator, x: Any) -> Any:
        return ops.unary(tr.b, op, x)

    return handler


def _approx_unary_handler(op: str) -> Handler:
    def handler(tr: Translator, x: Any, approx: Any = False) -> Any:
        return ops.unary(tr.b, op, x, approx=float_ops.approx_flag(tr.b, approx, f"tv.{op}"))

    return handler


_UNARY = ("log", "sqrt", "abs", "sin", "cos", "tan", "atan", "tanh", "erf", "sigmoid", "log1p",
          "expm1", "floor", "ceil")  # fmt: skip
for _op in _UNARY:
    HANDLERS[_op] = _unary_handler(_op)
for _op in sorted(APPROX - {"div"}):
    HANDLERS[_op] = _approx_unary_handler(_op)


@handles("pow")
def _pow(tr: Translator, x: Any, y: Any) -> Any:
    return float_ops.power(tr.b, x, y)


@handles("fdiv")
def _fdiv(tr: Translator, x: Any, y: Any, approx: Any = False) -> Any:
    return float_ops.fdiv(tr.b, x, y, float_ops.approx_flag(tr.b, approx, "tv.fdiv"))


@handles("cast")
def _cast(tr: Translator, x: Any, dtype: DataType) -> Any:
    return ops.cast(tr.b, x, _dtype(tr, dtype))


@handles("view")
def _view(
    tr: Translator, x: Any, dtype: Any = None, layout: Any = None, shape: Any = None
) -> Var:
    ops.check_threads(tr.b, layout, tr.num_threads)
    dtype = None if dtype is None else _dtype(tr, dtype)
    return views.view(tr.b, x, dtype, layout, shape, tr.num_threads)


@handles("sum")
def _sum(
    tr: Translator, x: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None
) -> Any:
    return reductions.reduce(tr.b, "sum", x, axis, bool(keepdims), dtype)


def _extremum_handler(op: str) -> Handler:
    # dtype= is taken so that passing one says why it has no meaning here
    def handler(
        tr: Translator, x: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None
    ) -> Any:
        return reductions.reduce(tr.b, op, x, axis, bool(keepdims), dtype)

    return handler


for _op in ("max", "min"):
    HANDLERS[_op] = _extremum_handler(_op)


@handles("cumsum")
def _cumsum(tr: Translator, x: Any, axis: Any = 0, reverse: Any = False) -> Var:
    return scans.scan(tr.b, x, axis, reverse, "tv.cumsum")


@handles("associative_scan")
def _associative_scan(tr: Translator, x: Any, axis: Any, combine: Any, reverse: Any = False) -> Var:
    tile = tr.b.require_tile(x, "tv.associative_scan")
    scans.scan_axis(tr.b, tile, axis, "tv.associative_scan")  # before translating the combine
    fn = scans.combine_function(tr, combine, tile, "tv.associative_scan")
    return scans.scan(tr.b, tile, axis, reverse, "tv.associative_scan", fn)


@handles("dot")
def _dot(tr: Translator, a: Any, b: Any, acc: Any = None, dtype: Any = None) -> Var:
    return reductions.dot(tr.b, a, b, acc, dtype)


@handles("reshape")
def _reshape(tr: Translator, x: Any, shape: Any) -> Var:
    return ops.reshape(tr.b, x, ops.static_shape(tr.b, shape, "tv.reshape shape"))


@handles("transpose")
def _transpose(tr: Translator, x: Any, dims: Any = None) -> Var:
    return ops.transpose(tr.b, x, dims)


@handles("annotate")
def _annotate(tr: Translator, x: Any, layout: Any) -> Var:
    ops.check_threads(tr.b, layout, tr.num_threads)
    return ops.annotate(tr.b, x, layout)


@handles("assume")
def _assume(tr: Translator, cond: Any) -> None:
    if not ops.is_runtime(cond):
        if not cond:
            raise tr.b.type_error(
                "tv.assume of a false compile-time condition", expected="True", found=repr(cond)
            )
        return
    if not isinstance(cond.type, ScalarType):
        raise tr.b.type_error(
            "tv.assume takes a scalar condition", expected="e.g. n % 16 == 0", found=describe(cond)
        )
    tr.b.instr("assume", None, [cond])


@handles("static_print")
def _static_print(tr: Translator, *values: Any) -> None:
    print(*(f"{v!r}: {v.type}" if isinstance(v, Var) else str(v) for v in values))


@handles("print")
def _print(tr: Translator, *values: Any) -> None:
    for v in values:
        if isinstance(v, Var) and isinstance(v.type, GlobalType):
            raise tr.b.type_error(
                "tv.print prints scalars and tiles",
                expected="a scalar or a tile (load the part of the tensor to print)",
                found=f"the tensor argument {v.name}",
            )
    args = [v for v in values if isinstance(v, Var)]
    labels = tuple(repr(v) if isinstance(v, Var) else str(v) for v in values)
    tr.b.instr("print", None, args, labels=labels)


@handles("num_threads")
def _num_threads(tr: Translator) -> int:
    return tr.num_threads


@handles("warp_size")
def _warp_size(tr: Translator) -> int:
    return tr.warp_size


@handles("cdiv")
def _cdiv(tr: Translator, a: Any, b: Any) -> Any:
    return ops.binary(
        tr.b, "floordiv", ops.binary(tr.b, "add", a, ops.binary(tr.b, "sub", b, 1)), b
    )


def _dtype(tr: Translator, value: Any) -> DataType:
    if not isinstance(value, DataType):
        raise tr.b.type_error(
            "expected a dtype", expected="a dtype such as tv.f32", found=describe(value)
        )
    return value


def tensor_dim(tr: Translator, tensor: Var, index: Any, what: str) -> Var:
    if not isinstance(tensor.type, GlobalType):
        raise tr.b.type_error(
            f"{what} of a non-tensor", expected="a tensor argument", found=describe(tensor)
        )
    if not isinstance(index, int) or not 0 <= index < tensor.type.rank:
        raise tr.b.type_error(
            f"{what} index", expected=f"an int in [0, {tensor.type.rank})", found=describe(index)
        )
    return tr.b.instr(
        what,
        ScalarType(tensor.type.index_dtype),
        [tensor],
        name=f"{tensor.name}_{what}{index}",
        axis=index,
    )
