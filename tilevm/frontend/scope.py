"""Names a kernel reads from outside its own body, and the guards that keep a compiled kernel
honest about them.

A kernel body (or an inlined ``@tv.func``'s) resolves a name that is not a parameter or a local
as Python does: a closure cell, else a module global, else a builtin. The frontend folds what it
finds into the program, so a compiled kernel is only the kernel's program while every value it
read still holds. Each read is recorded with a way to read the name again; a launch checks the
recorded values (identity first, then equality) and compiles again when one changed.

Only values that can be compared are accepted: numbers, strings, dtypes, layouts, frozen
dataclasses, containers of those (lists, dicts and sets as a copy, so a change in place is seen),
and functions, classes and modules (by identity). Anything else, such as a numpy array, could
change without the launch seeing it: reading one is a ``KernelValueError`` at its line.
"""

from __future__ import annotations

import builtins
import dataclasses
import enum
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from tilevm.dtypes import DataType, SourceLocation
from tilevm.errors import KernelValueError
from tilevm.layouts import RegisterLayout

ABSENT = object()  # what a guard reads for a name that is not there (a builtin's global)

# (read the name now: ``get(name, ABSENT)``, the name, the value it had when compiling)
Guard = tuple[Callable[[str, Any], Any], str, Any]

_SCALARS = (type(None), bool, int, float, complex, str, bytes, np.generic, DataType,
            RegisterLayout, enum.Enum)  # fmt: skip
_COPIED = (list, dict, set)


@dataclasses.dataclass(frozen=True)
class Read:
    """One name resolved outside the kernel's locals: in ``owner``'s scope (a function, for its
    closure and globals; a module or class, for an attribute)."""

    owner: Any
    name: str
    value: Any  # ABSENT: not a global (a builtin was used)
    get: Callable[[str, Any], Any]


class Reads:
    """Every outside name one specialization's translation read, in order, and every
    ``@tv.func`` it inlined."""

    def __init__(self) -> None:
        self.items: list[Read] = []
        self.inlined: list[Any] = []
        self._seen: set[tuple[int, str]] = set()

    def record(self, read: Read) -> None:
        key = (id(read.owner), read.name)
        if key not in self._seen:
            self._seen.add(key)
            self.items.append(read)

    def guards(self) -> tuple[Guard, ...]:
        return tuple((r.get, r.name, r.value) for r in self.items)


def guards_hold(guards: tuple[Guard, ...]) -> bool:
    """Whether every recorded name still has its value (cheap: the repeat-launch path calls
    it)."""
    for get, name, value in guards:
        now = get(name, ABSENT)
        if now is not value and not same(now, value):
            return False
    return True


def same(a: Any, b: Any) -> bool:
    """Equality of two values a kernel read, never raising (an array compared elementwise)."""
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:
        return False


class Scope:
    """How a body resolves the names it does not bind: ``fn``'s closure cells, then its module
    globals, then builtins. Each read goes to ``reads``, as one of ``owner``'s (the ``@tv.func``
    being inlined; by default ``fn`` itself)."""

    def __init__(self, fn: Any, reads: Reads, owner: Any = None) -> None:
        self.fn = fn
        self.reads = reads
        self.owner = fn if owner is None else owner

    def lookup(self, name: str, loc: SourceLocation | None) -> Any:
        """The value of ``name``; KeyError when it is not defined anywhere."""
        get = getter(self.fn, name)
        value = get(name, ABSENT)
        if value is ABSENT:
            if not hasattr(builtins, name):
                raise KeyError(name)
            self.reads.record(Read(self.owner, name, ABSENT, get))
            return getattr(builtins, name)
        return self.record(self.owner, name, value, get, loc)

    def attribute(self, owner: Any, name: str, value: Any, loc: SourceLocation | None) -> Any:
        """``owner.name`` of a module or class that is not tilevm's own: recorded like a global
        (tilevm's modules are part of the compiler and do not change)."""
        if isinstance(owner, (types.ModuleType, type)) and not _is_tilevm(owner):
            return self.record(owner, name, value, attribute_getter(owner, name), loc)
        return value

    def record(self, owner: Any, name: str, value: Any, get: Any, loc: Any) -> Any:
        checked = snapshot(value, name, loc)
        self.reads.record(Read(owner, name, checked, get))
        return value


def getter(fn: Any, name: str) -> Callable[[str, Any], Any]:
    """Reads ``name`` in ``fn``'s scope now: its closure cell if it has one, else its globals."""
    code = getattr(fn, "__code__", None)
    if code is not None and name in code.co_freevars:
        return _CellReader(fn.__closure__[code.co_freevars.index(name)]).get
    return fn.__globals__.get


class _CellReader:
    def __init__(self, cell: types.CellType) -> None:
        self.cell = cell

    def get(self, name: str, default: Any) -> Any:
        try:
            return self.cell.cell_contents
        except ValueError:  # not assigned yet
            return default


def attribute_getter(owner: Any, name: str) -> Callable[[str, Any], Any]:
    """Reads attribute ``name`` of a module or class now (a module's dict directly: faster)."""
    if isinstance(owner, types.ModuleType) and name in owner.__dict__:
        return owner.__dict__.get
    return lambda name, default: getattr(owner, name, default)


def _is_tilevm(owner: Any) -> bool:
    module = owner.__name__ if isinstance(owner, types.ModuleType) else owner.__module__
    return module == "tilevm" or module.startswith("tilevm.")


def snapshot(value: Any, name: str, loc: SourceLocation | None) -> Any:
    """``value`` as a guard keeps it: itself, or a copy of a list, dict or set (so a change in
    place is seen). A value that cannot be compared is a KernelValueError."""
    if isinstance(value, (tuple, frozenset)):
        copied = [snapshot(v, name, loc) for v in value]
        return value if all(c is v for c, v in zip(copied, value)) else type(value)(copied)
    if isinstance(value, _COPIED):
        if isinstance(value, dict):
            return {snapshot(k, name, loc): snapshot(v, name, loc) for k, v in value.items()}
        return type(value)(snapshot(v, name, loc) for v in value)
    if isinstance(value, _SCALARS) or callable(value) or isinstance(value, types.ModuleType):
        return value
    if dataclasses.is_dataclass(value) and type(value).__dataclass_params__.frozen:
        for field in dataclasses.fields(value):
            snapshot(getattr(value, field.name), name, loc)
        return value
    raise KernelValueError(
        f"the kernel reads '{name}', a {type(value).__module__}.{type(value).__qualname__}, "
        "which it cannot keep track of",
        expected="a value a launch can compare with the one the kernel was compiled with: a "
        "number, string, dtype, layout, frozen dataclass, a tuple/list/dict of those, a "
        "@tv.func, function, class or module",
        found=f"{name} = {type(value).__qualname__}",
        hint="pass it to the kernel as an argument: a tensor, or a tv.constexpr parameter for a "
        "value known when compiling",
        location=loc,
        code="global-value",
    )


__all__ = [
    "ABSENT",
    "Guard",
    "Read",
    "Reads",
    "Scope",
    "attribute_getter",
    "getter",
    "guards_hold",
    "same",
    "snapshot",
]
