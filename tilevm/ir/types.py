"""Types of VM values: block-uniform scalars, and tensors in global, shared or register memory."""

from __future__ import annotations

from dataclasses import dataclass

from tilevm import dtypes as dts
from tilevm.dtypes import DataType
from tilevm.layouts import RegisterLayout, SharedLayout


@dataclass(frozen=True)
class ScalarType:
    """A value every thread of the block agrees on (indices, loop counters, kernel scalars)."""

    dtype: DataType

    def __str__(self) -> str:
        return str(self.dtype)


@dataclass(frozen=True)
class GlobalType:
    """A kernel tensor argument: dtype and rank fixed per specialization, sizes at run time."""

    dtype: DataType
    rank: int
    # sizes, strides or element offsets reach 2**31: index arithmetic on it is 64-bit (the
    # specialization decides, so tensors that fit keep 32-bit arithmetic)
    wide: bool = False

    @property
    def index_dtype(self) -> DataType:
        return dts.i64 if self.wide else dts.i32

    def __str__(self) -> str:
        wide = " (64-bit indices)" if self.wide else ""
        return f"global {self.dtype}[{', '.join('?' * self.rank)}]{wide}"


@dataclass(frozen=True)
class TileType:
    """A register tensor: a tile spread over the block's threads by ``layout`` (None until
    inferred or given)."""

    dtype: DataType
    shape: tuple[int, ...]
    layout: RegisterLayout | None = None

    def __str__(self) -> str:
        text = f"{self.dtype}[{', '.join(map(str, self.shape))}]"
        return text + (f" @ {self.layout!r}" if self.layout is not None else "")


@dataclass(frozen=True)
class SharedType:
    """A tile in the block's shared memory, placed by ``layout``."""

    dtype: DataType
    shape: tuple[int, ...]
    layout: SharedLayout

    def __str__(self) -> str:
        return f"shared {self.dtype}[{', '.join(map(str, self.shape))}]"


ValueType = ScalarType | GlobalType | TileType | SharedType

# Element types an atomic add exists for (``atomic_add``, ``atomic_fetch_add``): the widths
# global atomics have everywhere. A target may have fewer (``Target.atomic_add_dtypes``).
ATOMIC_ADD_DTYPES = frozenset({"i32", "u32", "i64", "u64", "f16", "bf16", "f32", "f64"})


def accumulator_dtype(dtype: DataType) -> DataType:
    """The dtype the partial sums of a ``tv.sum`` or ``tv.dot`` with a result of ``dtype`` are
    kept and rounded in, on every executor (docs/language.md, "Accumulation")."""
    if dtype.is_float:
        return dts.f64 if dtype.bits == 64 else dts.f32
    if dtype.bits > 32:
        return dts.i64 if dtype.kind == "int" else dts.u64
    return dts.u32 if dtype.kind == "uint" and dtype.bits == 32 else dts.i32
