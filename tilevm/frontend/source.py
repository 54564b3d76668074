"""Source text and locations of kernel functions."""

from __future__ import annotations

import ast
import hashlib
import inspect
import os
import textwrap
from dataclasses import dataclass, replace
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
    # sha256 of the file when the source was read ("" if unreadable): the compile caches key
    # what was translated, which a file edited since then no longer says
    digest: str = ""

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
        digest = file_digest(getattr(getattr(fn, "__code__", None), "co_filename", file))
        return cls(file, first, indent, tuple(lines), tree, digest)

    def loc(self, node: ast.AST | None) -> SourceLocation | None:
        if node is None or not hasattr(node, "lineno"):
            return None
        index = node.lineno - 1
        text = self.lines[index] if 0 <= index < len(self.lines) else None
        return SourceLocation(
            self.file, self.first_line + index, node.col_offset + self.indent, text
        )

    def attribute_loc(self, node: ast.Attribute) -> SourceLocation | None:
        """Where ``name`` of ``owner.name`` starts: the caret goes under the missing name."""
        loc = self.loc(node)
        if loc is None or node.end_lineno != node.lineno or node.end_col_offset is None:
            return loc
        name_col = node.end_col_offset - len(node.attr)
        return replace(loc, col=loc.col + name_col - node.col_offset)


_digests: dict[str, tuple[tuple[int, int], str]] = {}


def file_digest(path: str) -> str:
    """sha256 of a source file ("" if it cannot be read), read again only when its size or
    modification time changes."""
    try:
        stat = os.stat(path)
        stamp = (stat.st_size, stat.st_mtime_ns)
        known = _digests.get(path)
        if known is not None and known[0] == stamp:
            return known[1]
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return ""
    _digests[path] = (stamp, digest)
    return digest
