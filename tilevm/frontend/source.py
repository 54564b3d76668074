"""Source text and locations of kernel functions."""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any

from tilevm.dtypes import SourceLocation
from tilevm.errors import CompileError


@dataclass(frozen=True)
class FunctionSource:
    """A function's parsed source, with what is needed to point at any of its nodes."""

    file: str
    first_line: int  # line of the ``def`` in the file
    indent: int  # columns removed by dedenting
    lines: tuple[str, ...]  # the file's lines of the function, as written
    tree: ast.FunctionDef

    @classmethod
    def of(cls, fn: Any) -> FunctionSource:
        try:
            lines, first = inspect.getsourcelines(fn)
            file = inspect.getsourcefile(fn) or "<unknown>"
        except (OSError, TypeError) as exc:
            raise CompileError(
                f"cannot read the source of {getattr(fn, '__name__', fn)!r}",
                expected="a function defined in a file",
                found=str(exc),
                hint="kernels are compiled from their source: define them in a .py file",
                code="no-source",
            ) from exc
        text = "".join(lines)
        dedented = textwrap.dedent(text)
        indent = len(lines[0]) - len(lines[0].lstrip())
        module = ast.parse(dedented)
        tree = next(
            node
            for node in module.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        )
        # decorators come first in the source lines; the def line is where the body starts
        return cls(file, first, indent, tuple(lines), tree)

    def loc(self, node: ast.AST | None) -> SourceLocation | None:
        if node is None or not hasattr(node, "lineno"):
            return None
        index = node.lineno - 1
        text = self.lines[index] if 0 <= index < len(self.lines) else None
        return SourceLocation(
            self.file, self.first_line + index, node.col_offset + self.indent, text
        )
