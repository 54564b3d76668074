"""Pass: VM IR (layouts inferred, shared memory planned) -> thread IR.

Before: every tile has a layout; operands have the layouts their instructions need (see
``infer_layouts``); ``plan`` places shared memory. After: a ``ThreadKernel`` whose statements
one thread runs: register arrays of each tile's slots, loops over slots (unrolled by the
renderer's compiler), vector memory accesses, barriers, shuffles.

Instruction lowering lives in ``lower_tile`` (elementwise, casts, views), ``lower_memory``
(global and shared loads and stores, conversions) and ``lower_reduce`` (reductions, dot); this
file walks the program and owns names and statement lists.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tilevm import dtypes as dts
from tilevm.dtypes import DataType
from tilevm.errors import CompileError
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
    nested_bodies,
)
from tilevm.ir.types import GlobalType, TileType
from tilevm.lowering import thread_ir as t
from tilevm.lowering.divisibility import Divisibility
from tilevm.lowering.exprs import compute_type, const, replica_guard
from tilevm.lowering.plan_shared import SharedPlan
from tilevm.lowering.target import Target


@dataclass(frozen=True)
class TensorFacts:
    """What a launch's specialization promises about a tensor argument."""

    contiguous: bool = True  # last stride is 1
    aligned16: bool = True  # base address is a multiple of 16 bytes
    stride_align: int = 1  # every other stride is a multiple of this many elements
    extent_align: int = 1  # the last dimension's extent is a multiple of this many elements


_RESERVED = {
    "int", "float", "double", "char", "short", "long", "unsigned", "signed", "void", "bool",
    "const", "static", "struct", "union", "return", "if", "else", "for", "while", "do", "break",
    "continue", "switch", "case", "default", "goto", "auto", "register", "volatile", "inline",
    "template", "typename", "class", "new", "delete", "this", "true", "false", "half", "tid",
    "lane", "warp", "tv_smem", "main", "sizeof", "operator", "namespace", "using", "max", "min",
    # the C math functions generated code calls by name (a local array `exp` would hide exp())
    "exp", "exp2", "log", "log2", "sqrt", "sin", "cos", "tan", "atan", "tanh", "erf", "log1p",
    "expm1", "floor", "ceil", "pow", "fabs", "fma", "fmod", "copysign", "trunc", "ldexp",
    "expf", "exp2f", "logf", "log2f", "sqrtf", "sinf", "cosf", "tanf", "atanf", "tanhf", "erff",
    "log1pf", "expm1f", "floorf", "ceilf", "powf", "fabsf", "fmaf", "printf", "sycl",
}  # fmt: skip


class Names:
    """C identifiers derived from the kernel's own names (``acc.1`` -> ``acc_1``), unique."""

    def __init__(self) -> None:
        self.taken: set[str] = set()
        self.of: dict[Var, str] = {}

    def fresh(self, hint: str) -> str:
        base = re.sub(r"\W", "_", hint) or "v"
        if base[0].isdigit():
            base = "v" + base
        # tv_ names belong to generated helpers and loop counters; _ prefixes to the compiler
        if base in _RESERVED or keyword.iskeyword(base) or base.startswith(("_", "tv_")):
            base = base.lstrip("_") + "_"
        name, n = base, 1
        while name in self.taken:
            name, n = f"{base}_{n}", n + 1
        self.taken.add(name)
        return name

    def var(self, var: Var) -> str:
        if var not in self.of:
            self.of[var] = self.fresh(var.name)
        return self.of[var]


Handler = Callable[["Lowerer", Instr], None]
HANDLERS: dict[str, Handler] = {}


def lowers(*ops: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for op in ops:
            HANDLERS[op] = fn
        return fn

    return register


class Lowerer:
    def __init__(
        self,
        kernel: KernelIR,
        target: Target,
        plan: SharedPlan,
        facts: dict[str, TensorFacts],
        divisibility: Divisibility,
    ) -> None:
        self.kernel = kernel
        self.target = target
        self.plan = plan
        self.facts = facts
        self.div = divisibility
        self.threads = kernel.num_threads
        self.names = Names()
        self.params: list[t.Param] = []
        self.dims: dict[tuple[Var, str, int], str] = {}
        self._bodies: list[list[t.Stmt]] = [[]]
        self._line: int | None = None
        self.tid = t.Sym("tid")
        self.views: dict[Var, tuple] = {}  # a view's result -> (the tile it reads, a mark)
        self.carried: set[Var] = set()  # values that Assign changes (not read through views)
        self.assigned: dict[Var, int] = {}  # how many Assigns to each value were emitted

    # ----- statement lists --------------------------------------------------------------------
    def emit(self, stmt: t.Stmt) -> None:
        self._bodies[-1].append(stmt)

    @contextmanager
    def block(self) -> Iterator[list[t.Stmt]]:
        self._bodies.append([])
        body = self._bodies[-1]
        try:
            yield body
        finally:
            self._bodies.pop()

    @contextmanager
    def first_holders(self, layout) -> Iterator[None]:
        """Statements emitted inside run only on the first thread holding each element of
        ``layout`` (where it is replicated), so stores and copies happen once."""
        with self.block() as body:
            yield
        guard = replica_guard(layout, self.tid)
        if guard is None:
            self._bodies[-1].extend(body)
        else:
            self.emit(t.IfThen(guard, tuple(body)))

    def slots(self, count: int, body: Callable[[t.Expr], None], step: int = 1, var: str = "tv_i"):
        """``for (i = 0; i < count; i += step)``, unrolled; a single iteration is inlined."""
        if count <= step:
            body(const(0))
            return
        with self.block() as inner:
            body(t.Sym(var))
        self.emit(t.Loop(var, const(0), const(count), const(step), tuple(inner), unroll=True))

    # ----- values -----------------------------------------------------------------------------
    def name(self, var: Var) -> str:
        return self.names.var(var)

    def scalar(self, op: Operand) -> t.Expr:
        """A block-uniform operand in its compute type."""
        if isinstance(op, Literal):
            return t.Const(op.value, compute_type(op.dtype))
        return t.Decode(t.Sym(self.name(op), op.type.dtype), compute_type(op.type.dtype))

    def index(self, op: Operand) -> t.Expr:
        """A scalar used as an index: i32, or i64 where its type needs more (a 64-bit offset,
        a u32 past 2**31), so no index is ever truncated."""
        if isinstance(op, Literal):
            return const(int(op.value))
        dtype = op.type.dtype
        if dtype == dts.i64:
            return t.Sym(self.name(op), dtype)
        if dtype.bits > 32 or (dtype.bits == 32 and dtype.kind == "uint"):
            return t.Convert(t.Sym(self.name(op), dtype), dts.i64)
        return t.Sym(self.name(op))

    def element(self, var: Var, slot: t.Expr) -> t.Expr:
        return t.Decode(t.Elem(self.name(var), slot, var.type.dtype), compute_type(var.type.dtype))

    def declare_tile(self, var: Var) -> str:
        name = self.name(var)
        self.emit(t.Declare(name, var.type.dtype, var.type.layout.local_size))
        return name

    def define_scalar(self, var: Var, value: t.Expr) -> None:
        self.emit(t.Declare(self.name(var), var.type.dtype, None, t.Encode(value, var.type.dtype)))

    # ----- the walk ---------------------------------------------------------------------------
    def lower(self) -> t.ThreadKernel:
        for p in self.kernel.params:
            self._param(p.var)
        self._declare_carried(self.kernel.body)
        self.body(self.kernel.body)
        return t.ThreadKernel(
            self.kernel.name,
            tuple(self.params),
            tuple(self._bodies[0]),
            self.threads,
            self.plan.total,
            self.target.name,
        )

    def _param(self, var: Var) -> None:
        name = self.name(var)
        if isinstance(var.type, GlobalType):
            self.params.append(t.Param(name, "tensor", var.type.dtype, var.name))
            for d in range(var.type.rank):
                for kind in ("shape", "stride"):
                    self.dims[(var, kind, d)] = self.names.fresh(f"{name}_{kind}{d}")
                    self.params.append(
                        t.Param(
                            self.dims[(var, kind, d)],
                            kind if kind == "stride" else "dim",
                            var.type.index_dtype,
                            var.name,
                            d,
                        )  # fmt: skip
                    )
        else:
            self.params.append(t.Param(name, "scalar", var.type.dtype, var.name))

    def shape_sym(self, tensor: Var, d: int) -> t.Sym:
        return t.Sym(self.dims[(tensor, "shape", d)], tensor.type.index_dtype)

    def stride_sym(self, tensor: Var, d: int) -> t.Expr:
        if d == tensor.type.rank - 1 and self.facts.get(tensor.name, TensorFacts()).contiguous:
            return const(1)
        return t.Sym(self.dims[(tensor, "stride", d)], tensor.type.index_dtype)

    def _declare_carried(self, stmts) -> None:
        """Variables given new values by ``Assign`` are declared once, up front, so they outlive
        the branches and loops that assign them."""
        for stmt in stmts:
            if isinstance(stmt, Assign):
                self.carried.add(stmt.target)
            if isinstance(stmt, Assign) and stmt.target not in self.names.of:
                v = stmt.target
                size = v.type.layout.local_size if isinstance(v.type, TileType) else None
                self.emit(t.Declare(self.name(v), v.type.dtype, size))
            for body in nested_bodies(stmt):
                self._declare_carried(body)

    def body(self, stmts) -> None:
        for stmt in stmts:
            self._comment(stmt)
            if isinstance(stmt, Instr):
                handler = HANDLERS.get(stmt.op)
                if handler is None:
                    raise CompileError(
                        f"instruction {stmt.op} has no GPU lowering yet",
                        location=stmt.loc,
                        code="unsupported-instruction",
                    )
                handler(self, stmt)
            elif isinstance(stmt, Assign):
                self._assign(stmt)
            elif isinstance(stmt, For):
                self._for(stmt)
            elif isinstance(stmt, If):
                with self.block() as then:
                    self.body(stmt.then_body)
                with self.block() as orelse:
                    self.body(stmt.else_body)
                self.emit(t.IfThen(t.Bin("ne", self.scalar(stmt.cond), const(0), _u1()),
                                   tuple(then), tuple(orelse)))  # fmt: skip
            elif isinstance(stmt, While):
                with self.block() as inner:
                    self.body(stmt.cond_body)
                    self.emit(t.IfThen(t.Bin("eq", self.scalar(stmt.cond), const(0), _u1()),
                                       (t.Break(),)))  # fmt: skip
                    self.body(stmt.body)
                self.emit(t.Forever(tuple(inner)))

    def _comment(self, stmt: Stmt) -> None:
        loc = getattr(stmt, "loc", None)
        if loc is None or loc.line == self._line:
            return
        self._line = loc.line
        text = (loc.source_line or "").strip()
        self.emit(t.Comment(f"line {loc.line}: {text}" if text else f"line {loc.line}"))

    def reads_unchanged(self, var: Var) -> tuple:
        """A mark: ``unchanged_since(var, mark)`` later says whether code emitted in between,
        in the same statement list, can see a different ``var`` (an Assign to it)."""
        return (self._bodies[-1], self.assigned.get(var, 0))

    def unchanged_since(self, var: Var, mark: tuple) -> bool:
        body, count = mark
        return body is self._bodies[-1] and count == self.assigned.get(var, 0)

    def _assign(self, stmt: Assign) -> None:
        target = stmt.target
        self.assigned[target] = self.assigned.get(target, 0) + 1
        if isinstance(target.type, TileType):
            name = self.name(target)
            self.slots(
                target.type.layout.local_size,
                lambda i: self.emit(
                    t.Set(
                        t.Elem(name, i, target.type.dtype),
                        t.Elem(self.name(stmt.value), i, target.type.dtype),
                    )  # fmt: skip
                ),
            )
        else:
            value = self.scalar(stmt.value)
            self.emit(t.Set(t.Sym(self.name(target), target.type.dtype),
                            t.Encode(value, target.type.dtype)))  # fmt: skip

    def _for(self, stmt: For) -> None:
        var = self.name(stmt.var)
        with self.block() as inner:
            self.body(stmt.body)
        step = self.index(stmt.step)
        if not isinstance(step, t.Const):  # a zero step would hang the GPU: stop the kernel
            self.emit(t.IfThen(t.Bin("eq", step, const(0), _u1()),
                               (t.Effect(t.Call("trap", (), dim_t())),)))  # fmt: skip
        unroll = stmt.attrs and dict(stmt.attrs).get("unroll")
        self.emit(
            t.Loop(
                var,
                self.index(stmt.start),
                self.index(stmt.stop),
                step,
                tuple(inner),
                unroll=bool(unroll),
                dtype=stmt.var.type.dtype,
            )  # fmt: skip
        )


def dim_t() -> DataType:
    return dts.i32


def _u1() -> DataType:
    return dts.u1


# ----- instructions that need no tile machinery -----------------------------------------------


@lowers("const")
def _const(lw: Lowerer, ins: Instr) -> None:
    lw.define_scalar(ins.out, lw.scalar(ins.args[0]))


@lowers("block_id", "num_blocks")
def _grid(lw: Lowerer, ins: Instr) -> None:
    call = t.Call(ins.op, (const(ins.attr("axis")),), dim_t())
    lw.emit(t.Declare(lw.name(ins.out), ins.out.type.dtype, None, call))


@lowers("dim", "stride")
def _dim(lw: Lowerer, ins: Instr) -> None:
    tensor = ins.args[0]
    axis = ins.attr("axis") % tensor.type.rank
    sym = lw.shape_sym(tensor, axis) if ins.op == "dim" else lw.stride_sym(tensor, axis)
    lw.emit(t.Declare(lw.name(ins.out), ins.out.type.dtype, None, sym))


@lowers("sync")
def _sync(lw: Lowerer, ins: Instr) -> None:
    lw.emit(t.Barrier())


@lowers("assume")
def _assume(lw: Lowerer, ins: Instr) -> None:
    """Promises feed the divisibility analysis; nothing runs."""


@lowers("shared")
def _shared(lw: Lowerer, ins: Instr) -> None:
    if ins.out in lw.plan.reuse_barrier:  # these bytes held another buffer a moment ago
        lw.emit(t.Barrier())
