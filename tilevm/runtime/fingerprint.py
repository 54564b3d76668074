"""Stable text for the values a compiled kernel depends on, the same in every process: the keys
of the program cache (``tilevm.runtime.programs``) are built from it.

Numbers, strings, dtypes, layouts, frozen dataclasses and containers of them are written out
in full. Code is named and pinned to its source file: a kernel, a ``@tv.func`` (with its
defaults) or another Python function or class by its qualified name, first line and the digest
of the file that defines it; tilevm's own code by its name (tilevm's files are in every key).
What has no such text (an object of an ordinary class, a function without a source file) raises
``Unkeyable``: such a kernel is compiled in each process, never kept on disk.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
from typing import Any

import numpy as np

from tilevm.dtypes import DataType
from tilevm.frontend.expressions import Func
from tilevm.frontend.scope import ABSENT
from tilevm.frontend.source import FunctionSource
from tilevm.frontend.source import file_digest as source_file_digest
from tilevm.layouts import RegisterLayout


class Unkeyable(Exception):
    """A value with no text that is the same in another process."""


def fingerprint(value: Any) -> str:
    """Text that differs whenever ``value`` would make a kernel compile differently."""
    if value is ABSENT:
        return "absent"
    if isinstance(value, (bool, int, complex, str, bytes)) or value is None:
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, float):
        return f"float:{value.hex()}"
    if isinstance(value, np.generic):
        return f"np.{value.dtype.name}:{value.tobytes().hex()}"
    if isinstance(value, DataType):
        return f"dtype:{value.name}"
    if isinstance(value, RegisterLayout):
        parts = (value.shape, value.modes, value.spatial_modes, value.local_modes)
        return f"register-layout:{parts!r}"
    if isinstance(value, enum.Enum):
        return f"{code_fingerprint(type(value))}.{value.name}"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__}({','.join(fingerprint(v) for v in value)})"
    if isinstance(value, (set, frozenset)):
        return f"{type(value).__name__}({','.join(sorted(fingerprint(v) for v in value))})"
    if isinstance(value, dict):
        items = ",".join(f"{fingerprint(k)}:{fingerprint(v)}" for k, v in value.items())
        return f"dict({items})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ",".join(
            f"{f.name}={fingerprint(getattr(value, f.name))}" for f in dataclasses.fields(value)
        )
        return f"{code_fingerprint(type(value))}({fields})"
    if isinstance(value, Func):
        return func_fingerprint(value)
    if isinstance(value, types.ModuleType):
        return f"module:{value.__name__}"
    if callable(value):
        return code_fingerprint(value)
    raise Unkeyable(f"{type(value).__module__}.{type(value).__qualname__}")


def func_fingerprint(func: Func) -> str:
    """A ``@tv.func``: its source and its defaults (the globals it reads are recorded
    separately, as the kernel's are)."""
    fn = func.fn
    defaults = fingerprint((fn.__defaults__ or (), sorted((fn.__kwdefaults__ or {}).items())))
    return f"func:{source_text(fn, func.read_source)}:{defaults}"


def code_fingerprint(obj: Any) -> str:
    """A function or class other than a ``@tv.func``: its name and the file that defines it."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise Unkeyable(type(obj).__qualname__)
    name = f"{module}.{qualname}"
    if module == "tilevm" or module.startswith("tilevm."):
        return f"tilevm:{name}"  # tilevm's own files are part of every key
    code = getattr(obj, "__code__", None)
    line = code.co_firstlineno if code is not None else 0  # two lambdas of one file differ
    path = getattr(sys.modules.get(module), "__file__", None)
    if path is None or not path.endswith(".py"):
        top = sys.modules.get(module.partition(".")[0])
        if code is not None:  # Python code with no file: nothing pins its text
            raise Unkeyable(name)
        return f"native:{name}:{getattr(top, '__version__', '')}"
    return f"code:{name}:{line}:{file_digest(path)}"


def file_digest(path: str) -> str:
    digest = source_file_digest(path)
    if not digest:
        raise Unkeyable(f"cannot read {path}")
    return digest


def source_text(fn: Any, read: FunctionSource | None = None) -> str:
    """A kernel's or helper's source: its name, where it starts and the digest of its whole
    file (cheaper than cutting the function out of the file, and whatever changes in the
    function changes it). ``read``: its source as translated in this process, whose digest is
    the one that says what was translated, should the file have changed since."""
    code = getattr(fn, "__code__", None)
    if code is None:
        raise Unkeyable(repr(fn))
    digest = read.digest if read is not None else file_digest(code.co_filename)
    if not digest:
        raise Unkeyable(f"cannot read {code.co_filename}")
    return f"{fn.__module__}.{fn.__qualname__}@{code.co_filename}:{code.co_firstlineno}:{digest}"


def owners(value: Any) -> list[Any]:
    """The ``@tv.func``s, modules and classes inside a value, whose own names a kernel may read
    next (a helper in a tuple, a module's attribute)."""
    if isinstance(value, (Func, types.ModuleType, type)):
        return [value]
    if isinstance(value, (tuple, list, set, frozenset)):
        return [o for v in value for o in owners(v)]
    if isinstance(value, dict):
        return [o for v in value.values() for o in owners(v)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [o for f in dataclasses.fields(value) for o in owners(getattr(value, f.name))]
    return []


__all__ = ["Unkeyable", "code_fingerprint", "file_digest", "fingerprint", "owners", "source_text"]
