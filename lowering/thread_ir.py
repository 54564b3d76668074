"""Thread IR: what one thread of the block executes, for C-style and LLVM renderers.

Values live in per-thread register arrays (one element per slot of a tile's layout) and named
scalars. Each expression carries the tilevm dtype it produces; a renderer maps dtypes to its own
types. Element storage differs from arithmetic: ``Decode`` turns a stored element into its
compute type (f32/f64 for floats, 32/64-bit ints), ``Encode`` rounds or wraps it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tilevm.dtypes import DataType
from tilevm.dtypes import i32 as I32


class Expr:
    dtype: DataType


@dataclass(frozen=True)
class Const(Expr):
    value: Any
    dtype: DataType = I32


@dataclass(frozen=True)
class Sym(Expr):
    """A named scalar: a parameter, a block-uniform value, a loop counter, the thread index."""

    name: str
    dtype: DataType = I32


@dataclass(frozen=True)
class Elem(Expr):
    """``array[index]`` of a per-thread register array holding elements of ``dtype``."""

    array: str
    index: Expr
    dtype: DataType


@dataclass(frozen=True)
class Bin(Expr):
    """C arithmetic in ``dtype`` (a compute type); comparisons produce u1."""

    op: str
    a: Expr
    b: Expr
    dtype: DataType


@dataclass(frozen=True)
class Un(Expr):
    op: str  # "neg" | "not" | "invert"
    a: Expr
    dtype: DataType


@dataclass(frozen=True)
class Call(Expr):
    """A target-neutral intrinsic (``exp``, ``shfl_xor``, ``floordiv``...); renderers spell it."""

    fn: str
    args: tuple[Expr, ...]
    dtype: DataType


@dataclass(frozen=True)
class Select(Expr):
    cond: Expr
    a: Expr
    b: Expr
    dtype: DataType


@dataclass(frozen=True)
class Convert(Expr):
    """A value conversion between compute types (int <-> float, widening, narrowing)."""

    a: Expr
    dtype: DataType


@dataclass(frozen=True)
class Decode(Expr):
    """A stored element of ``a.dtype`` as its compute type ``dtype``."""

    a: Expr
    dtype: DataType


@dataclass(frozen=True)
class Encode(Expr):
    """A compute value as an element of ``dtype``: floats round to nearest even, ints wrap."""

    a: Expr
    dtype: DataType


@dataclass(frozen=True)
class ToBits(Expr):
    """The bit pattern of a stored element, zero-extended (dtype is an unsigned int type)."""

    a: Expr
    dtype: DataType


@dataclass(frozen=True)
class FromBits(Expr):
    """The stored element whose bit pattern is the low ``dtype.bits`` bits of ``a``."""

    a: Expr
    dtype: DataType


@dataclass(frozen=True)
class Mem:
    """An element address: ``space`` is "global" (a tensor parameter) or "shared"; ``offset``
    counts elements of ``dtype`` from ``base`` (shared: byte offset ``base_bytes`` first)."""

    space: str
    base: str
    offset: Expr
    dtype: DataType
    base_bytes: int = 0


@dataclass(frozen=True)
class Load(Expr):
    mem: Mem
    dtype: DataType


@dataclass(frozen=True)
class Ref(Expr):
    """The address of ``array[index]``: a run of a register array handed to an intrinsic that
    reads or writes several consecutive slots (matrix fragments)."""

    array: str
    index: Expr
    dtype: DataType  # the array's element type


@dataclass(frozen=True)
class Addr(Expr):
    """The address of a memory element (for intrinsics that take pointers: async copies,
    matrix loads)."""

    mem: Mem
    dtype: DataType


# ----- statements -----------------------------------------------------------------------------


class Stmt:
    pass


@dataclass(frozen=True)
class Declare(Stmt):
    """A register array of ``size`` elements, or a scalar (``size`` None) with an initial value."""

    name: str
    dtype: DataType
    size: int | None = None
    init: Expr | None = None


@dataclass(frozen=True)
class Set(Stmt):
    target: Sym | Elem
    value: Expr


@dataclass(frozen=True)
class Store(Stmt):
    mem: Mem
    value: Expr


@dataclass(frozen=True)
class VecLoad(Stmt):
    """``array[index : index + count] = memory[mem : mem + count]`` as one aligned access."""

    array: str
    index: Expr
    mem: Mem
    count: int


@dataclass(frozen=True)
class VecStore(Stmt):
    mem: Mem
    array: str
    index: Expr
    count: int


@dataclass(frozen=True)
class Loop(Stmt):
    var: str
    start: Expr
    stop: Expr
    step: Expr
    body: tuple[Stmt, ...]
    unroll: bool = False
    dtype: DataType = I32  # the counter's type: i64 where a bound needs it


@dataclass(frozen=True)
class IfThen(Stmt):
    cond: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] = ()


@dataclass(frozen=True)
class Barrier(Stmt):
    pass


@dataclass(frozen=True)
class Comment(Stmt):
    text: str


@dataclass(frozen=True)
class Effect(Stmt):
    """An intrinsic called for its effect (an atomic bit store, a print)."""

    call: Call


@dataclass(frozen=True)
class Param:
    name: str  # in generated code
    kind: str  # "tensor" (a pointer), "scalar", "dim" or "stride" (i32 sizes)
    dtype: DataType
    arg: str = ""  # the kernel argument it comes from
    axis: int = -1  # for "dim" and "stride"


@dataclass(frozen=True)
class ThreadKernel:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    num_threads: int
    shared_bytes: int
    target: str


@dataclass(frozen=True)
class Forever(Stmt):
    """``while (true)``: left through ``Break`` (the VM's while loop tests in the middle)."""

    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class Break(Stmt):
    pass
