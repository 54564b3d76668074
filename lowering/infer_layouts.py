"""Pass: give every register tile a layout, and make layout changes explicit.

Before: tiles the user did not annotate have ``layout=None``. After: every ``TileType`` has a
layout; every instruction's tile operands have the layouts its rule (``layout_rules``) needs,
through ``convert`` instructions where a value's layout differs from what a user needs.

Order of decisions: layouts the user gave (``layout=``, ``tv.annotate``, ``tv.view``) spread
first, through the rules in both directions; then each unassigned ``dot`` accumulator gets a
SIMT-friendly layout; then each unassigned global load a vectorized one; then anything left a
vectorized default. Each decision spreads before the next is made.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from tilevm.ir.nodes import (
    Assign,
    For,
    If,
    Instr,
    KernelIR,
    Literal,
    Operand,
    Stmt,
    Var,
    While,
    walk,
)
from tilevm.ir.types import TileType
from tilevm.layouts import RegisterLayout
from tilevm.lowering.layout_defaults import dot_layout, vector_layout
from tilevm.lowering.layout_rules import (
    BACKWARD,
    ELEMENTWISE,
    FLEXIBLE_OPERANDS,
    FORWARD,
    FREE_RESULT,
    is_tile,
    reads_in_place,
    try_reshape,
)
from tilevm.lowering.target import Target


@dataclass
class Conversion:
    """A layout change lowering performs through shared memory: for diagnostics and comments."""

    value: Var
    producer: Instr | None
    consumer: Stmt
    source: RegisterLayout
    target: RegisterLayout


@dataclass
class _Solver:
    kernel: KernelIR
    target: Target
    layouts: dict[Var, RegisterLayout] = field(default_factory=dict)
    uses: dict[Var, list[Instr | Assign]] = field(default_factory=dict)
    producer: dict[Var, Instr | Assign] = field(default_factory=dict)
    # every assignment to a variable (a loop-carried value has one before the loop and one
    # at the end of the body): each links the variable's layout to its value's
    assigns: dict[Var, list[Assign]] = field(default_factory=dict)

    def solve(self) -> dict[Var, RegisterLayout]:
        stmts = list(walk(self.kernel.body))
        for stmt in stmts:
            for op in _operands(stmt):
                if is_tile(op):
                    self.uses.setdefault(op, []).append(stmt)
            out = stmt.out if isinstance(stmt, Instr) else stmt.target
            if out is not None and is_tile(out):
                self.producer.setdefault(out, stmt)
            if isinstance(stmt, Assign) and is_tile(stmt.target):
                self.assigns.setdefault(stmt.target, []).append(stmt)
        fixed = [var for var in self.producer if var.type.layout is not None]
        for var in fixed:  # layouts the user gave hold before anything spreads
            self.layouts[var] = var.type.layout
        for var in fixed:
            self.spread(var)
        threads = self.kernel.num_threads
        for stmt in stmts:  # dot accumulators
            if isinstance(stmt, Instr) and stmt.op == "dot" and stmt.out not in self.layouts:
                self.assign(stmt.out, dot_layout(stmt, self.kernel.warps, threads, self.target))
        for stmt in stmts:  # global loads, then whatever is left
            if isinstance(stmt, Instr) and stmt.op == "load" and stmt.out not in self.layouts:
                self.assign(stmt.out, self.vector(stmt.out))
        for var in list(self.producer):
            if var not in self.layouts:
                self.assign(var, self.vector(var))
        for stmt in reversed(stmts):  # users before producers: wants travel up the chain
            if isinstance(stmt, Instr) and stmt.op in ELEMENTWISE and is_tile(stmt.out):
                self.settle_elementwise(stmt)
            elif isinstance(stmt, Instr) and stmt.op in ("reshape", "transpose"):
                self.settle_relabel(stmt)
        return self.layouts

    def settle_relabel(self, ins: Instr) -> None:
        """A reshape or transpose takes the layout its users need when one exists for its
        operand (which may then settle there in turn): a chain of elementwise instructions,
        reshapes and transposes ends up in the slot order of the instruction it feeds."""
        wanted = {w for w in self.wanted_by_users(ins.out) if w is not None}
        if len(wanted) != 1:
            return
        (layout,) = wanted
        if layout == self.layouts[ins.out] or layout.num_threads != self.kernel.num_threads:
            return
        if BACKWARD[ins.op](ins, layout, self.target)[0] is not None:
            self.layouts[ins.out] = layout

    def settle_elementwise(self, ins: Instr) -> None:
        """Compute an elementwise result directly in the layout its users need when its operands
        can be read in place from there (the layouts differ only in each thread's slot order):
        the permutation then costs nothing, where converting the result afterwards would move it
        through registers or shared memory, and the instruction sees its users' slot order (a
        cast can pair the slots its user reads as one register)."""
        out = ins.out
        wanted = {w for w in self.wanted_by_users(out) if w is not None}
        if len(wanted) != 1:
            return
        (layout,) = wanted
        if layout == self.layouts[out] or layout.num_threads != self.kernel.num_threads:
            return
        if all(reads_in_place(layout, self.layouts[a]) for a in ins.args if is_tile(a)):
            self.layouts[out] = layout

    def wanted_by_users(self, var: Var) -> Iterator[RegisterLayout | None]:
        """The layout each user of ``var`` needs it in (None: any)."""
        for user in self.uses.get(var, []):
            if isinstance(user, Assign):
                yield self.layouts.get(user.target)
            elif user.op in ("annotate", "convert"):
                yield self.layouts.get(user.out)
            elif user.op in FLEXIBLE_OPERANDS or user.out is None or not is_tile(user.out):
                yield None
            else:
                wanted = BACKWARD[user.op](user, self.layouts[user.out], self.target)
                yield from (w for a, w in zip(user.args, wanted) if a is var)

    def vector(self, var: Var) -> RegisterLayout:
        t = var.type
        return vector_layout(t.shape, t.dtype, self.kernel.num_threads, self.target)

    def assign(self, var: Var, layout: RegisterLayout) -> None:
        if var in self.layouts:
            return
        self.layouts[var] = layout
        self.spread(var)

    def spread(self, var: Var) -> None:
        queue = deque([var])
        while queue:
            for other, derived in self.neighbours(queue.popleft()):
                usable = derived is not None and derived.num_threads == self.kernel.num_threads
                if other not in self.layouts and usable:
                    self.layouts[other] = derived
                    queue.append(other)

    def neighbours(self, var: Var) -> Iterator[tuple[Var, RegisterLayout | None]]:
        """Values whose layout follows from ``var``'s, through one instruction."""
        stmts = list(self.uses.get(var, []))
        if var in self.producer:
            stmts.append(self.producer[var])
        stmts += [a for a in self.assigns.get(var, []) if a is not self.producer.get(var)]
        for stmt in stmts:
            if isinstance(stmt, Assign):
                yield from ((v, self.layouts[var]) for v in (stmt.target, stmt.value) if v != var)
                continue
            out = stmt.out
            open_result = out is not None and is_tile(out) and out not in self.layouts
            if open_result and stmt.op not in FREE_RESULT:
                known = [self.layouts.get(a) if is_tile(a) else None for a in stmt.args]
                yield out, FORWARD[stmt.op](stmt, known)
            if out is not None and out in self.layouts:
                wanted = BACKWARD[stmt.op](stmt, self.layouts[out], self.target)
                yield from ((a, w) for a, w in zip(stmt.args, wanted) if is_tile(a))


def _operands(stmt: Instr | Assign) -> tuple[Operand, ...]:
    return stmt.args if isinstance(stmt, Instr) else (stmt.value,)


# ----- rewrite --------------------------------------------------------------------------------


@dataclass
class _Rewriter:
    layouts: dict[Var, RegisterLayout]
    producer: dict[Var, Instr | Assign]
    target: Target
    names: dict[Var, Var] = field(default_factory=dict)
    conversions: list[Conversion] = field(default_factory=list)

    def var(self, old: Var) -> Var:
        if old not in self.names:
            t = old.type
            if isinstance(t, TileType):
                t = TileType(t.dtype, t.shape, self.layouts[old])
            self.names[old] = Var(old.name, t)
        return self.names[old]

    def operand(self, op: Operand) -> Operand:
        return op if isinstance(op, Literal) else self.var(op)

    def body(self, stmts: Sequence[Stmt]) -> tuple[Stmt, ...]:
        out: list[Stmt] = []
        for stmt in stmts:
            if isinstance(stmt, Instr):
                self.instr(stmt, out)
            elif isinstance(stmt, Assign):
                value = self.convert(stmt.value, self.layouts.get(stmt.target), stmt, out)
                out.append(Assign(self.var(stmt.target), value, stmt.loc))
            elif isinstance(stmt, For):
                args = [self.operand(o) for o in (stmt.start, stmt.stop, stmt.step)]
                body = self.body(stmt.body)
                out.append(For(self.var(stmt.var), *args, body, stmt.attrs, stmt.loc))
            elif isinstance(stmt, If):
                then, orelse = self.body(stmt.then_body), self.body(stmt.else_body)
                out.append(If(self.operand(stmt.cond), then, orelse, stmt.loc))
            else:
                cond_body = self.body(stmt.cond_body)
                out.append(
                    While(cond_body, self.operand(stmt.cond), self.body(stmt.body), stmt.loc)
                )
        return tuple(out)

    def convert(
        self,
        op: Operand,
        layout: RegisterLayout | None,
        user: Stmt,
        out: list[Stmt],
        result: RegisterLayout | None = None,
    ) -> Operand:
        """``op`` in ``layout`` (a ``convert`` if needed). ``result``: the layout of an
        elementwise user's result, which reads operands in place where it can."""
        new = self.operand(op)
        if layout is None or not is_tile(op) or new.type.layout == layout:
            return new
        if result is not None and reads_in_place(result, new.type.layout):
            return new
        t = new.type
        converted = Var(f"{op.name}.cvt", TileType(t.dtype, t.shape, layout))
        out.append(Instr("convert", converted, (new,), (), user.loc))
        self.conversions.append(
            Conversion(new, self.producer.get(op), user, new.type.layout, layout)
        )
        return converted

    def instr(self, ins: Instr, out: list[Stmt]) -> None:
        result = self.var(ins.out) if ins.out is not None else None
        if ins.op in ("annotate", "reshape", "transpose") and self.relayout(ins, result, out):
            return
        wanted = (
            BACKWARD[ins.op](ins, result.type.layout, self.target)
            if result is not None and is_tile(result) and ins.op not in FLEXIBLE_OPERANDS
            else [None] * len(ins.args)
        )
        in_place = result.type.layout if ins.op in ELEMENTWISE and is_tile(result) else None
        args = tuple(self.convert(a, w, ins, out, in_place) for a, w in zip(ins.args, wanted))
        natural = None
        if in_place is not None and all(
            reads_in_place(in_place, a.type.layout) for a in args if is_tile(a)
        ):
            pass  # computed where its users need it, reading the operands in place
        elif result is not None and is_tile(result) and ins.op not in FREE_RESULT:
            natural = FORWARD[ins.op](ins, [a.type.layout if is_tile(a) else None for a in args])
        if natural is not None and natural != result.type.layout:
            # the result's users settled on another layout: compute, then convert
            t = result.type
            temp = Var(f"{ins.out.name}.natural", TileType(t.dtype, t.shape, natural))
            out.append(Instr(ins.op, temp, args, ins.attrs, ins.loc))
            out.append(Instr("convert", result, (temp,), (), ins.loc))
            self.conversions.append(Conversion(temp, ins, ins, natural, t.layout))
            return
        out.append(Instr(ins.op, result, args, ins.attrs, ins.loc))

    def relayout(self, ins: Instr, result: Var, out: list[Stmt]) -> bool:
        """annotate/reshape/transpose: free when layouts line up, else one conversion (which
        reshapes too: it goes through the row-major order in shared memory)."""
        src = self.operand(ins.args[0])
        want = result.type.layout
        if ins.op == "transpose":
            return False  # the rule's backward layout makes the operand line up
        if ins.op == "reshape" and try_reshape(src.type.layout, result.type.shape) == want:
            return False
        if ins.op == "annotate" and src.type.layout == want:
            self.names[ins.out] = src
            return True
        out.append(Instr("convert", result, (src,), (), ins.loc))
        self.conversions.append(
            Conversion(src, self.producer.get(ins.args[0]), ins, src.type.layout, want)
        )
        return True


@dataclass(frozen=True)
class Inferred:
    kernel: KernelIR
    conversions: tuple[Conversion, ...]


def infer_layouts(kernel: KernelIR, target: Target) -> Inferred:
    solver = _Solver(kernel, target)
    layouts = solver.solve()
    rewriter = _Rewriter(layouts, solver.producer, target)
    params = tuple(type(p)(rewriter.var(p.var), p.kind) for p in kernel.params)
    body = rewriter.body(kernel.body)
    result = KernelIR(kernel.name, params, body, kernel.warps, kernel.warp_size, kernel.loc)
    return Inferred(result, tuple(rewriter.conversions))
