"""LLVM definitions of the helpers generated code calls, with the meaning of the GPU preludes.

Each helper is an internal, always-inlined function per C type, defined on first use. Their
semantics are the VM's: Python's floor division and modulo (x // 0 == 0, x % 0 == x for
integers), max/min that propagate NaN, shifts that read the count as unsigned (a count of the
width or more shifts every bit out), float -> integer conversions that truncate and saturate,
conversions to float rounded to odd, bit-packed loads and (atomic) stores.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from tilevm.backends.cpu.c_types import (
    F32,
    F64,
    I1,
    I8,
    I16,
    I32,
    I64,
    LLVM,
    PTR,
    Value,
    float_to_bfloat,
    float_to_half,
    half_to_float,
    intrinsic,
    is_float,
    is_signed,
)


class Helpers:
    def __init__(self, module: ir.Module) -> None:
        self.module = module
        self.defined: dict[str, ir.Function] = {}

    def get(self, name: str, c: str) -> ir.Function:
        key = f"tv_{name}_{c}"
        if key not in self.defined:
            self.defined[key] = getattr(self, "_" + name)(key, c)
        return self.defined[key]

    def intrinsic(self, name: str, c: str, nargs: int = 1) -> ir.Function:
        return intrinsic(self.module, name, LLVM[c], [LLVM[c]] * nargs)

    def libm(self, name: str, ty: ir.Type, nargs: int = 1) -> ir.Function:
        """A C math library function (resolved in the process when the code is loaded)."""
        fn = self.module.globals.get(name)
        return fn or ir.Function(self.module, ir.FunctionType(ty, [ty] * nargs), name)

    def _define(
        self, key: str, ret: ir.Type, args: list[ir.Type], body: Callable[..., None]
    ) -> ir.Function:
        fn = ir.Function(self.module, ir.FunctionType(ret, args), key)
        fn.linkage = "internal"
        fn.attributes.add("alwaysinline")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        body(b, *fn.args)
        return fn

    # ----- pairs of 16-bit floats in a 32-bit word ---------------------------------------------
    # Each half is widened to float, combined and rounded once: for + and * of halves or
    # bfloats that is the correctly rounded result (float has over twice their precision).
    def _half2_add(self, key: str, c: str) -> ir.Function:
        return self._pair(key, "half", "fadd")

    def _half2_mul(self, key: str, c: str) -> ir.Function:
        return self._pair(key, "half", "fmul")

    def _half2_sub(self, key: str, c: str) -> ir.Function:
        return self._pair(key, "half", "fsub")

    def _bfloat2_sub(self, key: str, c: str) -> ir.Function:
        return self._pair(key, "bfloat", "fsub")

    def _bfloat2_add(self, key: str, c: str) -> ir.Function:
        return self._pair(key, "bfloat", "fadd")

    def _bfloat2_mul(self, key: str, c: str) -> ir.Function:
        return self._pair(key, "bfloat", "fmul")

    def _pair(self, key: str, kind: str, op: str) -> ir.Function:
        def lane(b: ir.IRBuilder, word: ir.Value, shift: int) -> ir.Value:
            bits = b.trunc(b.lshr(word, ir.Constant(I32, shift)), I16)
            return half_to_float(b, Value(bits, kind))

        def body(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> None:
            out = ir.Constant(I32, 0)
            for shift in (0, 16):
                value = getattr(b, op)(lane(b, x, shift), lane(b, y, shift))
                bits = float_to_half(b, value) if kind == "half" else float_to_bfloat(b, value)
                out = b.or_(out, b.shl(b.zext(bits, I32), ir.Constant(I32, shift)))
            b.ret(out)

        return self._define(key, I32, [I32, I32], body)

    def _lanes16_eq(self, key: str, c: str) -> ir.Function:
        def body(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> None:
            out = ir.Constant(I32, 0)
            for mask in (0xFFFF, 0xFFFF0000):
                m = ir.Constant(I32, mask)
                same = b.icmp_unsigned("==", b.and_(x, m), b.and_(y, m))
                out = b.or_(out, b.select(same, m, ir.Constant(I32, 0)))
            b.ret(out)

        return self._define(key, I32, [I32, I32], body)

    # ----- max / min / abs -------------------------------------------------------------------
    def _max(self, key: str, c: str) -> ir.Function:
        return self._pick(key, c, ">")

    def _min(self, key: str, c: str) -> ir.Function:
        return self._pick(key, c, "<")

    def _pick(self, key: str, c: str, op: str) -> ir.Function:
        ty = LLVM[c]

        def body(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> None:
            if is_float(c):  # a NaN on either side wins, as numpy's maximum/minimum
                take = b.or_(b.fcmp_unordered("uno", x, x), b.fcmp_ordered(op, x, y))
            elif is_signed(c):
                take = b.icmp_signed(op, x, y)
            else:
                take = b.icmp_unsigned(op, x, y)
            b.ret(b.select(take, x, y))

        return self._define(key, ty, [ty, ty], body)

    def _abs(self, key: str, c: str) -> ir.Function:
        ty = LLVM[c]

        def body(b: ir.IRBuilder, x: ir.Value) -> None:
            if is_float(c):
                b.ret(b.call(self.intrinsic("llvm.fabs", c), [x]))
            elif is_signed(c):
                neg = b.icmp_signed("<", x, ir.Constant(ty, 0))
                b.ret(b.select(neg, b.sub(ir.Constant(ty, 0), x), x))
            else:
                b.ret(x)

        return self._define(key, ty, [ty], body)

    # ----- Python's floor division and modulo ------------------------------------------------
    def _floordiv(self, key: str, c: str) -> ir.Function:
        return self._floor_op(key, c, quotient=True)

    def _mod(self, key: str, c: str) -> ir.Function:
        return self._floor_op(key, c, quotient=False)

    def _floor_op(self, key: str, c: str, quotient: bool) -> ir.Function:
        ty = LLVM[c]
        zero = ir.Constant(ty, 0)

        def body(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> None:
            if is_float(c):
                mod, div = self._fmod_floor(b, c, x, y)
                b.ret(div if quotient else mod)
                return
            by_zero = b.icmp_unsigned("==", y, zero)
            safe = b.select(by_zero, ir.Constant(ty, 1), y)  # no division by zero at all
            if is_signed(c):
                # INT_MIN / -1 overflows in hardware: divide by 1 and negate instead
                minus_one = b.icmp_signed("==", safe, ir.Constant(ty, -1))
                q = b.select(minus_one, b.sub(zero, x), b.sdiv(x, b.select(minus_one,
                             ir.Constant(ty, 1), safe)))  # fmt: skip
                r = b.select(minus_one, zero, b.srem(x, b.select(minus_one, ir.Constant(ty, 1),
                             safe)))  # fmt: skip
                signs_differ = b.icmp_signed("<", b.xor(r, safe), zero)
                adjust = b.and_(b.icmp_unsigned("!=", r, zero), signs_differ)
                q = b.select(adjust, b.sub(q, ir.Constant(ty, 1)), q)
                r = b.select(adjust, b.add(r, safe), r)
            else:
                q, r = b.udiv(x, safe), b.urem(x, safe)
            b.ret(b.select(by_zero, zero if quotient else x, q if quotient else r))

        return self._define(key, ty, [ty, ty], body)

    def _fmod_floor(self, b: ir.IRBuilder, c: str, x: ir.Value, y: ir.Value):
        """CPython's float_divmod: (x mod y with y's sign, floor(x / y)) with its rounding."""
        ty = LLVM[c]
        zero, one, half = (ir.Constant(ty, v) for v in (0.0, 1.0, 0.5))
        copysign = self.intrinsic("llvm.copysign", c, 2)
        floor = self.intrinsic("llvm.floor", c)
        mod = b.frem(x, y)
        y_zero = b.fcmp_ordered("==", y, zero)
        d = b.fdiv(b.fsub(x, mod), y)
        mod_nonzero = b.fcmp_unordered("!=", mod, zero)
        fix = b.and_(mod_nonzero, b.xor(b.fcmp_ordered("<", y, zero), b.fcmp_ordered("<", mod,
                     zero)))  # fmt: skip
        mod2 = b.select(fix, b.fadd(mod, y), b.select(mod_nonzero, mod, b.call(copysign,
                        [zero, y])))  # fmt: skip
        d = b.select(fix, b.fsub(d, one), d)
        fl = b.call(floor, [d])
        fl = b.select(b.fcmp_ordered(">", b.fsub(d, fl), half), b.fadd(fl, one), fl)
        fl = b.select(b.fcmp_unordered("!=", d, zero), fl, b.call(copysign, [zero, b.fdiv(x, y)]))
        return b.select(y_zero, mod, mod2), b.select(y_zero, b.fdiv(x, y), fl)

    # ----- pow ---------------------------------------------------------------------------------
    def _pow(self, key: str, c: str) -> ir.Function:
        ty = LLVM[c]

        def body(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> None:
            if is_float(c):  # in double, then rounded once (as the GPU helpers do)
                wide = (b.fpext(x, F64), b.fpext(y, F64)) if c == "float" else (x, y)
                r = b.call(intrinsic(self.module, "llvm.pow", F64, [F64, F64]), list(wide))
                b.ret(b.fptrunc(r, ty) if c == "float" else r)
                return
            fn = b.function
            negative = b.icmp_signed("<", y, ir.Constant(ty, 0)) if is_signed(c) else None
            head, loop, done = (fn.append_basic_block(n) for n in ("head", "loop", "done"))
            start = b.block
            b.branch(head)
            b.position_at_end(head)
            r = b.phi(ty)
            a = b.phi(ty)
            e = b.phi(ty)
            r.add_incoming(ir.Constant(ty, 1), start)
            a.add_incoming(x, start)
            e.add_incoming(y, start)
            b.cbranch(b.icmp_unsigned("==", e, ir.Constant(ty, 0)), done, loop)
            b.position_at_end(loop)
            odd = b.trunc(e, I1)
            r.add_incoming(b.select(odd, b.mul(r, a), r), loop)
            a.add_incoming(b.mul(a, a), loop)
            e.add_incoming(b.lshr(e, ir.Constant(ty, 1)) if not is_signed(c) else
                           b.ashr(e, ir.Constant(ty, 1)), loop)  # fmt: skip
            b.branch(head)
            b.position_at_end(done)
            b.ret(b.select(negative, ir.Constant(ty, 0), r) if negative is not None else r)

        return self._define(key, ty, [ty, ty], body)

    # ----- shifts --------------------------------------------------------------------------------
    def _shl(self, key: str, c: str) -> ir.Function:
        return self._shift(key, c, left=True)

    def _shr(self, key: str, c: str) -> ir.Function:
        return self._shift(key, c, left=False)

    def _shift(self, key: str, c: str, left: bool) -> ir.Function:
        """The count read as unsigned (a negative one is as large as any); a count of the
        type's width ``nbits`` or more shifts every bit out: 0, or the sign for >> of a signed
        value (LLVM's shifts give poison there)."""
        ty = LLVM[c]

        def body(b: ir.IRBuilder, x: ir.Value, y: ir.Value, nbits: ir.Value) -> None:
            zero = ir.Constant(ty, 0)
            n = b.sext(nbits, ty) if ty.width > 32 else b.trunc(nbits, ty) if ty.width < 32 \
                else nbits  # fmt: skip
            out = b.icmp_unsigned(">=", y, n)  # a negative count compares as huge
            safe = b.select(out, zero, y)
            if left:
                b.ret(b.select(out, zero, b.shl(x, safe)))
            elif is_signed(c):
                sign = b.ashr(x, ir.Constant(ty, ty.width - 1))  # 0 or -1
                b.ret(b.select(out, sign, b.ashr(x, safe)))
            else:
                b.ret(b.select(out, zero, b.lshr(x, safe)))

        return self._define(key, ty, [ty, ty, I32], body)

    # ----- conversions rounded to odd -----------------------------------------------------------
    def _to_f32_odd(self, key: str, c: str) -> ir.Function:
        """A double or a 64-bit integer rounded to odd into float: of the two floats either
        side, the one whose last mantissa bit is 1 (the value itself when it is a float). A
        narrower float rounds that to nearest as it would round the value itself."""
        ty = LLVM[c]

        def body(b: ir.IRBuilder, x: ir.Value) -> None:
            if c == "double":
                f = b.fptrunc(x, F32)  # to nearest (even)
                fabs = intrinsic(self.module, "llvm.fabs", F64, [F64])
                ax, af = b.call(fabs, [x]), b.call(fabs, [b.fpext(f, F64)])
                b.ret(_odd_bit(b, f, b.fcmp_ordered(">", af, ax), b.fcmp_ordered("<", af, ax)))
                return
            negative = b.icmp_signed("<", x, ir.Constant(ty, 0)) if is_signed(c) else None
            m = x if negative is None else b.select(negative, b.sub(ir.Constant(ty, 0), x), x)
            f = b.uitofp(m, F32)  # to nearest (even): at most 2**64, which no u64 reaches
            sat = intrinsic(self.module, "llvm.fptoui.sat", I64, [F32])
            back = b.call(sat, [f])
            above = b.fcmp_ordered(">=", f, ir.Constant(F32, 2.0**64))
            away = b.or_(above, b.icmp_unsigned(">", back, m))
            toward = b.and_(b.not_(away), b.icmp_unsigned("<", back, m))
            r = _odd_bit(b, f, away, toward)
            b.ret(r if negative is None else b.select(negative, b.fneg(r), r))

        return self._define(key, F32, [ty], body)

    # ----- atomic adds of 16-bit floats ---------------------------------------------------------
    def _atomic_add(self, key: str, c: str) -> ir.Function:
        """``*p += v`` for a half or bfloat (held as 16-bit patterns), returning the old value:
        widened to float, added and rounded once (the correctly rounded sum), then swapped in
        with a compare-exchange, again until no other thread wrote the element in between."""
        to_bits = float_to_half if c == "half" else float_to_bfloat

        def body(b: ir.IRBuilder, p: ir.Value, v: ir.Value) -> None:
            entry, fn = b.block, b.function
            retry, done = fn.append_basic_block("retry"), fn.append_basic_block("done")
            first = b.load_atomic(p, "monotonic", 2, typ=I16)
            b.branch(retry)
            b.position_at_end(retry)
            old = b.phi(I16)
            old.add_incoming(first, entry)
            total = b.fadd(half_to_float(b, Value(old, c)), half_to_float(b, Value(v, c)))
            pair = b.cmpxchg(p, old, to_bits(b, total), "monotonic", "monotonic")
            old.add_incoming(b.extract_value(pair, 0), retry)
            b.cbranch(b.extract_value(pair, 1), done, retry)
            b.position_at_end(done)
            b.ret(old)

        return self._define(key, I16, [PTR, I16], body)

    # ----- bit-packed tensors ----------------------------------------------------------------
    def _load_bits(self, key: str, c: str) -> ir.Function:
        """Bits ``[pos, pos + bits)`` of the bytes at ``p``; an element of up to 32 bits spans
        at most 5 bytes, and only those it spans are read (the last may end the buffer)."""

        def body(b: ir.IRBuilder, p: ir.Value, pos: ir.Value, nbits: ir.Value) -> None:
            q = b.gep(p, [b.ashr(pos, ir.Constant(I64, 3))], source_etype=I8)
            shift = b.trunc(b.and_(pos, ir.Constant(I64, 7)), I32)
            end = b.add(shift, nbits)
            word: ir.Value = b.zext(b.load(q, typ=I8), I64)
            for k in range(1, 5):
                fn = b.function
                read, done = fn.append_basic_block(f"byte{k}"), fn.append_basic_block(f"had{k}")
                before = b.block
                b.cbranch(b.icmp_signed(">", end, ir.Constant(I32, 8 * k)), read, done)
                b.position_at_end(read)
                byte = b.load(b.gep(q, [ir.Constant(I32, k)], source_etype=I8), typ=I8)
                more = b.or_(word, b.shl(b.zext(byte, I64), ir.Constant(I64, 8 * k)))
                b.branch(done)
                b.position_at_end(done)
                merged = b.phi(I64)
                merged.add_incoming(word, before)
                merged.add_incoming(more, read)
                word = merged
            mask = b.sub(b.shl(ir.Constant(I64, 1), b.zext(nbits, I64)), ir.Constant(I64, 1))
            b.ret(b.trunc(b.and_(b.lshr(word, b.zext(shift, I64)), mask), I32))

        return self._define(key, I32, [PTR, I64, I32], body)

    def _store_bits(self, key: str, c: str) -> ir.Function:
        """Neighbouring elements share bytes with other blocks' threads: atomic updates of the
        32-bit word(s) the element lies in (blocks run on several cores)."""

        def body(b: ir.IRBuilder, p, pos, nbits, code) -> None:
            addr = b.add(b.ptrtoint(p, I64), b.ashr(pos, ir.Constant(I64, 3)))
            shift = b.add(b.mul(b.and_(addr, ir.Constant(I64, 3)), ir.Constant(I64, 8)),
                          b.and_(pos, ir.Constant(I64, 7)))  # fmt: skip
            word = b.inttoptr(b.and_(addr, ir.Constant(I64, ~3)), PTR)
            mask = b.shl(b.sub(b.shl(ir.Constant(I64, 1), b.zext(nbits, I64)),
                               ir.Constant(I64, 1)), shift)  # fmt: skip
            value = b.and_(b.shl(b.zext(code, I64), shift), mask)
            for half in range(2):
                m = b.trunc(b.lshr(mask, ir.Constant(I64, 32 * half)), I32)
                v = b.trunc(b.lshr(value, ir.Constant(I64, 32 * half)), I32)
                target = b.gep(word, [ir.Constant(I32, half)], source_etype=I32)
                if half:
                    skip = b.function.append_basic_block("done")
                    upper = b.function.append_basic_block("upper")
                    b.cbranch(b.icmp_unsigned("!=", m, ir.Constant(I32, 0)), upper, skip)
                    b.position_at_end(upper)
                b.atomic_rmw("and", target, b.not_(m), "monotonic")
                b.atomic_rmw("or", target, v, "monotonic")
                if half:
                    b.branch(skip)
                    b.position_at_end(skip)
            b.ret_void()

        return self._define(key, ir.VoidType(), [PTR, I64, I32, I32], body)


def _odd_bit(b: ir.IRBuilder, f: ir.Value, away: ir.Value, toward: ir.Value) -> ir.Value:
    """``f``, rounded to nearest from a value it missed ``away`` from zero or ``toward`` it, as
    the value rounded to odd: an even inexact result steps one pattern towards the value."""
    u = b.bitcast(f, I32)
    odd = b.trunc(u, I1)
    keep = b.or_(odd, b.not_(b.or_(away, toward)))
    stepped = b.select(away, b.sub(u, ir.Constant(I32, 1)), b.add(u, ir.Constant(I32, 1)))
    return b.bitcast(b.select(keep, u, stepped), F32)
