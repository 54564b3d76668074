"""Errors of the kernel language, the compiler and the runtime (all ``TilevmError``)."""

from __future__ import annotations

from tilevm.dtypes.errors import TilevmError, TilevmTypeError, TilevmValueError


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


__all__ = [
    "CompileError",
    "DeviceError",
    "KernelTypeError",
    "LaunchError",
    "LaunchTypeError",
    "ShapeError",
    "TilevmError",
    "UnsupportedSyntaxError",
]
