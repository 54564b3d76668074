"""Analysis: the largest power of two known to divide each block-uniform integer.

Facts come from literals, from the launch's specialization (tensor strides, through
``stride_align``), from ``tv.assume(x % c == 0)``, and flow through + - * << and loops.
Vector widths of memory accesses are derived from these facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import gcd

from tilevm.ir.nodes import (
    Assign,
    For,
    Instr,
    KernelIR,
    Literal,
    Operand,
    Stmt,
    Var,
    nested_bodies,
)

UNKNOWN = 1
CAP = 1 << 16  # "divisible by anything we care about" (zero, large powers of two)


def _pow2(n: int) -> int:
    n = abs(int(n))
    return CAP if n == 0 else min(n & -n, CAP)


class Divisibility:
    def __init__(self, kernel: KernelIR, stride_align: dict[str, int]) -> None:
        self.known: dict[Var, int] = {}
        self.stride_align = stride_align  # tensor parameter name -> divisor of non-last strides
        self.assumed: dict[Var, int] = {}
        self.defs: dict[Var, Instr] = {}
        self._collect(kernel.body)
        self._visit(kernel.body)

    def of(self, op: Operand) -> int:
        if isinstance(op, Literal):
            return _pow2(op.value) if isinstance(op.value, int) else UNKNOWN
        return max(self.known.get(op, UNKNOWN), self.assumed.get(op, UNKNOWN))

    def _collect(self, stmts: Sequence[Stmt]) -> None:
        for stmt in stmts:
            if isinstance(stmt, Instr):
                if stmt.out is not None:
                    self.defs[stmt.out] = stmt
                if stmt.op == "assume":
                    self._assume(stmt.args[0])
            for body in nested_bodies(stmt):
                self._collect(body)

    def _assume(self, cond: Operand) -> None:
        """``tv.assume(x % c == 0)``: x is a multiple of c."""
        eq = self.defs.get(cond) if isinstance(cond, Var) else None
        if eq is None or eq.op != "compare" or eq.attr("op") != "eq":
            return
        lhs, rhs = eq.args
        mod = self.defs.get(lhs) if isinstance(lhs, Var) else None
        if not (isinstance(rhs, Literal) and rhs.value == 0 and mod is not None):
            return
        if mod.op == "binary" and mod.attr("op") == "mod" and isinstance(mod.args[1], Literal):
            x = mod.args[0]
            if isinstance(x, Var):
                self.assumed[x] = max(self.assumed.get(x, 1), _pow2(mod.args[1].value))

    def _visit(self, stmts: Sequence[Stmt]) -> None:
        for stmt in stmts:
            if isinstance(stmt, Instr) and stmt.out is not None:
                self.known[stmt.out] = self._rule(stmt)
            elif isinstance(stmt, For):
                self.known[stmt.var] = gcd(self.of(stmt.start), self.of(stmt.step))
            elif isinstance(stmt, Assign):
                # loop-carried values may change in ways one pass does not see: assume nothing
                self.known[stmt.target] = UNKNOWN
            for body in nested_bodies(stmt):
                self._visit(body)

    def _rule(self, ins: Instr) -> int:
        a = [self.of(x) for x in ins.args]
        if ins.op == "const":
            return a[0]
        if ins.op == "stride":
            tensor = ins.args[0]
            if ins.attr("axis") % tensor.type.rank == tensor.type.rank - 1:
                return UNKNOWN
            return self.stride_align.get(tensor.name, UNKNOWN)
        if ins.op != "binary":
            return UNKNOWN
        op = ins.attr("op")
        if op in ("add", "sub"):
            return gcd(a[0], a[1])
        if op == "mul":
            return min(a[0] * a[1], CAP)
        if op == "lshift" and isinstance(ins.args[1], Literal):
            count = int(ins.args[1].value)
            if not 0 <= count < ins.out.type.dtype.bits:  # read as unsigned: every bit out, 0
                return CAP
            return min(a[0] << count, CAP)
        return UNKNOWN
