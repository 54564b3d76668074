"""Errors of the kernel language, the compiler and the runtime (all ``TilevmError``)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

from tilevm.dtypes.errors import TilevmError, TilevmTypeError, TilevmValueError

F = TypeVar("F", bound=Callable[..., Any])


class CompileError(TilevmError, RuntimeError):
    """A kernel cannot be compiled: the message points at the offending source line. (Also a
    RuntimeError; the subclasses are the more precise builtin where there is one.)"""

    code = "compile"


class UnsupportedSyntaxError(CompileError, SyntaxError):
    """A Python construct the kernel language does not have."""

    code = "unsupported-syntax"

    def __init__(self, *args, **kwargs) -> None:  # SyntaxError's own __init__ takes other args
        CompileError.__init__(self, *args, **kwargs)


class KernelTypeError(CompileError, TypeError):
    """Operand dtypes or kinds do not fit an instruction."""

    code = "type"


class KernelAttributeError(CompileError, AttributeError):
    """A kernel reads a name that its owner (``tv``, a module, a tile) does not have."""

    code = "attribute"

    def __init__(self, *args, **kwargs) -> None:  # AttributeError's own __init__ takes name=
        CompileError.__init__(self, *args, **kwargs)


class ShapeError(CompileError, ValueError):
    """Tile shapes do not fit an instruction."""

    code = "shape"


class KernelValueError(CompileError, ValueError):
    """A value known when the kernel compiles is not one the construct takes."""

    code = "value"


class InlineDepthError(CompileError, RecursionError):
    """@tv.func calls nest too deep to inline (a helper that calls itself without end)."""

    code = "call-depth"


class LaunchError(TilevmValueError):
    """A launch's arguments, grid or options are wrong."""

    code = "launch"


class LaunchTypeError(TilevmTypeError):
    """A launch argument has the wrong type."""

    code = "launch-type"


class DeviceError(TilevmValueError):
    """The requested device is not available here."""

    code = "device"


def full_tracebacks() -> bool:
    """``TILEVM_FULL_TRACEBACK=1``: errors keep the frames of tilevm's own code (for people
    working on the compiler)."""
    return os.environ.get("TILEVM_FULL_TRACEBACK", "") not in ("", "0")


def entry_point(fn: F) -> F:
    """Marks a public API function: a TilevmError raised anywhere below it leaves with a
    traceback that starts here, so a user sees their own call and the error's message (the
    kernel's file:line:col and caret), not the compiler's frames. The error's ``__cause__``
    (an underlying exception) is kept."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TilevmError as exc:
            if full_tracebacks():
                raise
            raise exc.with_traceback(None)  # noqa: B904 - the same error, its frames dropped

    return call  # type: ignore[return-value]


__all__ = [
    "CompileError",
    "DeviceError",
    "KernelAttributeError",
    "KernelTypeError",
    "LaunchError",
    "LaunchTypeError",
    "ShapeError",
    "TilevmError",
    "UnsupportedSyntaxError",
    "entry_point",
]
