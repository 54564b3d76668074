"""Checks that a kernel's IR is well formed; run after the frontend and after every pass.

A failure here is a bug in tilevm, not in the user's kernel: the message says which statement
broke which rule, to be reported.
"""

from __future__ import annotations

from collections.abc import Iterable

from tilevm.errors import CompileError
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
from tilevm.ir.types import GlobalType, ScalarType, SharedType, TileType

# op -> (number of operands or None for any, kind of result: "tile", "scalar", "shared", None)
SIGNATURES: dict[str, tuple[int | None, str | None]] = {
    "const": (1, "scalar"),
    "block_id": (0, "scalar"),
    "num_blocks": (0, "scalar"),
    "dim": (1, "scalar"),
    "stride": (1, "scalar"),
    "binary": (2, "any"),
    "compare": (2, "any"),
    "unary": (1, "any"),
    "where": (3, "any"),
    "cast": (1, "any"),
    "full": (1, "tile"),
    "arange": (0, "tile"),
    "annotate": (1, "tile"),
    "convert": (1, "tile"),
    "reshape": (1, "tile"),
    "transpose": (1, "tile"),
    "view": (1, "tile"),
    "reduce": (1, "any"),
    "scan": (1, "tile"),
    "dot": (3, "tile"),
    "load": (None, "tile"),
    "store": (None, None),
    "atomic_add": (None, None),
    "atomic_fetch_add": (None, "scalar"),
    "shared": (0, "shared"),
    "load_shared": (None, "tile"),
    "store_shared": (None, None),
    "sync": (0, None),
    "copy_async": (None, None),
    "commit_async": (0, None),
    "wait_async": (0, None),
    "assume": (1, None),
    "print": (None, None),
}


class VerifyError(CompileError):
    code = "internal-verify"


def verify(kernel: KernelIR) -> None:
    defined = {p.var for p in kernel.params}
    for p in kernel.params:
        if not isinstance(p.var.type, (GlobalType, ScalarType)):
            raise VerifyError(f"parameter {p.var!r} has type {p.var.type}", location=kernel.loc)
    _body(kernel.body, defined)


def _body(stmts: Iterable[Stmt], defined: set[Var]) -> None:
    for stmt in stmts:
        if isinstance(stmt, Instr):
            _instr(stmt, defined)
        elif isinstance(stmt, Assign):
            _uses(stmt, [stmt.value], defined)
            defined.add(stmt.target)
        elif isinstance(stmt, For):
            _uses(stmt, [stmt.start, stmt.stop, stmt.step], defined)
            _body(stmt.body, defined | {stmt.var})
        elif isinstance(stmt, If):
            _uses(stmt, [stmt.cond], defined)
            _scalar(stmt, stmt.cond)
            inner_then, inner_else = set(defined), set(defined)
            _body(stmt.then_body, inner_then)
            _body(stmt.else_body, inner_else)
            defined |= inner_then & inner_else
        elif isinstance(stmt, While):
            inner = set(defined)
            _body(stmt.cond_body, inner)
            _uses(stmt, [stmt.cond], inner)
            _scalar(stmt, stmt.cond)
            _body(stmt.body, inner)
        else:
            raise VerifyError(f"unknown statement {stmt!r}")


def _instr(ins: Instr, defined: set[Var]) -> None:
    if ins.op not in SIGNATURES:
        raise VerifyError(f"unknown instruction {ins.op!r}", location=ins.loc)
    arity, result = SIGNATURES[ins.op]
    if arity is not None and len(ins.args) != arity:
        raise VerifyError(f"{ins.op} takes {arity} operands, has {len(ins.args)}", location=ins.loc)
    _uses(ins, ins.args, defined)
    kinds = {"tile": TileType, "scalar": ScalarType, "shared": SharedType}
    if result is None and ins.out is not None or result is not None and ins.out is None:
        raise VerifyError(f"{ins.op} result presence is wrong", location=ins.loc)
    if result in kinds and not isinstance(ins.out.type, kinds[result]):
        raise VerifyError(f"{ins.op} must produce a {result}, not {ins.out.type}", location=ins.loc)
    if (
        ins.out is not None
        and isinstance(ins.out.type, TileType)
        and ins.out.type.layout is not None
    ) and ins.out.type.layout.shape != ins.out.type.shape:
        raise VerifyError(
            f"{ins.out!r}: layout shape differs from the tile shape", location=ins.loc
        )
    if ins.op == "scan":
        _scan(ins)
    if ins.out is not None:
        defined.add(ins.out)


SCAN_COMBINE_OPS = frozenset({"const", "binary", "compare", "unary", "where", "cast"})


def _scan(ins: Instr) -> None:
    """A scan keeps its operand's shape and dtype; its combining function (if any) is
    self-contained scalar code from its two parameters to a result of that dtype."""
    x, out = ins.args[0], ins.out
    if not isinstance(x, Var) or not isinstance(x.type, TileType):
        raise VerifyError(f"scan of {x!r}, not a tile", location=ins.loc)
    if (x.type.dtype, x.type.shape) != (out.type.dtype, out.type.shape):
        raise VerifyError(f"scan changes {x.type} into {out.type}", location=ins.loc)
    combine = ins.attr("combine")
    if combine is None:
        return
    if not isinstance(combine, Combine):
        raise VerifyError(f"scan's combine is {combine!r}", location=ins.loc)
    inner = set(combine.params)
    for stmt in combine.body:
        if not isinstance(stmt, Instr) or stmt.op not in SCAN_COMBINE_OPS:
            raise VerifyError(f"{stmt!r} in a scan's combine", location=ins.loc)
        _instr(stmt, inner)
        if not isinstance(stmt.out.type, ScalarType):
            raise VerifyError(f"{stmt.out!r} in a scan's combine is not a scalar", location=ins.loc)
    _uses(ins, [combine.result], inner)
    result = combine.result
    dtypes = {p.type.dtype for p in combine.params}
    dtypes.add(result.dtype if isinstance(result, Literal) else result.type.dtype)
    if dtypes != {x.type.dtype}:
        raise VerifyError(f"scan's combine works on {sorted(map(str, dtypes))}", location=ins.loc)


def _uses(stmt: Stmt, operands: Iterable[Operand], defined: set[Var]) -> None:
    for op in operands:
        if isinstance(op, Var) and op not in defined:
            raise VerifyError(f"{op!r} is used before it is defined", location=stmt.loc)
        if not isinstance(op, (Var, Literal)):
            raise VerifyError(f"bad operand {op!r}", location=stmt.loc)


def _scalar(stmt: Stmt, op: Operand) -> None:
    if isinstance(op, Var) and not isinstance(op.type, ScalarType):
        raise VerifyError(f"condition {op!r} is not a scalar", location=stmt.loc)
