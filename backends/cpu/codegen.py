"""Thread IR -> LLVM IR for the CPU: a block's threads as loops around barrier-free regions.

The generated module exports one function per kernel::

    void <kernel>_blocks(u64* args, i64 first, i64 last, i32* grid, u8* workspace, i32* status)

It runs the blocks ``first .. last - 1`` (linear ids, x fastest) one after another, so the
runtime can hand disjoint ranges to several cores. ``args`` holds one 8-byte slot per thread-IR
parameter (a pointer, a scalar's bits, a size). ``workspace`` is this caller's private memory:
the block's shared memory first, then every variable that lives across a cut, one copy per
thread. A trap (a zero loop step) sets ``*status`` and returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from llvmlite import ir

from tilevm.backends import codecs
from tilevm.backends.cpu import c_types as ct
from tilevm.backends.cpu import math_calls
from tilevm.backends.cpu import program as bp
from tilevm.backends.cpu.c_types import I1, I8, I32, I64, LLVM, PTR, SIZE, Value, convert
from tilevm.backends.cpu.cfunctions import define as define_c_function
from tilevm.backends.cpu.emulation import Emulation
from tilevm.backends.cpu.helpers import Helpers
from tilevm.lowering import thread_ir as t
from tilevm.lowering.exprs import compute_type
from tilevm.lowering.target import Target

ALIGN = 64
# A loop over a tile's slots (``unroll``, constant bounds) whose unrolled body has at most this
# many thread-IR nodes is emitted unrolled. LLVM fully unrolls such loops anyway, but thousands
# of small loops in one function (a long tv.static_range) cost its loop passes time quadratic
# in their number; the same code as straight-line blocks optimizes in linear time.
UNROLL_NODES = 512


@dataclass
class Var:
    c: str  # C type of one element
    size: int | None  # elements of a register array; None for a scalar
    kind: str  # "local" (one thread at a time), "thread" (a copy per thread), "uniform"
    ptr: ir.Value | None = None  # allocas
    offset: int = 0  # workspace offset of "thread" variables

    @property
    def count(self) -> int:
        return self.size or 1


@dataclass(frozen=True)
class Module:
    """The rendered kernel: LLVM IR text and what the runtime needs to call it."""

    name: str  # the exported function
    llvm_ir: str
    workspace_bytes: int
    prints: bool  # output order matters: run the blocks in order on one core


def render(kernel: t.ThreadKernel, target: Target) -> Module:
    return _Codegen(kernel, target).render()


class _Codegen:
    def __init__(self, kernel: t.ThreadKernel, target: Target) -> None:
        self.kernel = kernel
        self.target = target
        self.program = bp.block_program(kernel, target)
        self.module = ir.Module(name=kernel.name)
        self.helpers = Helpers(self.module)
        self.emulation = Emulation(self.module, target)
        self.vars: dict[str, Var] = {}
        self.params: dict[str, Value] = {}
        self.strings: dict[str, ir.GlobalVariable] = {}
        self.loops: list[tuple[ir.Block, ir.Block]] = []  # (continue, break) of C loops
        self.unrolled: dict[str, Value] = {}  # counters of loops being unrolled: their value
        self.prints = False

    # ----- storage --------------------------------------------------------------------------
    def plan_storage(self) -> int:
        declared: dict[str, tuple[str, int | None, int]] = {}  # name -> (c, size, region)
        used: dict[str, set[int]] = {}
        pointed: set[str] = set()

        def note(e: t.Expr, region: int) -> None:
            for x in bp.walk_expr(e):
                name = getattr(x, "name", None) if isinstance(x, t.Sym) else getattr(
                    x, "array", None)  # fmt: skip
                if name is not None:
                    used.setdefault(name, set()).add(region)

        def visit(stmts, region: int) -> None:
            for s in stmts:
                if isinstance(s, t.Declare):
                    declared[s.name] = (ct.storage(s.dtype), s.size, region)
                elif isinstance(s, t.Loop):
                    declared[s.var] = (ct.compute(s.dtype), None, region)
                elif isinstance(s, (t.VecLoad, t.VecStore)):
                    used.setdefault(s.array, set()).add(region)
                elif isinstance(s, bp.Gather) and isinstance(s.value, (t.Ref, t.Addr)):
                    pointed.update(x.array for x in bp.walk_expr(s.value)
                                   if isinstance(x, t.Ref))  # fmt: skip
                for e in bp.stmt_exprs(s):
                    note(e, region)
                for body in bp.children(s):
                    visit(body, region)

        def nodes(body: list[bp.Node]) -> None:
            for n in body:
                if isinstance(n, bp.Region):
                    visit(n.stmts, n.index)
                elif isinstance(n, bp.BlockLoop):
                    declared[n.var] = (ct.compute(n.dtype), None, -1)
                    for e in (n.start, n.stop, n.step):
                        note(e, -1)
                    nodes(n.body)
                elif isinstance(n, bp.BlockIf):
                    note(n.cond, -1)
                    nodes(n.then)
                    nodes(n.orelse)
                elif isinstance(n, bp.BlockForever):
                    nodes(n.body)

        nodes(self.program.body)
        offset = _round(self.kernel.shared_bytes, ALIGN)
        threads = self.kernel.num_threads

        def place(name: str, c: str, size: int | None, kind: str) -> None:
            nonlocal offset
            var = Var(c, size, kind)
            if kind == "thread":
                var.offset = offset
                offset = _round(offset + threads * var.count * SIZE[c], ALIGN)
            self.vars[name] = var

        for name, (c, size, region) in declared.items():
            if name in self.program.uniform:
                place(name, c, size, "uniform")
            elif name in pointed or used.get(name, {region}) - {region}:
                place(name, c, size, "thread")
            else:
                place(name, c, size, "local")
        for name, dtype in self.program.gathers.items():
            place(name, "ptr" if dtype is None else ct.storage(dtype), None, "thread")
        return offset

    def address(self, name: str, index: ir.Value | None = None) -> ir.Value:
        """The address of a variable's element for the current thread."""
        var = self.vars[name]
        b = self.b
        idx = index if index is not None else ir.Constant(I32, 0)
        if var.kind != "thread":
            return b.gep(var.ptr, [b.sext(idx, I64)], source_etype=LLVM[var.c])
        slot = b.add(b.mul(b.sext(self.tid.v, I64), ir.Constant(I64, var.count)), b.sext(idx, I64))
        byte = b.add(ir.Constant(I64, var.offset), b.mul(slot, ir.Constant(I64, SIZE[var.c])))
        return b.gep(self.workspace, [byte], source_etype=I8)

    # ----- the module -------------------------------------------------------------------------
    def render(self) -> Module:
        workspace_bytes = self.plan_storage()
        name = f"{self.kernel.name}_blocks"
        fnty = ir.FunctionType(ir.VoidType(), [PTR, I64, I64, PTR, PTR, PTR])
        fn = ir.Function(self.module, fnty, name)
        args, first, last, grid, self.workspace, status = fn.args
        self.fn = fn
        entry = fn.append_basic_block("entry")
        self.b = b = ir.IRBuilder(entry)
        for var_name, var in self.vars.items():  # every alloca in the entry block
            if var.kind != "thread":
                var.ptr = b.alloca(LLVM[var.c], size=var.count, name=var_name)
        for i, p in enumerate(self.kernel.params):
            slot = b.gep(args, [ir.Constant(I64, i)], source_etype=I64)
            c = "ptr" if p.kind == "tensor" else ct.storage(p.dtype) if p.kind == "scalar" \
                else ct.compute(p.dtype)  # fmt: skip
            self.params[p.name] = Value(b.load(slot, typ=LLVM[c]), c)
        size = [b.load(b.gep(grid, [ir.Constant(I32, k)], source_etype=I32), typ=I32)
                for k in range(3)]  # fmt: skip
        self.grid_size = size
        self.trap_block = fn.append_basic_block("trap")
        exit_block = fn.append_basic_block("exit")

        # for (block = first; block < last; ++block)
        head, body = fn.append_basic_block("block"), fn.append_basic_block("block_body")
        b.branch(head)
        b.position_at_end(head)
        block = b.phi(I64, name="block")
        block.add_incoming(first, entry)
        b.cbranch(b.icmp_signed("<", block, last), body, exit_block)
        b.position_at_end(body)
        gx, gy = b.zext(size[0], I64), b.zext(size[1], I64)
        bx = b.urem(block, gx)
        by = b.urem(b.udiv(block, gx), gy)
        bz = b.udiv(block, b.mul(gx, gy))
        self.block_id = [Value(b.trunc(v, I32), "i32") for v in (bx, by, bz)]
        self.tid = ct.const("i32", 0)
        self.nodes(self.program.body)
        block.add_incoming(b.add(block, ir.Constant(I64, 1)), b.block)
        b.branch(head)

        b.position_at_end(self.trap_block)
        b.store(ir.Constant(I32, 1), status)
        b.ret_void()
        b.position_at_end(exit_block)
        b.ret_void()
        return Module(name, str(self.module), workspace_bytes, self.prints)

    # ----- block level ----------------------------------------------------------------------
    def nodes(self, body: list[bp.Node]) -> None:
        for n in body:
            getattr(self, "node_" + type(n).__name__)(n)

    def node_Region(self, n: bp.Region) -> None:
        self.thread_loop(lambda: self.stmts(n.stmts))

    def thread_loop(self, body) -> None:
        b = self.b
        pre = b.block
        head = self.fn.append_basic_block("thread")
        done = self.fn.append_basic_block("threads_done")
        b.branch(head)
        b.position_at_end(head)
        tid = b.phi(I32, name="tid")
        tid.add_incoming(ir.Constant(I32, 0), pre)
        self.tid = Value(tid, "i32")
        body()
        tid.add_incoming(b.add(tid, ir.Constant(I32, 1)), b.block)
        more = b.icmp_signed("<", b.add(tid, ir.Constant(I32, 1)),
                             ir.Constant(I32, self.kernel.num_threads))  # fmt: skip
        b.cbranch(more, head, done)
        b.position_at_end(done)
        self.tid = ct.const("i32", 0)

    def node_WarpCall(self, n: bp.WarpCall) -> None:
        lanes = self.target.warp_size
        b = self.b
        for w in range(self.kernel.num_threads // lanes):
            first = ct.const("i32", w * lanes)
            saved, self.tid = self.tid, first
            pointers = [self.address(name) for name in n.args]
            self.tid = saved
            self.emulation.call(b, n.fn, pointers)

    def node_BlockLoop(self, n: bp.BlockLoop) -> None:
        self.loop(n.var, n.start, n.stop, n.step, lambda: self.nodes(n.body), ct.compute(n.dtype))

    def node_BlockIf(self, n: bp.BlockIf) -> None:
        self.branch(n.cond, lambda: self.nodes(n.then), lambda: self.nodes(n.orelse))

    def node_BlockForever(self, n: bp.BlockForever) -> None:
        self.forever(lambda: self.nodes(n.body))

    def node_BlockBreak(self, n: bp.BlockBreak) -> None:
        self.break_()

    # ----- control flow shared by both levels ------------------------------------------------
    def loop(
        self, var: str, start: t.Expr, stop: t.Expr, step: t.Expr, body, c: str = "i32"
    ) -> None:
        b = self.b
        ptr = self.address(var)
        b.store(convert(b, self.expr(start), c).v, ptr)
        cond_block = self.fn.append_basic_block(f"{var}_cond")
        body_block = self.fn.append_basic_block(f"{var}_body")
        next_block = self.fn.append_basic_block(f"{var}_next")
        done = self.fn.append_basic_block(f"{var}_done")
        b.branch(cond_block)
        b.position_at_end(cond_block)
        v = b.load(self.address(var), typ=LLVM[c])
        stop_v = convert(b, self.expr(stop), c).v
        if isinstance(step, t.Const):
            go = b.icmp_signed("<" if step.value > 0 else ">", v, stop_v)
        else:
            st = convert(b, self.expr(step), c).v
            up = b.icmp_signed(">", st, ir.Constant(LLVM[c], 0))
            go = b.select(up, b.icmp_signed("<", v, stop_v), b.icmp_signed(">", v, stop_v))
        b.cbranch(go, body_block, done)
        b.position_at_end(body_block)
        self.loops.append((next_block, done))
        body()
        self.loops.pop()
        b.branch(next_block)
        b.position_at_end(next_block)
        st = convert(b, self.expr(step), c).v
        b.store(b.add(b.load(self.address(var), typ=LLVM[c]), st), self.address(var))
        b.branch(cond_block)
        b.position_at_end(done)

    def branch(self, cond: t.Expr, then, orelse) -> None:
        b = self.b
        c = convert(b, self.expr(cond), "bool").v
        then_block = self.fn.append_basic_block("then")
        else_block = self.fn.append_basic_block("else")
        merge = self.fn.append_basic_block("endif")
        b.cbranch(c, then_block, else_block)
        for block, fill in ((then_block, then), (else_block, orelse)):
            b.position_at_end(block)
            fill()
            b.branch(merge)
        b.position_at_end(merge)

    def forever(self, body) -> None:
        b = self.b
        head = self.fn.append_basic_block("while")
        done = self.fn.append_basic_block("while_done")
        b.branch(head)
        b.position_at_end(head)
        self.loops.append((head, done))
        body()
        self.loops.pop()
        b.branch(head)
        b.position_at_end(done)

    def break_(self) -> None:
        self.b.branch(self.loops[-1][1])
        self.b.position_at_end(self.fn.append_basic_block("after_break"))

    # ----- statements -------------------------------------------------------------------------
    def stmts(self, stmts) -> None:
        for s in stmts:
            self.stmt(s)

    def stmt(self, s: t.Stmt) -> None:
        b = self.b
        if isinstance(s, (t.Comment, t.Barrier)):
            return
        if isinstance(s, t.Declare):
            if s.init is not None:
                b.store(convert(b, self.expr(s.init), self.vars[s.name].c).v, self.address(s.name))
        elif isinstance(s, t.Set):
            self.assign(s.target, self.expr(s.value))
        elif isinstance(s, t.Store):
            ptr, c = self.mem(s.mem)
            b.store(convert(b, self.expr(s.value), c).v, ptr)
        elif isinstance(s, (t.VecLoad, t.VecStore)):
            ptr, c = self.mem(s.mem)
            slots = self.address(s.array, convert(b, self.expr(s.index), "i32").v)
            vec = ir.VectorType(LLVM[c], s.count)
            ptr, slots = b.bitcast(ptr, vec.as_pointer()), b.bitcast(slots, vec.as_pointer())
            src, dst = (ptr, slots) if isinstance(s, t.VecLoad) else (slots, ptr)
            value = b.load(src, typ=vec)
            value.align = SIZE[c]  # CPU vector accesses need no more alignment
            store = b.store(value, dst)
            store.align = SIZE[c]
        elif isinstance(s, t.Loop):
            counts = _unrollable(s)
            if counts is not None:
                self.unroll(s, counts)
            else:
                self.loop(s.var, s.start, s.stop, s.step, lambda: self.stmts(s.body),
                          ct.compute(s.dtype))  # fmt: skip
        elif isinstance(s, t.IfThen):
            self.branch(s.cond, lambda: self.stmts(s.then), lambda: self.stmts(s.orelse))
        elif isinstance(s, t.Forever):
            self.forever(lambda: self.stmts(s.body))
        elif isinstance(s, t.Break):
            self.break_()
        elif isinstance(s, t.Effect):
            self.expr(s.call)
        elif isinstance(s, bp.Gather):
            var = self.vars[s.name]
            value = self.expr(s.value)
            b.store(value.v if var.c == "ptr" else convert(b, value, var.c).v, self.address(s.name))
        else:  # pragma: no cover - every statement kind is listed above
            raise AssertionError(f"no LLVM rendering for {s!r}")

    def unroll(self, s: t.Loop, counts: range) -> None:
        """The loop's body once per count, the counter a constant in each copy."""
        c = self.vars[s.var].c
        for i in counts:
            self.unrolled[s.var] = ct.const(c, i)
            self.stmts(s.body)
        del self.unrolled[s.var]
        # the counter as the loop would leave it, for a reader after the loop
        exit_value = counts[-1] + counts.step if counts else counts.start
        self.b.store(ct.const(c, exit_value).v, self.address(s.var))

    def assign(self, target: t.Sym | t.Elem, value: Value) -> None:
        b = self.b
        if isinstance(target, t.Sym):
            ptr, c = self.address(target.name), self.vars[target.name].c
        else:
            ptr = self.address(target.array, convert(b, self.expr(target.index), "i32").v)
            c = self.vars[target.array].c
        b.store(convert(b, value, c).v, ptr)

    def mem(self, m: t.Mem) -> tuple[ir.Value, str]:
        b = self.b
        offset = b.sext(convert(b, self.expr(m.offset), "i32").v, I64) if _bits32(m.offset) \
            else convert(b, self.expr(m.offset), "i64").v  # fmt: skip
        if m.space == "global":
            c = ct.memory(m.dtype)
            base = self.params[m.base].v
        else:
            c = ct.storage(m.dtype)
            base = b.gep(self.workspace, [ir.Constant(I64, m.base_bytes)], source_etype=I8)
        return b.gep(base, [offset], source_etype=LLVM[c]), c

    # ----- expressions ------------------------------------------------------------------------
    def expr(self, e: t.Expr) -> Value:
        return getattr(self, "expr_" + type(e).__name__)(e)

    def expr_Const(self, e: t.Const) -> Value:
        if isinstance(e.value, str):
            return Value(self.string(e.value), "ptr")
        if e.dtype.is_float or isinstance(e.value, float):
            return ct.const("double" if e.dtype.bits == 64 else "float", float(e.value))
        c = ct.compute(e.dtype)
        if c not in ("i32", "u32", "i64", "u64"):
            c = "i32" if -(2**31) <= int(e.value) < 2**31 else "i64"
        return ct.const(c, int(e.value))

    def expr_Sym(self, e: t.Sym) -> Value:
        if e.name == "tid":
            return self.tid
        if e.name in self.unrolled:
            return self.unrolled[e.name]
        if e.name in self.params:
            return self.params[e.name]
        var = self.vars[e.name]
        return Value(self.b.load(self.address(e.name), typ=LLVM[var.c]), var.c)

    def expr_Elem(self, e: t.Elem) -> Value:
        var = self.vars[e.array]
        ptr = self.address(e.array, convert(self.b, self.expr(e.index), "i32").v)
        return Value(self.b.load(ptr, typ=LLVM[var.c]), var.c)

    def expr_Peer(self, e: bp.Peer) -> Value:
        var = self.vars[e.name]
        saved, self.tid = self.tid, convert(self.b, self.expr(e.lane), "i32")
        ptr = self.address(e.name)
        self.tid = saved
        return Value(self.b.load(ptr, typ=LLVM[var.c]), var.c)

    def expr_Ref(self, e: t.Ref) -> Value:
        return Value(self.address(e.array, convert(self.b, self.expr(e.index), "i32").v), "ptr")

    def expr_Addr(self, e: t.Addr) -> Value:
        return Value(self.mem(e.mem)[0], "ptr")

    def expr_Load(self, e: t.Load) -> Value:
        ptr, c = self.mem(e.mem)
        return Value(self.b.load(ptr, typ=LLVM[c]), c)

    def expr_Bin(self, e: t.Bin) -> Value:
        b = self.b
        a, y = self.expr(e.a), self.expr(e.b)
        op = e.op
        if op in ("eq", "ne", "lt", "le", "gt", "ge", "ult"):
            # "ult": an index against an extent, where negatives compare as huge
            wide = "64" in a.c or "64" in y.c
            c = ("u64" if wide else "u32") if op == "ult" else ct.common(a.c, y.c)
            x, z = convert(b, a, c).v, convert(b, y, c).v
            sym = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=",
                   "ult": "<"}[op]  # fmt: skip
            if ct.is_float(c):
                cmp = b.fcmp_unordered(sym, x, z) if op == "ne" else b.fcmp_ordered(sym, x, z)
            elif ct.is_signed(c):
                cmp = b.icmp_signed(sym, x, z)
            else:
                cmp = b.icmp_unsigned(sym, x, z)
            return Value(cmp, "bool")
        c = "bool" if op == "land" else ct.compute(e.dtype)
        x, z = convert(b, a, c).v, convert(b, y, c).v
        if ct.is_float(c):
            fop = {"add": b.fadd, "wadd": b.fadd, "sub": b.fsub, "wsub": b.fsub, "mul": b.fmul,
                   "wmul": b.fmul, "div": b.fdiv, "mod": b.frem}[op]  # fmt: skip
            return Value(fop(x, z), c)
        if op in ("div", "mod"):
            return Value(self.int_divide(x, z, c, op == "div"), c)
        if op == "shr":
            return Value(b.ashr(x, z) if ct.is_signed(c) else b.lshr(x, z), c)
        iop = {"add": b.add, "wadd": b.add, "sub": b.sub, "wsub": b.sub, "mul": b.mul,
               "wmul": b.mul, "and": b.and_, "land": b.and_, "or": b.or_, "xor": b.xor,
               "shl": b.shl}[op]  # fmt: skip
        return Value(iop(x, z), c)

    def int_divide(self, x: ir.Value, z: ir.Value, c: str, quotient: bool) -> ir.Value:
        """C's / and % without the hardware trap: a zero divisor divides by 1, and a signed
        division by -1 negates (INT_MIN / -1 would fault on x86)."""
        b = self.b
        one, zero = ir.Constant(x.type, 1), ir.Constant(x.type, 0)
        safe = b.select(b.icmp_unsigned("==", z, zero), one, z)
        if not ct.is_signed(c):
            return b.udiv(x, safe) if quotient else b.urem(x, safe)
        minus = b.icmp_signed("==", safe, ir.Constant(x.type, -1))
        safe = b.select(minus, one, safe)
        if quotient:
            return b.select(minus, b.sub(zero, x), b.sdiv(x, safe))
        return b.select(minus, zero, b.srem(x, safe))

    def expr_Un(self, e: t.Un) -> Value:
        b = self.b
        c = ct.compute(e.dtype)
        a = self.expr(e.a)
        if e.op == "not":
            return Value(b.not_(convert(b, a, "bool").v), "bool")
        x = convert(b, a, c).v
        if e.op == "neg":
            return Value(b.fneg(x) if ct.is_float(c) else b.sub(ir.Constant(x.type, 0), x), c)
        return Value(b.not_(x), c)

    def expr_Select(self, e: t.Select) -> Value:
        b = self.b
        c = ct.compute(e.dtype)
        cond = convert(b, self.expr(e.cond), "bool").v
        x, y = convert(b, self.expr(e.a), c).v, convert(b, self.expr(e.b), c).v
        return Value(b.select(cond, x, y), c)

    def expr_Convert(self, e: t.Convert) -> Value:
        return convert(self.b, self.expr(e.a), ct.compute(e.dtype))

    def expr_Decode(self, e: t.Decode) -> Value:
        b = self.b
        src = e.a.dtype
        a = self.expr(e.a)
        if codecs.needs_codec(src):
            fn = define_c_function(self.module, codecs.decode_function(src))
            a = Value(b.call(fn, [convert(b, a, "u32").v]), "float")
        return convert(b, a, ct.compute(e.dtype))

    def expr_Encode(self, e: t.Encode) -> Value:
        b = self.b
        dst = e.dtype
        a = self.expr(e.a)
        c = ct.storage(dst)
        if codecs.needs_codec(dst):
            fn = define_c_function(self.module, codecs.encode_function(dst))
            code = Value(b.call(fn, [convert(b, a, "float").v]), "u32")
            return convert(b, code, c)
        if dst.is_float or dst.bits == ct.container_bits(dst.bits):
            return convert(b, a, c)
        word = convert(b, a, "u32").v
        if dst.kind == "int":  # keep the low bits, sign-extended through the container
            shift = ir.Constant(I32, 32 - dst.bits)
            return convert(b, Value(b.ashr(b.shl(word, shift), shift), "i32"), c)
        return convert(b, Value(b.and_(word, ir.Constant(I32, (1 << dst.bits) - 1)), "u32"), c)

    def expr_ToBits(self, e: t.ToBits) -> Value:
        b = self.b
        src = e.a.dtype
        a = self.expr(e.a)
        out = ct.compute(e.dtype)
        if src.is_float and src.bits in (16, 32, 64) and a.c in ("half", "bfloat", "float",
                                                                "double"):  # fmt: skip
            unsigned = "u" + str(ct.bits(a.c))
            return convert(b, Value(b.bitcast(a.v, LLVM[unsigned]), unsigned), out)
        unsigned = "u" + str(ct.bits(a.c)) if a.c != "bool" else "u8"
        word = convert(b, Value(a.v, unsigned) if a.c != "bool" else a, out)
        if src.bits == ct.container_bits(src.bits):
            return word
        return Value(b.and_(word.v, ir.Constant(word.v.type, (1 << src.bits) - 1)), out)

    def expr_FromBits(self, e: t.FromBits) -> Value:
        b = self.b
        dst = e.dtype
        c = ct.storage(dst)
        a = self.expr(e.a)
        if c in ("half", "bfloat", "float", "double"):
            word = convert(b, a, "u" + str(ct.bits(c))).v
            return Value(b.bitcast(word, LLVM[c]) if c in ("float", "double") else word, c)
        if dst.kind == "int" and dst.bits != ct.container_bits(dst.bits):
            shift = ir.Constant(I32, 32 - dst.bits)
            word = convert(b, a, "u32").v
            return convert(b, Value(b.ashr(b.shl(word, shift), shift), "i32"), c)
        return convert(b, a, c)

    def expr_Call(self, e: t.Call) -> Value:
        b, fn = self.b, e.fn
        if fn in math_calls.UNARY:
            c = "double" if e.dtype.name == "f64" else "float"
            x = convert(b, self.expr(e.args[0]), c).v
            return Value(math_calls.unary_math(b, self.helpers, fn, x, c), c)
        if fn == "approx_div":  # exact on the CPU (see math_calls)
            x, y = (convert(b, self.expr(a), "float").v for a in e.args)
            return Value(b.fdiv(x, y), "float")
        if fn == "fma":
            c = ct.compute(e.dtype)
            args = [convert(b, self.expr(a), c).v for a in e.args]
            return Value(b.call(self.helpers.intrinsic("llvm.fma", c, 3), args), c)
        if fn in ("abs", "max", "min", "floordiv", "mod", "pow"):
            c = ct.compute(e.dtype)
            args = [convert(b, self.expr(a), c).v for a in e.args]
            return Value(b.call(self.helpers.get(fn, c), args), c)
        if fn in ("shl", "shr"):
            c = ct.compute(e.dtype)
            x, y = (convert(b, self.expr(a), c).v for a in e.args[:2])
            nbits = convert(b, self.expr(e.args[2]), "i32").v
            return Value(b.call(self.helpers.get(fn, c), [x, y, nbits]), c)
        if fn == "f2i":
            return self.float_to_int(e)
        if fn == "to_f32_odd":  # one helper per argument type: double, i64, u64
            x = self.expr(e.args[0])
            return Value(b.call(self.helpers.get(fn, x.c), [x.v]), "float")
        if fn == "atomic_add":
            return self.atomic_add(e)
        if fn in ("block_id", "num_blocks"):
            axis = int(e.args[0].value)
            return self.block_id[axis] if fn == "block_id" else Value(self.grid_size[axis], "i32")
        if fn == "trap":
            b.branch(self.trap_block)
            b.position_at_end(self.fn.append_basic_block("after_trap"))
            return ct.const("i32", 0)
        if fn == "printf":
            return self.printf(e)
        if fn in ("load_bits", "store_bits"):
            p = self.expr(e.args[0]).v
            pos = convert(b, self.expr(e.args[1]), "i64").v
            rest = [convert(b, self.expr(a), "u32").v for a in e.args[2:]]
            return Value(b.call(self.helpers.get(fn, "u32"), [p, pos, *rest]), "u32")
        if fn in PAIR_HELPERS:
            args = [convert(b, self.expr(a), "u32").v for a in e.args]
            return Value(b.call(self.helpers.get(fn, "u32"), args), "u32")
        if fn == "load_u32":  # two 16-bit slots of a register array read as one word
            ptr = b.bitcast(self.expr(e.args[0]).v, I32.as_pointer())
            word = b.load(ptr, typ=I32)
            word.align = 2
            return Value(word, "u32")
        if fn == "vfill":  # count slots of a register array set to one value
            c = ct.storage(e.dtype)
            value = convert(b, self.expr(e.args[1]), c).v
            base = self.expr(e.args[0]).v
            for j in range(int(e.args[2].value)):
                b.store(value, b.gep(base, [ir.Constant(I64, j)], source_etype=LLVM[c]))
            return ct.const("i32", 0)
        if fn == "store_u32":  # two 16-bit slots of a register array written as one word
            word = convert(b, self.expr(e.args[1]), "u32")
            store = b.store(word.v, b.bitcast(self.expr(e.args[0]).v, I32.as_pointer()))
            store.align = 2  # a 16-bit array's even slot
            return word
        if fn.startswith("cp_async_"):
            return self.async_copy(e)
        raise AssertionError(f"no LLVM rendering for the intrinsic {fn!r}")  # pragma: no cover

    def float_to_int(self, e: t.Call) -> Value:
        """Truncate, saturate to the dtype's range, NaN -> 0 (the VM's float -> int cast)."""
        b = self.b
        x = convert(b, self.expr(e.args[0]), "double").v
        dst = e.dtype
        c = ct.compute(compute_type(dst))
        if dst.kind == "uint" and dst.bits == 64:
            return Value(b.call(ct.intrinsic(b.module, "llvm.fptoui.sat", I64, [x.type]), [x]), c)
        wide = b.call(ct.intrinsic(b.module, "llvm.fptosi.sat", I64, [x.type]), [x])
        lo, hi = (-(1 << (dst.bits - 1)), (1 << (dst.bits - 1)) - 1) if dst.kind == "int" \
            else (0, (1 << dst.bits) - 1)  # fmt: skip
        if dst.bits < 64:
            wide = b.select(b.icmp_signed("<", wide, ir.Constant(I64, lo)), ir.Constant(I64, lo),
                            wide)  # fmt: skip
            wide = b.select(b.icmp_signed(">", wide, ir.Constant(I64, hi)), ir.Constant(I64, hi),
                            wide)  # fmt: skip
        return convert(b, Value(wide, "i64"), c)

    def atomic_add(self, e: t.Call) -> Value:
        """A relaxed (monotonic) read-modify-write: other blocks run on other cores at once.
        16-bit floats have no native one: a compare-exchange loop (``helpers``)."""
        b = self.b
        ptr, c = self.mem(e.args[0].mem)
        value = convert(b, self.expr(e.args[1]), c).v
        if c in ("half", "bfloat"):
            return Value(b.call(self.helpers.get("atomic_add", c), [ptr, value]), c)
        op = "fadd" if ct.is_float(c) else "add"
        return Value(b.atomic_rmw(op, ptr, value, "monotonic"), c)

    def async_copy(self, e: t.Call) -> Value:
        """cp.async done at once: the program waits and syncs before it reads the bytes, and
        overwrites a buffer only after a barrier, so an immediate copy is one legal timing."""
        b = self.b
        if e.fn in ("cp_async_commit", "cp_async_wait"):
            return ct.const("i32", 0)
        width = int(e.fn.rsplit("_", 1)[1])
        dst, src = self.expr(e.args[0]).v, self.expr(e.args[1]).v
        n = convert(b, self.expr(e.args[2]), "i32").v
        n = b.select(b.icmp_signed("<", n, ir.Constant(I32, 0)), ir.Constant(I32, 0), n)
        n = b.select(b.icmp_signed(">", n, ir.Constant(I32, width)), ir.Constant(I32, width), n)
        n64 = b.zext(n, I64)
        memcpy = b.module.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])
        memset = b.module.declare_intrinsic("llvm.memset", [PTR, I64])
        b.call(memcpy, [dst, src, n64, ir.Constant(I1, 0)])
        rest = b.gep(dst, [n64], source_etype=I8)
        b.call(memset, [rest, ir.Constant(I8, 0), b.sub(ir.Constant(I64, width), n64),
                        ir.Constant(I1, 0)])  # fmt: skip
        return ct.const("i32", 0)

    def printf(self, e: t.Call) -> Value:
        b = self.b
        self.prints = True
        printf = self.module.globals.get("printf") or ir.Function(
            self.module, ir.FunctionType(I32, [PTR], var_arg=True), "printf"
        )
        args = []
        for a in e.args:
            v = self.expr(a)
            if ct.is_float(v.c):  # C's default argument promotions
                v = convert(b, v, "double")
            elif v.c != "ptr" and ct.bits(v.c) < 32:
                v = convert(b, v, "u32" if v.c in ("bool", "u8", "u16") else "i32")
            args.append(v.v)
        return Value(b.call(printf, args), "i32")

    def string(self, text: str) -> ir.Value:
        if text not in self.strings:
            data = bytearray(text.encode()) + b"\0"
            ty = ir.ArrayType(I8, len(data))
            g = ir.GlobalVariable(self.module, ty, f".str{len(self.strings)}")
            g.global_constant = True
            g.linkage = "internal"
            g.initializer = ir.Constant(ty, data)
            self.strings[text] = g
        return self.strings[text]


PAIR_HELPERS = frozenset(f"{kind}2_{op}" for kind in ("half", "bfloat") for op in
                        ("add", "sub", "mul")) | {"lanes16_eq"}  # fmt: skip


def _unrollable(s: t.Loop) -> range | None:
    """The counts of a slot loop small enough to emit unrolled; None to emit a loop."""
    if not s.unroll or not all(isinstance(e, t.Const) for e in (s.start, s.stop, s.step)):
        return None
    counts = range(int(s.start.value), int(s.stop.value), int(s.step.value))
    size = 0
    for x in _walk(s.body):
        if isinstance(x, t.Break) or (
            isinstance(x, t.Set) and isinstance(x.target, t.Sym) and x.target.name == s.var
        ):
            return None  # leaves the loop, or moves its counter: keep the loop
        size += 1 + sum(1 for e in bp.stmt_exprs(x) for _ in bp.walk_expr(e))
    return counts if len(counts) * size <= UNROLL_NODES else None


def _walk(stmts) -> Iterator[t.Stmt]:
    for s in stmts:
        yield s
        for body in bp.children(s):
            yield from _walk(body)


def _bits32(e: t.Expr) -> bool:
    return e.dtype.bits <= 32


def _round(n: int, align: int) -> int:
    return (n + align - 1) // align * align
