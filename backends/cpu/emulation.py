"""Warp collectives of an emulated target, over the gathered lanes of one warp.

A matrix atom is emulated from its layouts alone: lane ``l``'s slot ``s`` of operand A holds
``A[a(l, s)]`` -- the same fragment maps the lowering divided tiles by -- so the routine builds
A, B and C from the lanes' registers, multiplies, and writes C back where it came from. Whatever
target the atom belongs to (mma.sync, MFMA, WMMA), the emulation is exactly as right as its
layout. An operand the layout replicates (WMMA's A and B, repeated in both half-waves) is read
from every copy, the highest lane's last: the lowering keeps the copies equal, as the hardware
requires.
``ldmatrix`` follows the PTX ISA: lane ``8j + r`` names row ``r`` of matrix ``j``; lane ``l``
receives 32-bit word ``l % 4`` of row ``l / 4`` (``.trans``: 16-bit elements
``(2 (l % 4) + h, l / 4)``).

Each routine takes, per argument, a pointer to the warp's gathered lane pointers.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from tilevm.backends.cpu import c_types as ct
from tilevm.backends.cpu.c_types import I16, I32, LLVM, PTR, Value, convert
from tilevm.dtypes import dtype
from tilevm.layouts.atoms import MmaAtom
from tilevm.lowering.target import Target


class Emulation:
    def __init__(self, module: ir.Module, target: Target) -> None:
        self.module = module
        self.target = target
        self.atoms = {a.intrinsic: a for a in target.atoms}
        self.defined: dict[str, ir.Function] = {}

    def call(self, b: ir.IRBuilder, fn: str, pointers: list[ir.Value]) -> None:
        if fn not in self.defined:
            if fn in self.atoms:
                self.defined[fn] = self._mma(fn, self.atoms[fn])
            else:
                self.defined[fn] = self._ldmatrix(fn)
        b.call(self.defined[fn], pointers)

    def _function(self, name: str, nargs: int) -> tuple[ir.Function, ir.IRBuilder]:
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [PTR] * nargs), name)
        fn.linkage = "internal"
        return fn, ir.IRBuilder(fn.append_basic_block("entry"))

    def _table(self, name: str, layout, cols: int) -> ir.GlobalVariable:
        """Flat index ``row * cols + col`` of every (lane, slot) of ``layout``."""
        lanes, slots = layout.num_threads, layout.local_size
        lane, slot = np.meshgrid(np.arange(lanes), np.arange(slots), indexing="ij")
        rows, columns = layout(lane.reshape(-1), slot.reshape(-1))
        flat = (np.asarray(rows) * cols + np.asarray(columns)).astype(int).tolist()
        ty = ir.ArrayType(I32, len(flat))
        g = ir.GlobalVariable(self.module, ty, name)
        g.global_constant = True
        g.linkage = "internal"
        g.initializer = ir.Constant(ty, flat)
        return g

    def _mma(self, fn_name: str, atom: MmaAtom) -> ir.Function:
        """``C += A @ B`` for one warp, with the atom's fragments."""
        fn, b = self._function(f"tv_emulate_{fn_name}", 3)
        c_lanes, a_lanes, b_lanes = fn.args
        in_c = ct.storage(dtype(atom.input_dtypes[0]))
        acc_c = ct.storage(dtype(atom.acc_dtype))
        work = "float" if ct.is_float(acc_c) else "i32"
        m, n, k = atom.m, atom.n, atom.k
        mats = {
            "a": (b.alloca(LLVM[work], size=m * k), a_lanes, atom.a, k, in_c),
            "b": (b.alloca(LLVM[work], size=k * n), b_lanes, atom.b, n, in_c),
            "c": (b.alloca(LLVM[work], size=m * n), c_lanes, atom.c, n, acc_c),
        }
        tables = {key: self._table(f"{fn.name}_{key}", layout, cols)
                  for key, (_, _, layout, cols, _) in mats.items()}  # fmt: skip

        def each_slot(key: str, body) -> None:
            matrix, lanes, layout, _, c = mats[key]
            slots = layout.local_size

            def per_lane(lane: ir.Value) -> None:
                regs = b.load(b.gep(lanes, [lane], source_etype=PTR), typ=PTR)

                def per_slot(slot: ir.Value) -> None:
                    flat = b.add(b.mul(lane, ir.Constant(I32, slots)), slot)
                    where = b.load(b.gep(tables[key], [ir.Constant(I32, 0), flat]), typ=I32)
                    element = b.gep(regs, [slot], source_etype=LLVM[c])
                    body(b.gep(matrix, [where], source_etype=LLVM[work]), element, c)

                _counted(b, slots, per_slot)

            _counted(b, layout.num_threads, per_lane)

        for key in ("a", "b", "c"):
            each_slot(key, lambda dst, src, c: b.store(
                convert(b, Value(b.load(src, typ=LLVM[c]), c), work).v, dst))  # fmt: skip

        a_mat, b_mat, c_mat = (mats[key][0] for key in ("a", "b", "c"))

        def row(i: ir.Value) -> None:
            def col(j: ir.Value) -> None:
                out = b.gep(
                    c_mat, [b.add(b.mul(i, ir.Constant(I32, n)), j)], source_etype=LLVM[work]
                )

                def step(kk: ir.Value) -> None:
                    x = b.load(b.gep(a_mat, [b.add(b.mul(i, ir.Constant(I32, k)), kk)],
                                     source_etype=LLVM[work]), typ=LLVM[work])  # fmt: skip
                    y = b.load(b.gep(b_mat, [b.add(b.mul(kk, ir.Constant(I32, n)), j)],
                                     source_etype=LLVM[work]), typ=LLVM[work])  # fmt: skip
                    acc = b.load(out, typ=LLVM[work])
                    if work == "float":
                        b.store(b.fadd(acc, b.fmul(x, y)), out)
                    else:
                        b.store(b.add(acc, b.mul(x, y)), out)

                _counted(b, k, step)

            _counted(b, n, col)

        _counted(b, m, row)
        each_slot("c", lambda src, dst, c: b.store(
            convert(b, Value(b.load(src, typ=LLVM[work]), work), c).v, dst))  # fmt: skip
        b.ret_void()
        return fn

    def _ldmatrix(self, fn_name: str) -> ir.Function:
        """``ldmatrix[_trans]_x{count}``: 8x8 matrices of 16-bit words from shared memory."""
        trans = "_trans" in fn_name
        count = int(fn_name.rsplit("_x", 1)[1])
        if not fn_name.startswith("ldmatrix") or count not in (1, 2, 4):
            raise AssertionError(f"no emulation of the collective {fn_name!r}")  # pragma: no cover
        fn, b = self._function(f"tv_emulate_{fn_name}", 2)
        dst_lanes, src_lanes = fn.args

        def lane_ptr(table: ir.Value, lane: ir.Value) -> ir.Value:
            return b.load(b.gep(table, [lane], source_etype=PTR), typ=PTR)

        def per_matrix(j: ir.Value) -> None:
            def per_lane(lane: ir.Value) -> None:
                r = b.udiv(lane, ir.Constant(I32, 4))
                q = b.urem(lane, ir.Constant(I32, 4))
                dst = b.gep(lane_ptr(dst_lanes, lane), [j], source_etype=I32)
                first = b.mul(j, ir.Constant(I32, 8))
                if not trans:
                    row = lane_ptr(src_lanes, b.add(first, r))
                    b.store(b.load(b.gep(row, [q], source_etype=I32), typ=I32), dst)
                    return
                for h in range(2):
                    row = lane_ptr(src_lanes, b.add(first, b.add(b.mul(q, ir.Constant(I32, 2)),
                                                                 ir.Constant(I32, h))))  # fmt: skip
                    value = b.load(b.gep(row, [r], source_etype=I16), typ=I16)
                    b.store(value, b.gep(dst, [ir.Constant(I32, h)], source_etype=I16))

            _counted(b, 32, per_lane)

        _counted(b, count, per_matrix)
        b.ret_void()
        return fn


def _counted(b: ir.IRBuilder, n: int, body) -> None:
    """``for (i = 0; i < n; ++i) body(i)`` with an i32 counter."""
    fn = b.function
    pre = b.block
    head = fn.append_basic_block("i")
    done = fn.append_basic_block("i_done")
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I32)
    i.add_incoming(ir.Constant(I32, 0), pre)
    body(i)
    nxt = b.add(i, ir.Constant(I32, 1))
    i.add_incoming(nxt, b.block)
    b.cbranch(b.icmp_signed("<", nxt, ir.Constant(I32, n)), head, done)
    b.position_at_end(done)
