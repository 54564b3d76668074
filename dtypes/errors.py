"""The root of every error tilevm raises on bad input.

It lives in the lowest layer (``tilevm.dtypes``, which imports nothing else of tilevm) so that the
layout algebra, the frontend, the lowering and the backends can all raise subclasses of one class:
``except tilevm.TilevmError`` catches every user-facing failure, and each subclass is also the
matching builtin (``ValueError``, ``TypeError``, ...) so generic handlers keep working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SourceLocation:
    """Where in the user's source an error points: shown as ``file:line:col`` plus a caret."""

    file: str
    line: int
    col: int = 0
    source_line: str | None = None

    def render(self) -> str:
        head = f"{self.file}:{self.line}:{self.col + 1}"
        if self.source_line is None:
            return head
        text = self.source_line.rstrip("\n")
        return f"{head}\n    {text}\n    {' ' * self.col}^"


class TilevmError(Exception):
    """Base class of all user-facing tilevm errors.

    Every error carries a stable ``code`` (a short slug tools can match on), a one-line
    ``message``, and where they help: what was ``expected``, what was ``found``, a ``hint`` that
    says how to fix it, and the ``location`` in the user's source.
    """

    code: str = "tilevm-error"

    def __init__(
        self,
        message: str,
        *,
        expected: str | None = None,
        found: str | None = None,
        hint: str | None = None,
        location: SourceLocation | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message
        self.expected = expected
        self.found = found
        self.hint = hint
        self.location = location
        if code is not None:
            self.code = code
        super().__init__(message)

    def __str__(self) -> str:
        lines = []
        if self.location is not None:
            lines.append(self.location.render())
        lines.append(f"error[{self.code}]: {self.message}")
        if self.expected is not None:
            lines.append(f"  expected: {self.expected}")
        if self.found is not None:
            lines.append(f"  found:    {self.found}")
        if self.hint is not None:
            lines.append(f"  hint:     {self.hint}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The same data as ``str(err)``, as JSON-ready values for tools and agents."""
        loc = self.location
        return {
            "code": self.code,
            "kind": type(self).__name__,
            "message": self.message,
            "expected": self.expected,
            "found": self.found,
            "hint": self.hint,
            "location": None
            if loc is None
            else {"file": loc.file, "line": loc.line, "col": loc.col, "source": loc.source_line},
        }


class TilevmValueError(TilevmError, ValueError):
    """A value (a name, a width, a shape) is outside what tilevm accepts."""


class TilevmTypeError(TilevmError, TypeError):
    """An argument has the wrong type."""


class DtypeError(TilevmValueError):
    """A data type name or parameter is invalid, or a conversion cannot be done."""

    code = "dtype"
