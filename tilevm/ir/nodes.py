"""VM IR: small frozen nodes, each with the source location it came from.

A kernel body is a list of statements. ``Instr`` computes one value from operands (values or
literals) and attributes; the structured statements ``For``, ``If`` and ``While`` hold nested
bodies; ``Assign`` gives a variable a new value (loop-carried state). Control flow is uniform
over the block, so every condition and bound is a scalar.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tilevm.dtypes import DataType, SourceLocation
from tilevm.ir.types import ValueType

_ids = itertools.count()


@dataclass(frozen=True, eq=False)
class Var:
    """A named value. Identity is the object (names may repeat: ``x``, ``x.1`` in printing)."""

    name: str
    type: ValueType
    uid: int = field(default_factory=lambda: next(_ids))

    def __repr__(self) -> str:
        return f"%{self.name}"


@dataclass(frozen=True)
class Literal:
    """A compile-time constant operand."""

    value: Any
    dtype: DataType

    def __repr__(self) -> str:
        return repr(self.value)


Operand = Var | Literal


@dataclass(frozen=True, eq=False)
class Instr:
    """``out = op(args..., attrs...)``; ``out`` is None for effects (store, sync, print)."""

    op: str
    out: Var | None
    args: tuple[Operand, ...]
    attrs: tuple[tuple[str, Any], ...] = ()
    loc: SourceLocation | None = None

    def attr(self, name: str, default: Any = None) -> Any:
        return dict(self.attrs).get(name, default)


@dataclass(frozen=True, eq=False)
class Assign:
    """``target = value``: a mutable variable (a loop-carried value) gets a new value."""

    target: Var
    value: Operand
    loc: SourceLocation | None = None


@dataclass(frozen=True, eq=False)
class For:
    var: Var
    start: Operand
    stop: Operand
    step: Operand
    body: tuple[Stmt, ...]
    attrs: tuple[tuple[str, Any], ...] = ()
    loc: SourceLocation | None = None


@dataclass(frozen=True, eq=False)
class If:
    cond: Operand
    then_body: tuple[Stmt, ...]
    else_body: tuple[Stmt, ...]
    loc: SourceLocation | None = None


@dataclass(frozen=True, eq=False)
class While:
    """Evaluate ``cond_body``, then loop while ``cond`` holds."""

    cond_body: tuple[Stmt, ...]
    cond: Operand
    body: tuple[Stmt, ...]
    loc: SourceLocation | None = None


Stmt = Instr | Assign | For | If | While


@dataclass(frozen=True, eq=False)
class Combine:
    """The combining function of a scan (the ``combine`` attribute of ``scan``): straight-line
    scalar instructions from two parameters, the running value and the next element, to one
    result of the same dtype. It reads nothing but its parameters and literals, so a backend
    may apply it any number of times, to any pair of values."""

    params: tuple[Var, Var]
    body: tuple[Instr, ...]
    result: Operand

    def __str__(self) -> str:
        a, b = self.params
        return f"combine({a!r}, {b!r}) -> {self.result!r}"


@dataclass(frozen=True, eq=False)
class Param:
    var: Var
    kind: str  # "tensor" or "scalar"


@dataclass(frozen=True, eq=False)
class KernelIR:
    """One specialization of a kernel: its parameters, body and the block's warp count."""

    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    warps: int
    warp_size: int
    loc: SourceLocation | None = None

    @property
    def num_threads(self) -> int:
        return self.warps * self.warp_size


def nested_bodies(stmt: Stmt) -> tuple[tuple[Stmt, ...], ...]:
    """The statement lists a structured statement holds, in program order."""
    if isinstance(stmt, For):
        return (stmt.body,)
    if isinstance(stmt, If):
        return (stmt.then_body, stmt.else_body)
    if isinstance(stmt, While):
        return (stmt.cond_body, stmt.body)
    return ()


def walk(stmts: tuple[Stmt, ...] | list[Stmt]) -> Iterator[Instr | Assign]:
    """Every instruction and assignment of a body, nested bodies included, in program order."""
    for stmt in stmts:
        if isinstance(stmt, (Instr, Assign)):
            yield stmt
        for body in nested_bodies(stmt):
            yield from walk(body)


WRITES = ("store", "atomic_add")  # instructions that write their first operand, a global tensor


def written_tensors(kernel: KernelIR) -> set[str]:
    """The names of the tensor parameters the kernel writes."""
    return {
        ins.args[0].name
        for ins in walk(kernel.body)
        if isinstance(ins, Instr) and ins.op in WRITES and isinstance(ins.args[0], Var)
    }
