"""One C-style renderer for the thread IR. A language (CUDA, HIP, SYCL) is a subclass that
fills in the table: kernel prefix, thread index, barrier, shared memory, type names,
intrinsics, prelude. Generated code is indented, keeps the kernel's names, and carries the
kernel's Python line above each group of statements."""

from __future__ import annotations

import math
from collections.abc import Iterable

from tilevm.backends import codecs, prelude
from tilevm.dtypes import DataType
from tilevm.lowering import thread_ir as t
from tilevm.lowering.exprs import compute_type

INT_TYPES = {8: "int8_t", 16: "int16_t", 32: "int32_t", 64: "int64_t"}

BIN_OPS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%", "and": "&", "or": "|",
           "xor": "^", "shl": "<<", "shr": ">>", "eq": "==", "ne": "!=", "lt": "<", "le": "<=",
           "gt": ">", "ge": ">=", "land": "&&"}  # fmt: skip
WRAPPING = {"wadd": "+", "wsub": "-", "wmul": "*"}  # integer ops that must wrap, not overflow
MATH = ("exp", "exp2", "log", "log2", "sqrt", "sin", "cos", "tan", "atan", "tanh", "erf", "log1p",
        "expm1", "floor", "ceil")  # fmt: skip


def container_bits(bits: int) -> int:
    return 8 if bits <= 8 else 16 if bits <= 16 else 32 if bits <= 32 else 64


class CStyleRenderer:
    # ----- the table: languages override these ------------------------------------------------
    kernel_prefix = ""
    restrict = "__restrict__"
    barrier = "__syncthreads();"
    thread_index = "threadIdx.x"
    block_index = ("blockIdx.x", "blockIdx.y", "blockIdx.z")
    grid_size = ("gridDim.x", "gridDim.y", "gridDim.z")
    shared_decl = "extern __shared__ __align__(16) unsigned char tv_smem[];"
    half_type = "__half"
    bfloat_type = "__nv_bfloat16"
    prelude = ""
    indent = "    "
    array_align = "__align__(16) "
    # correctly rounded arithmetic on halves and bfloats (never contracted into an fma)
    half_ops: dict[str, str] = {}
    # tv_approx_exp, tv_approx_exp2, tv_approx_log2, tv_approx_rsqrt, tv_approx_div on f32: the
    # target's fast instructions, emitted into kernels that call them
    approx_helpers = ""
    # how the sigmoid helper spells exp and |x| of a float and of a double
    sigmoid_spelling = ("expf", "fabsf", "exp", "fabs")

    def storage_type(self, dt: DataType) -> str:
        """How an element is held in registers and shared memory."""
        if dt.is_float:
            named = {"f32": "float", "f64": "double", "f16": self.half_type,
                     "bf16": self.bfloat_type}  # fmt: skip
            return named.get(dt.name, "uint8_t" if dt.bits <= 8 else "uint16_t")
        width = container_bits(dt.bits)
        return INT_TYPES[width] if dt.kind == "int" else "u" + INT_TYPES[width]

    def memory_type(self, dt: DataType) -> str:
        """Element type of a tensor parameter (sub-byte tensors are bytes of packed bits)."""
        return self.storage_type(dt) if dt.bits in (8, 16, 32, 64) else "uint8_t"

    def compute_type(self, dt: DataType) -> str:
        return {"f32": "float", "f64": "double", "i32": "int32_t", "u32": "uint32_t",
                "i64": "int64_t", "u64": "uint64_t", "u1": "bool"}.get(dt.name) or \
            self.storage_type(dt)  # fmt: skip

    def index_type(self, dt: DataType) -> str:
        """Sizes, strides and loop counters: plain ``int`` unless they need 64 bits."""
        return "int" if dt.name == "i32" else self.compute_type(dt)

    # ----- kernel -----------------------------------------------------------------------------
    def render(self, kernel: t.ThreadKernel) -> str:
        self.codecs: dict[str, str] = {}
        body = self.block(kernel.body, 1)
        params = ",\n".join(self.indent + self.param(p) for p in kernel.params)
        lines = [
            self.kernel_signature(kernel, params) + " {",
            f"{self.indent}const int tid = {self.thread_index};",
        ]
        if kernel.shared_bytes:
            lines.append(self.indent + self.shared_decl)
        lines += body
        lines.append("}")
        head = [self.prelude.strip(), *self.codecs.values()]
        return "\n".join(head) + "\n\n" + "\n".join(lines) + "\n"

    def kernel_signature(self, kernel: t.ThreadKernel, params: str) -> str:
        return f"{self.kernel_prefix} void {kernel.name}(\n{params})"

    def param(self, p: t.Param) -> str:
        if p.kind == "tensor":
            return f"{self.memory_type(p.dtype)}* {self.restrict} {p.name}"
        if p.kind == "scalar":
            return f"{self.storage_type(p.dtype)} {p.name}"
        return f"{self.index_type(p.dtype)} {p.name}"  # a size or stride

    # ----- statements -------------------------------------------------------------------------
    def block(self, stmts: Iterable[t.Stmt], depth: int) -> list[str]:
        out: list[str] = []
        for stmt in stmts:
            out += self.stmt(stmt, depth)
        return out

    def stmt(self, s: t.Stmt, depth: int) -> list[str]:
        pad = self.indent * depth
        if isinstance(s, t.Comment):
            return [f"{pad}// {s.text}"]
        if isinstance(s, t.Declare):
            ty = self.storage_type(s.dtype)
            if s.size is not None:
                # narrow arrays are read as 32-bit words by matrix intrinsics
                align = self.array_align if container_bits(s.dtype.bits) < 32 else ""
                return [f"{pad}{align}{ty} {s.name}[{s.size}];"]
            init = f" = {self.expr(s.init)}" if s.init is not None else ""
            return [f"{pad}{ty} {s.name}{init};"]
        if isinstance(s, t.Set):
            return [f"{pad}{self.expr(s.target)} = {self.expr(s.value)};"]
        if isinstance(s, t.Store):
            return [f"{pad}{self.mem(s.mem)} = {self.expr(s.value)};"]
        if isinstance(s, t.VecLoad):
            ty = self.storage_type(s.mem.dtype)
            src = f"&{self.mem(s.mem)}"
            return [f"{pad}tv_vload<{ty}, {s.count}>(&{s.array}[{self.expr(s.index)}], {src});"]
        if isinstance(s, t.VecStore):
            ty = self.storage_type(s.mem.dtype)
            dst = f"&{self.mem(s.mem)}"
            return [f"{pad}tv_vstore<{ty}, {s.count}>({dst}, &{s.array}[{self.expr(s.index)}]);"]
        if isinstance(s, t.Loop):
            return self.loop(s, depth)
        if isinstance(s, t.IfThen):
            out = [f"{pad}if ({self.expr(s.cond)}) {{", *self.block(s.then, depth + 1)]
            if s.orelse:
                out += [f"{pad}}} else {{", *self.block(s.orelse, depth + 1)]
            return out + [f"{pad}}}"]
        if isinstance(s, t.Barrier):
            return [pad + self.barrier]
        if isinstance(s, t.Effect):
            return [f"{pad}{self.expr(s.call)};"]
        if isinstance(s, t.Forever):
            return [f"{pad}while (true) {{", *self.block(s.body, depth + 1), f"{pad}}}"]
        if isinstance(s, t.Break):
            return [f"{pad}break;"]
        raise AssertionError(f"no rendering for {s!r}")

    def loop(self, s: t.Loop, depth: int) -> list[str]:
        pad = self.indent * depth
        v, step = s.var, s.step
        if isinstance(step, t.Const):
            cond = f"{v} {'<' if step.value > 0 else '>'} {self.expr(s.stop)}"
            inc = f"{v} += {step.value}" if step.value != 1 else f"++{v}"
        else:
            st = self.expr(step)
            cond = f"({st} > 0 ? {v} < {self.expr(s.stop)} : {v} > {self.expr(s.stop)})"
            inc = f"{v} += {st}"
        ty = self.index_type(s.dtype)
        head = f"{pad}for ({ty} {v} = {self.expr(s.start)}; {cond}; {inc}) {{"
        pragma = [f"{pad}#pragma unroll"] if s.unroll else []
        return [*pragma, head, *self.block(s.body, depth + 1), f"{pad}}}"]

    def mem(self, m: t.Mem) -> str:
        if m.space == "global":
            return f"{m.base}[{self.expr(m.offset)}]"
        ty = self.storage_type(m.dtype)
        return f"(({ty}*)(tv_smem + {m.base_bytes}))[{self.expr(m.offset)}]"

    # ----- expressions ------------------------------------------------------------------------
    def expr(self, e: t.Expr) -> str:
        method = getattr(self, "expr_" + type(e).__name__.lower())
        return method(e)

    def expr_const(self, e: t.Const) -> str:
        if isinstance(e.value, str):  # a printf format
            return _c_string(e.value)
        if e.dtype.is_float or isinstance(e.value, float):
            return self.float_literal(float(e.value), e.dtype)
        value = int(e.value)
        if e.dtype.kind == "uint" and e.dtype.bits == 32 and 0 <= value < 2**32:
            return f"{value:#x}u" if value > 9 else f"{value}u"  # bit masks read best in hex
        if e.dtype.bits > 32 or not -(2**31) <= value < 2**31:
            return f"{value}ll" if e.dtype.kind == "int" else f"{value}ull"
        return str(value)

    def float_literal(self, value: float, dt: DataType) -> str:
        double = dt.bits == 64
        if math.isnan(value):
            return "TV_NAN_D" if double else "TV_NAN_F"
        if math.isinf(value):
            sign = "-" if value < 0 else ""
            return f"{sign}{'TV_INF_D' if double else 'TV_INF_F'}"
        text = repr(value) if value == int(value) and abs(value) < 1e16 else value.hex()
        if "." not in text and "e" not in text and "p" not in text:
            text += ".0"
        return text if double else text + "f"

    def expr_sym(self, e: t.Sym) -> str:
        return e.name

    def expr_elem(self, e: t.Elem) -> str:
        return f"{e.array}[{self.expr(e.index)}]"

    def expr_bin(self, e: t.Bin) -> str:
        a, b = self.expr(e.a), self.expr(e.b)
        if e.op == "ult":  # an index against an extent: negatives compare as huge
            wide = max(e.a.dtype.bits, e.b.dtype.bits) > 32
            u = "unsigned long long" if wide else "unsigned"
            return f"(({u})({a}) < ({u})({b}))"
        if e.op in WRAPPING:
            ct = self.compute_type(e.dtype)
            if e.dtype.kind == "int":
                u = "u" + ct
                return f"({ct})(({u})({a}) {WRAPPING[e.op]} ({u})({b}))"
            return f"({a} {WRAPPING[e.op]} {b})"
        return f"({a} {BIN_OPS[e.op]} {b})"

    def expr_un(self, e: t.Un) -> str:
        a = self.expr(e.a)
        if e.op == "neg":
            if e.dtype.is_integer and e.dtype.kind == "int":
                ct = self.compute_type(e.dtype)
                return f"({ct})(0u - (u{ct})({a}))"
            return f"(-{a})"
        return f"(~{a})"

    def expr_select(self, e: t.Select) -> str:
        return f"({self.expr(e.cond)} ? {self.expr(e.a)} : {self.expr(e.b)})"

    def expr_convert(self, e: t.Convert) -> str:
        return f"({self.compute_type(e.dtype)})({self.expr(e.a)})"

    def expr_call(self, e: t.Call) -> str:
        args = [self.expr(a) for a in e.args]
        fn = e.fn
        double = e.dtype.name == "f64"
        if fn in MATH:
            return f"{fn}{'' if double else 'f'}({args[0]})"
        if fn == "rsqrt":
            return f"({'1.0' if double else '1.0f'} / sqrt{'' if double else 'f'}({args[0]}))"
        if fn == "fma":
            return f"fma{'' if double else 'f'}({', '.join(args)})"
        if fn == "sigmoid":
            self.codecs.setdefault("tv_sigmoid", prelude.sigmoid(*self.sigmoid_spelling))
        if fn.startswith("approx_"):
            assert self.approx_helpers, f"{type(self).__name__} has no approximate math"
            self.codecs.setdefault("tv_approx", self.approx_helpers.strip())
        if fn == "f2i":
            ct = self.compute_type(compute_type(e.dtype))
            signed = "true" if e.dtype.kind == "int" else "false"
            return f"tv_f2i<{ct}, {e.dtype.bits}, {signed}>({args[0]})"
        if fn == "block_id":
            return self.block_index[int(e.args[0].value)]
        if fn == "num_blocks":
            return self.grid_size[int(e.args[0].value)]
        if fn == "shfl_xor":
            return self.shuffle_xor(args[0], args[1])
        if fn == "trap":
            return self.trap()
        if fn == "printf":
            return f"printf({', '.join(args)})"
        if fn == "vfill":
            return f"tv_vfill<{self.storage_type(e.dtype)}, {args[2]}>({args[0]}, {args[1]})"
        return f"tv_{fn}({', '.join(args)})"

    def shuffle_xor(self, value: str, mask: str) -> str:
        return f"__shfl_xor_sync(0xffffffffu, {value}, {mask})"

    def trap(self) -> str:
        return "__trap()"

    def expr_load(self, e: t.Load) -> str:
        return self.mem(e.mem)

    def expr_ref(self, e: t.Ref) -> str:
        return f"&{e.array}[{self.expr(e.index)}]"

    def expr_addr(self, e: t.Addr) -> str:
        return f"&{self.mem(e.mem)}"

    # element <-> compute value
    def expr_decode(self, e: t.Decode) -> str:
        src = e.a.dtype
        a = self.expr(e.a)
        if src.name == "f16":
            return self.half_to_float(a)
        if src.name == "bf16":
            return self.bfloat_to_float(a)
        if codecs.needs_codec(src):
            return f"{self.codec(codecs.decode_function(src))}({a})"
        ct = self.compute_type(e.dtype)
        if self.storage_type(src) == ct:
            return a
        return f"({ct}){a}" if src.name != "f32" or e.dtype.name != "f64" else f"(double){a}"

    def expr_encode(self, e: t.Encode) -> str:
        dst = e.dtype
        native = self.half_arithmetic(e)
        if native is not None:
            return native
        a = self.expr(e.a)
        if dst.name == "f16":
            return self.float_to_half(a)
        if dst.name == "bf16":
            return self.float_to_bfloat(a)
        ty = self.storage_type(dst)
        if codecs.needs_codec(dst):
            return f"({ty}){self.codec(codecs.encode_function(dst))}({a})"
        if dst.is_float:
            return a if self.compute_type(compute_type(dst)) == ty else f"({ty})({a})"
        if dst.bits == container_bits(dst.bits):
            return a if ty == self.compute_type(compute_type(dst)) else f"({ty})({a})"
        if dst.kind == "int":
            return f"({ty})tv_sext<{dst.bits}>((uint32_t)({a}))"
        return f"({ty})(({a}) & {hex((1 << dst.bits) - 1)})"

    def expr_tobits(self, e: t.ToBits) -> str:
        src = e.a.dtype
        a = self.expr(e.a)
        word = self.compute_type(e.dtype)
        if src.name == "f16":
            return f"({word}){self.half_bits(a)}"
        if src.name == "bf16":
            return f"({word}){self.bfloat_bits(a)}"
        if src.name == "f32":
            return f"({word})__float_as_uint({a})"
        if src.name == "f64":
            return f"({word})__double_as_longlong({a})"
        mask = (1 << src.bits) - 1
        unsigned = f"({word})({'u' + INT_TYPES[container_bits(src.bits)]})({a})"
        return unsigned if src.bits == container_bits(src.bits) else f"({unsigned} & {hex(mask)})"

    def expr_frombits(self, e: t.FromBits) -> str:
        dst = e.dtype
        a = self.expr(e.a)
        if dst.name == "f16":
            return self.half_from_bits(f"(unsigned short)({a})")
        if dst.name == "bf16":
            return self.bfloat_from_bits(f"(unsigned short)({a})")
        if dst.name == "f32":
            return f"__uint_as_float((uint32_t)({a}))"
        if dst.name == "f64":
            return f"__longlong_as_double((long long)({a}))"
        ty = self.storage_type(dst)
        if dst.kind == "int" and dst.bits != container_bits(dst.bits):
            return f"({ty})tv_sext<{dst.bits}>((uint32_t)({a}))"
        return f"({ty})({a})"

    def half_arithmetic(self, e: t.Encode) -> str | None:
        """``a + b``, ``a - b``, ``a * b`` of two halves (or two bfloats) rounded to the same type,
        computed in that type: one correctly rounded operation is the same number as the VM's
        float32 operation rounded once (float32 has more than twice their precision), and the GPU
        compiler pairs such operations on neighbouring slots into one packed instruction."""
        op = self.half_ops.get(getattr(e.a, "op", None)) if isinstance(e.a, t.Bin) else None
        if op is None or e.dtype.name not in ("f16", "bf16"):
            return None
        args = [self.half_operand(x, e.dtype) for x in (e.a.a, e.a.b)]
        return None if None in args else f"{op}({args[0]}, {args[1]})"

    def half_operand(self, x: t.Expr, dtype: DataType) -> str | None:
        if isinstance(x, t.Decode) and x.a.dtype == dtype:
            return self.expr(x.a)
        if isinstance(x, t.Const) and isinstance(x.value, (int, float)):
            value = float(x.value)
            if dtype.decode(dtype.encode([value]))[0] == value:  # exactly a value of the type
                return self.expr_encode(t.Encode(t.Const(value, x.dtype), dtype))
        return None

    # half-precision spellings (CUDA's; HIP shares them)
    def half_to_float(self, a: str) -> str:
        return f"__half2float({a})"

    def bfloat_to_float(self, a: str) -> str:
        return f"__bfloat162float({a})"

    def float_to_half(self, a: str) -> str:
        return f"__float2half_rn({a})"

    def float_to_bfloat(self, a: str) -> str:
        return f"__float2bfloat16_rn({a})"

    def half_bits(self, a: str) -> str:
        return f"__half_as_ushort({a})"

    def bfloat_bits(self, a: str) -> str:
        return f"__bfloat16_as_ushort({a})"

    def half_from_bits(self, a: str) -> str:
        return f"__ushort_as_half({a})"

    def bfloat_from_bits(self, a: str) -> str:
        return f"__ushort_as_bfloat16({a})"

    def codec(self, fn: codecs.CFunction) -> str:
        self.codecs.setdefault(fn.name, fn.source)
        return fn.name


def _c_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
