"""VM IR as text that reads like the source: one line per statement, nested by indentation."""

from __future__ import annotations

from typing import Any

from tilevm.ir.nodes import (
    Assign,
    Combine,
    For,
    If,
    Instr,
    KernelIR,
    Literal,
    Operand,
    Stmt,
    Var,
    While,
)


def print_kernel(kernel: KernelIR) -> str:
    params = ", ".join(f"{_v(p.var)}: {p.var.type}" for p in kernel.params)
    lines = [f"kernel {kernel.name}({params})  # {kernel.warps} warps x {kernel.warp_size} threads"]
    _body(kernel.body, 1, lines)
    return "\n".join(lines)


def _v(var: Var) -> str:
    return f"%{var.name}"


def _operand(op: Operand) -> str:
    return _v(op) if isinstance(op, Var) else _literal(op)


def _literal(lit: Literal) -> str:
    return f"{lit.value!r}:{lit.dtype}"


def _attr(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_attr(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value) if not isinstance(value, str) else repr(value)


def _body(body: tuple[Stmt, ...], depth: int, lines: list[str]) -> None:
    pad = "    " * depth
    if not body:
        lines.append(pad + "pass")
    for stmt in body:
        if isinstance(stmt, Instr):
            args = [_operand(a) for a in stmt.args] + [f"{k}={_attr(v)}" for k, v in stmt.attrs]
            call = f"{stmt.op}({', '.join(args)})"
            line = call if stmt.out is None else f"{_v(stmt.out)}: {stmt.out.type} = {call}"
        elif isinstance(stmt, Assign):
            line = f"{_v(stmt.target)} <- {_operand(stmt.value)}"
        elif isinstance(stmt, For):
            extra = "".join(f", {k}={_attr(v)}" for k, v in stmt.attrs)
            bounds = ", ".join(_operand(o) for o in (stmt.start, stmt.stop, stmt.step))
            lines.append(f"{pad}for {_v(stmt.var)} in range({bounds}{extra}):{_where(stmt)}")
            _body(stmt.body, depth + 1, lines)
            continue
        elif isinstance(stmt, If):
            lines.append(f"{pad}if {_operand(stmt.cond)}:{_where(stmt)}")
            _body(stmt.then_body, depth + 1, lines)
            if stmt.else_body:
                lines.append(f"{pad}else:")
                _body(stmt.else_body, depth + 1, lines)
            continue
        elif isinstance(stmt, While):
            lines.append(f"{pad}while:{_where(stmt)}")
            _body(stmt.cond_body, depth + 1, lines)
            lines.append(f"{pad}    condition {_operand(stmt.cond)}")
            lines.append(f"{pad}do:")
            _body(stmt.body, depth + 1, lines)
            continue
        else:  # pragma: no cover - the verifier rejects other nodes
            line = repr(stmt)
        lines.append(pad + line + _where(stmt))
        combine = stmt.attr("combine") if isinstance(stmt, Instr) else None
        if isinstance(combine, Combine):  # a scan's combining function, below its line
            _body(combine.body, depth + 1, lines)


def _where(stmt: Stmt) -> str:
    loc = stmt.loc
    return f"  # line {loc.line}" if loc is not None else ""
