"""Random small kernels for the differential tests (``test_differential.py``).

Each generator takes a seeded ``random.Random`` and returns a ``Program``: the kernel's source
text (a self-contained module: the frontend reads kernels from real files), the launch (grid and
warps), its tensor arguments -- inputs as bit patterns, outputs with how to check them -- and a
one-line summary. The test writes the source to a file and runs it (``execute``) on every
executor, on fresh copies of the same inputs and poisoned outputs, and compares.

Families:

* ``elementwise``: 1-D or 2-D tiles, chains of 2-6 random operations over many dtypes (casts
  where operands differ), ragged shapes (masked loads with ``other=``), broadcast rows/columns.
* ``reduction``: ``tv.sum``/``tv.max``/``tv.min`` over an axis (or all) of a 2-D tile, with or
  without keepdims, in one step or accumulated over a loop of chunks.
* ``cast``: load one dtype, convert to another (and maybe a third); inputs include special values,
  the destination's rounding midpoints and the values just beside them, saturation boundaries.
* ``view``: bytes viewed as narrower or wider elements (and back), floats viewed as integers.
* ``dot``: ``tv.dot`` with random tile and problem sizes, K loops, accumulators, transposed
  operands, and layouts pinned with ``layout=`` / ``tv.annotate`` (matrix atoms included).
"""

from __future__ import annotations

import importlib.util
import math
import random
from dataclasses import dataclass

import numpy as np

import tilevm as tv
from tilevm.dtypes import DataType

WARPS = (1, 2, 4, 8)
F32_ULP = 2.0**-23

# ----- dtypes ---------------------------------------------------------------------------------

EW_FLOATS = (
    [tv.f32] * 4
    + [tv.f16] * 3
    + [tv.bf16] * 3
    + [
        tv.f8e4m3fn,
        tv.f8e5m2,
        tv.f8e4m3fnuz,
        tv.f6e3m2fn,
        tv.f6e2m3fn,
        tv.f4e2m1fn,
        tv.f5e2m2,
    ]
)
EW_INTS = (
    [tv.i32] * 4
    + [tv.i8] * 3
    + [tv.u8] * 2
    + [
        tv.i16,
        tv.u16,
        tv.u32,
        tv.i4,
        tv.u4,
        tv.i3,
        tv.u5,
        tv.u13,
        tv.i12,
    ]
)
CAST_TYPES = [
    tv.f64,
    tv.f32,
    tv.f32,
    tv.f16,
    tv.f16,
    tv.bf16,
    tv.bf16,
    tv.f8e4m3fn,
    tv.f8e5m2,
    tv.f8e4m3fnuz,
    tv.f8e5m2fnuz,
    tv.f8e4m3,
    tv.f6e3m2fn,
    tv.f6e2m3fn,
    tv.f4e2m1fn,
    tv.f5e2m2,
    tv.f8e8m0fnu,
    tv.dtype("f7e3m3"),
    tv.i64,
    tv.u64,
    tv.i32,
    tv.i32,
    tv.u32,
    tv.i16,
    tv.u16,
    tv.i8,
    tv.i8,
    tv.u8,
    tv.u8,
    tv.i4,
    tv.u4,
    tv.i3,
    tv.u5,
    tv.u13,
    tv.i1,
    tv.u1,
]


def native(dt: DataType):
    """The numpy (or ml_dtypes) type holding ``dt`` one element per item, or None (bit-packed)."""
    twin = tv.dtypes.to_numpy(dt)
    return twin if twin is not None and dt.bits in (8, 16, 32, 64) else None


def mask(dt: DataType) -> int:
    return (1 << dt.bits) - 1


def tiny(dt: DataType) -> float:
    """The gap between zero and the smallest magnitude: one unit in the last place down there."""
    return float(dt.smallest_subnormal if dt.has_subnormals else dt.smallest_normal)


def nan_code(dt: DataType) -> int | None:
    """The pattern of NaN in ``dt``, or None. (Asked of ``encode`` rather than of
    ``dt.has_nan``, which lists every NaN pattern: seconds for f32, more memory than there is
    for f64.)"""
    if not dt.is_float:
        return None
    code = int(dt.encode(np.asarray([math.nan]))[0])
    return code if np.isnan(dt.decode(np.asarray([code], dtype=dt.storage))[0]) else None


def poison_code(dt: DataType) -> int:
    """A recognisable non-zero pattern: NaN where the type has one, else 0x5A5A... (0xA5A5...
    where that would be zero)."""
    if nan_code(dt) is not None:
        return nan_code(dt)
    code = 0x5A5A5A5A5A5A5A5A & mask(dt)
    return code if code else 0xA5A5A5A5A5A5A5A5 & mask(dt)


def values_of(dt: DataType, codes: np.ndarray) -> np.ndarray:
    """Bit patterns -> float64 values (integers exactly up to 2^53; ``u64``/``i64`` compared by
    pattern anyway)."""
    with np.errstate(invalid="ignore"):  # signalling NaNs turn quiet
        return np.asarray(dt.decode(np.asarray(codes).astype(dt.storage)), dtype=np.float64)


def codes_of(dt: DataType, values: np.ndarray) -> np.ndarray:
    """Values -> bit patterns (floats rounded to nearest even, integers wrapped)."""
    values = np.asarray(values)
    with np.errstate(all="ignore"):  # NaN and infinities are meant
        if dt.is_integer:
            return np.asarray(dt.encode(values.astype(np.int64), overflow="wrap"), np.uint64)
        return np.asarray(dt.encode(values.astype(np.float64)), dtype=np.uint64)


def uniform_codes(g: np.random.Generator, dt: DataType, n: int) -> np.ndarray:
    return g.integers(0, mask(dt), n, dtype=np.uint64, endpoint=True)


def random_codes(g: np.random.Generator, dt: DataType, n: int, wild: float = 0.15) -> np.ndarray:
    """Mostly moderate values, with a fraction ``wild`` of uniformly random patterns (NaNs,
    infinities, subnormals, extremes) and of special values."""
    if dt.is_float:
        values = g.standard_normal(n) * 2.0 ** g.integers(-3, 4, n)
        specials = [0.0, -0.0, float(dt.max), -float(dt.max), tiny(dt), -tiny(dt), 1.0, -1.0]
        specials += [math.inf, -math.inf] if dt.has_inf else []
        specials += [math.nan] if nan_code(dt) is not None else []
    else:
        lo, hi = max(int(dt.min), -8), min(int(dt.max), 8)
        values = g.integers(lo, hi, n, endpoint=True)
        specials = [int(dt.min), int(dt.max), 0, 1] + ([-1] if dt.is_signed else [])
    codes = codes_of(dt, values)
    pick = g.random(n)
    codes = np.where(pick < wild, uniform_codes(g, dt, n), codes)
    special_codes = codes_of(dt, np.asarray(specials))
    return np.where(pick < wild / 3, g.choice(special_codes, n), codes).astype(np.uint64)


def representable(dt: DataType, value: float) -> bool:
    if dt.is_integer:
        return float(value).is_integer() and dt.min <= value <= dt.max
    return bool(abs(value) <= dt.max and float(dt.round(np.asarray([value]))[0]) == value)


def literal(value: float | int) -> str:
    text = repr(value)
    return f"({text})" if text.startswith("-") else text


def constant(r: random.Random, dt: DataType, choices: list | None = None) -> str:
    """A Python number that ``dt`` holds exactly (so it adopts ``dt``)."""
    if dt.is_float:
        options = choices or [0.5, 1.0, 1.5, 2.0, 3.0, 0.25, 4.0, -1.0, -0.5, -2.0, -3.0, 0.0]
        options = [c for c in options if representable(dt, c)]
        return literal(float(r.choice(options)))
    return literal(r.randint(max(int(dt.min), -9), min(int(dt.max), 9)))


# ----- programs ---------------------------------------------------------------------------------


@dataclass
class Check:
    """How one output is compared.

    ``exact``: the same bit patterns on every executor (any NaN equals any NaN), against each
    other; ``close``: within ``rtol * |x| + atol`` of each other (inexact math functions);
    ``reference``: every executor within ``tol`` of a float64 ``reference``, and within ``2 * tol``
    of each other."""

    mode: str = "exact"
    rtol: float = 0.0
    atol: float = 0.0
    reference: np.ndarray | None = None
    tol: np.ndarray | None = None
    signed_zero: bool = True  # +0 and -0 differ (not for max/min, whose order is free)


@dataclass
class Arg:
    name: str
    dtype: DataType
    shape: tuple[int, ...]
    codes: np.ndarray | None = None  # an input's bit patterns (C order); None for an output
    layout: str = "dense"  # inputs: "dense", "rows" (padded row pitch), "strided" (last stride 2)
    pad: tuple[tuple[int, int], ...] | None = None  # outputs: a window of a larger buffer
    check: Check | None = None

    @property
    def is_output(self) -> bool:
        return self.codes is None


@dataclass
class Program:
    family: str
    name: str
    source: str
    grid: tuple[int, ...]
    warps: int
    args: list[Arg]
    summary: str
    devices: tuple[str, ...] = ("interp", "cpu")


def render(name: str, params: list[str], constexprs: dict, body: list[str], head: list[str]) -> str:
    """A module holding one kernel: ``head`` comment lines, the imports, the kernel."""
    lines = [f"# {h}" for h in head]
    lines += [
        "import math",
        "",
        "import tilevm as tv",
        "from tilevm.layouts import atoms, local, replicate, spatial",
        "",
        "",
    ]
    signature = params + [f"{k}: tv.constexpr = {v!r}" for k, v in constexprs.items()]
    lines.append("@tv.kernel")
    lines.append(f"def {name}(")
    lines += [f"    {p}," for p in signature]
    lines.append("):")
    lines += [f"    {line}" for line in body]
    return "\n".join(lines) + "\n"


def tensor_param(arg: Arg) -> str:
    return f"{arg.name}: tv.Tensor[tv.{arg.dtype}]"


def output(r: random.Random, name: str, dt: DataType, shape: tuple[int, ...], check: Check) -> Arg:
    """An output; half of the native ones are windows of a larger poisoned buffer, so writes
    outside the tensor show."""
    pad = None
    if native(dt) is not None and r.random() < 0.5:
        pad = tuple((r.randint(0, 3), r.randint(1, 5)) for _ in shape)
    return Arg(name, dt, shape, pad=pad, check=check)


def input_arg(r: random.Random, name: str, dt: DataType, codes: np.ndarray, shape) -> Arg:
    layout = "dense"
    if native(dt) is not None and len(shape) == 2 and r.random() < 0.4:
        layout = r.choice(["rows", "strided"])
    return Arg(name, dt, tuple(shape), codes=codes.reshape(-1), layout=layout)


def ragged(r: random.Random, block: int, max_blocks: int = 3) -> int:
    """A size that is not a multiple of ``block`` (where ``block > 1``)."""
    if block == 1:
        return r.randint(1, 5)
    return block * r.randint(0, max_blocks - 1) + r.randint(1, block - 1)


# ----- elementwise chains -----------------------------------------------------------------------


@dataclass
class Val:
    name: str
    dt: DataType
    shape: str  # "full", "row" ([1, BN]) or "col" ([BM, 1])
    rel: float = 0.0  # error bound relative to the value (inexact math functions upstream)
    abs: float = 0.0  # absolute error bound

    @property
    def exact(self) -> bool:
        return self.rel == 0 and self.abs == 0


def _broadcast(*shapes: str) -> str:
    """The shape of an operation on operands of ``shapes`` ("scalar" for Python numbers)."""
    kinds = set(shapes) - {"scalar"}
    if "full" in kinds or {"row", "col"} <= kinds:
        return "full"
    return kinds.pop()


class _Chain:
    """Builds a random chain of operations as source lines, tracking dtypes, shapes and the
    error bounds that inexact math functions introduce."""

    FLOAT_OPS = [
        ("add", 4),
        ("sub", 3),
        ("mul", 4),
        ("div", 3),
        ("maximum", 2),
        ("minimum", 2),
        ("where", 3),
        ("abs", 1),
        ("neg", 1),
        ("floor", 1),
        ("ceil", 1),
        ("floordiv", 1),
        ("mod", 1),
        ("math", 4),
        ("cast", 3),
        ("cmpcast", 2),
    ]
    INT_OPS = [
        ("add", 3),
        ("sub", 3),
        ("mul", 3),
        ("floordiv", 2),
        ("mod", 2),
        ("maximum", 1),
        ("minimum", 1),
        ("and", 2),
        ("or", 2),
        ("xor", 2),
        ("shl", 2),
        ("shr", 2),
        ("pow", 1),
        ("abs", 1),
        ("neg", 1),
        ("invert", 1),
        ("where", 2),
        ("cast", 3),
        ("cmpcast", 2),
    ]
    # what an inexact value may still go through: error bounds stay simple
    INEXACT_OPS = {"maximum", "minimum", "abs", "neg", "mul", "where", "cast"}
    MATH = ["exp", "exp2", "log", "log2", "sqrt", "rsqrt", "tanh", "pow", "erf", "sigmoid", "atan",
            "tan", "log1p", "expm1", "tv.pow"]  # fmt: skip

    def __init__(self, r: random.Random, palette: list[DataType]) -> None:
        self.r = r
        self.palette = palette
        self.lines: list[str] = []
        self.pool: list[Val] = []
        self.count = 0

    def new(self, expr: str, dt: DataType, shape: str, rel: float = 0.0, ab: float = 0.0) -> Val:
        val = Val(f"v{self.count}", dt, shape, rel, ab)
        self.count += 1
        self.lines.append(f"{val.name} = {expr}")
        self.pool.append(val)
        return val

    def pick(self, exact: bool = False) -> Val | None:
        candidates = [v for v in self.pool if v.exact or not exact]
        if not candidates:
            return None
        recent = candidates[-3:]
        return self.r.choice(recent if self.r.random() < 0.6 else candidates)

    def operand(self, dt: DataType, exact: bool = False) -> tuple[str, str, float, float]:
        """(expression, shape, rel, abs) of a ``dt`` operand: a constant or a pool value, cast
        when its dtype differs."""
        r = self.r
        if r.random() < 0.3:
            return constant(r, dt), "scalar", 0.0, 0.0
        v = self.pick(exact=exact or dt.is_integer)
        if v is None:
            return constant(r, dt), "scalar", 0.0, 0.0
        if v.dt == dt:
            return v.name, v.shape, v.rel, v.abs
        if not v.exact:  # an inexact value converted to another float
            return f"{v.name}.to(tv.{dt})", v.shape, v.rel + 2 * dt.eps, v.abs + tiny(dt)
        spelled = f"{v.name}.to(tv.{dt})" if r.random() < 0.7 else f"tv.cast({v.name}, tv.{dt})"
        return spelled, v.shape, 0.0, 0.0

    def condition(self) -> tuple[str, str]:
        """A comparison of two exact operands of some dtype."""
        p = self.pick(exact=True)
        op = self.r.choice(["<", "<=", "==", "!=", ">", ">="])
        q, _, _, _ = self.operand(p.dt, exact=True)
        return f"{p.name} {op} {q}", p.shape

    def step(self) -> None:
        r = self.r
        a = self.pick()
        table = self.FLOAT_OPS if a.dt.is_float else self.INT_OPS
        if not a.exact:
            table = [(op, w) for op, w in table if op in self.INEXACT_OPS]
        dt = a.dt
        op = r.choices([op for op, _ in table], [w for _, w in table])[0]
        if op in ("add", "sub", "mul", "div", "floordiv", "mod", "and", "or", "xor"):
            if not a.exact:  # scale by a constant: the error scales with it
                c = constant(r, dt, [2.0, 0.5, -1.0, 4.0, -2.0])
                k = abs(float(c.strip("()")))
                self.new(f"{a.name} * {c}", dt, a.shape, a.rel + 2 * dt.eps, a.abs * k + tiny(dt))
                return
            b, shape, _, _ = self.operand(dt, exact=True)
            sym = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "mod": "%"}
            sym.update({"and": "&", "or": "|", "xor": "^"})
            left, right = (a.name, b) if r.random() < 0.7 else (b, a.name)
            self.new(f"{left} {sym[op]} {right}", dt, _broadcast(a.shape, shape))
        elif op in ("maximum", "minimum"):
            b, shape, rel, ab = self.operand(dt, exact=dt.is_integer)
            self.new(
                f"tv.{op}({a.name}, {b})",
                dt,
                _broadcast(a.shape, shape),
                max(a.rel, rel),
                max(a.abs, ab),
            )
        elif op in ("shl", "shr"):
            # counts from 0 to twice the width (over-wide shifts included), the type's extremes
            # and -1, or any value of the type (negative counts included)
            limit = min(2 * dt.bits - 1, int(dt.max))
            if r.random() < 0.4:
                extremes = [int(dt.min), int(dt.max)] + ([-1] if dt.is_signed else [])
                count = r.choice([r.randint(0, limit)] * 3 + extremes)
                count, shape = literal(count), "scalar"
            else:
                b, shape, _, _ = self.operand(dt, exact=True)
                count = f"({b} & {limit})" if r.random() < 0.6 else b
            sym = "<<" if op == "shl" else ">>"
            self.new(f"{a.name} {sym} {count}", dt, _broadcast(a.shape, shape))
        elif op == "pow":
            if r.random() < 0.5:
                exponent, shape = literal(r.randint(0, min(3, int(dt.max)))), "scalar"
            else:
                b, shape, _, _ = self.operand(dt, exact=True)
                exponent = f"({b} & {min(3, int(dt.max))})"
            self.new(f"{a.name} ** {exponent}", dt, _broadcast(a.shape, shape))
        elif op in ("abs", "neg", "invert", "floor", "ceil"):
            expr = {"abs": f"tv.abs({a.name})", "neg": f"-{a.name}", "invert": f"~{a.name}"}.get(
                op, f"tv.{op}({a.name})"
            )
            self.new(expr, dt, a.shape, a.rel, a.abs)
        elif op == "where":
            cond, cshape = self.condition()
            b, shape, rel, ab = self.operand(dt, exact=dt.is_integer)
            first, second = (a.name, b) if r.random() < 0.5 else (b, a.name)
            self.new(
                f"tv.where({cond}, {first}, {second})",
                dt,
                _broadcast(a.shape, shape, cshape),
                max(a.rel, rel),
                max(a.abs, ab),
            )
        elif op == "cast":
            target = r.choice([t for t in self.palette if t != dt and (a.exact or t.is_float)])
            if a.exact:
                self.new(f"{a.name}.to(tv.{target})", target, a.shape)
            else:
                rel, ab = a.rel + 2 * target.eps, a.abs + tiny(target)
                self.new(f"{a.name}.to(tv.{target})", target, a.shape, rel, ab)
        elif op == "cmpcast":
            cond, cshape = self.condition()
            target = r.choice(self.palette)
            self.new(f"({cond}).to(tv.{target})", target, cshape)
        else:
            self.math(a)

    def math(self, a: Val) -> None:
        """A math function on a safe argument; the result is exact only for sqrt (correctly
        rounded everywhere), the others are within a few units of float32."""
        r, dt, x = self.r, a.dt, a.name
        fn = r.choice(self.MATH)
        rel, ab = 4 * dt.eps + 2.0**-20, tiny(dt)
        if fn in ("exp", "exp2", "expm1", "tan"):  # tan: within (-pi/2, pi/2), far from a pole
            hi = next(c for c in (4.0, 3.0, 2.0, 1.0) if representable(dt, c))
            hi = 1.0 if fn == "tan" else hi
            expr = f"tv.{fn}(tv.minimum(tv.maximum({x}, {literal(-hi)}), {literal(hi)}))"
        elif fn in ("log", "log2", "rsqrt", "log1p"):
            expr = f"tv.{fn}(tv.abs({x}) + 1.0)"
        elif fn in ("erf", "sigmoid", "atan"):  # any argument
            expr = f"tv.{fn}({x})"
        elif fn == "tv.pow":
            expr = f"tv.pow(tv.abs({x}) + 0.5, {constant(r, dt, [0.5, 1.5, -1.0])})"
        elif fn == "sqrt":
            expr, rel, ab = f"tv.sqrt(tv.abs({x}))", 0.0, 0.0
        elif fn == "tanh":
            expr = f"tv.tanh({x})"
        else:
            exponent = constant(r, dt, [2.0, 3.0, 0.5])
            expr = f"tv.abs({x}) ** {exponent}"
        self.new(expr, dt, a.shape, rel, ab)


def elementwise(r: random.Random, g: np.random.Generator, name: str) -> Program:
    rank = r.choice([1, 1, 2])
    warps = r.choice(WARPS)
    palette = EW_FLOATS + EW_INTS
    if rank == 1:
        block = 2 ** r.randint(5, 10)
        n = ragged(r, block, 4)
        shape, grid = (n,), (tv.cdiv(n, block),)
        constexprs = {"BLOCK": block}
        body = ["start = tv.block_id(0) * BLOCK"]
        offsets, tile = "[start]", "[BLOCK]"
    else:
        lm = r.randint(0, 5)
        bm, bn = 2**lm, 2 ** r.randint(max(3, 5 - lm), min(7, 10 - lm))
        rows, cols = r.randint(1, 3 * bm), ragged(r, bn)
        shape, grid = (rows, cols), (tv.cdiv(rows, bm), tv.cdiv(cols, bn))
        constexprs = {"BM": bm, "BN": bn}
        body = ["m0 = tv.block_id(0) * BM", "n0 = tv.block_id(1) * BN"]
        offsets, tile = "[m0, n0]", "[BM, BN]"
    chain = _Chain(r, palette)
    args: list[Arg] = []
    first = r.choice(palette)
    for i in range(r.randint(1, 3)):
        dt = first if i == 0 or r.random() < 0.5 else r.choice(palette)
        codes = random_codes(g, dt, int(np.prod(shape)))
        args.append(input_arg(r, f"t{i}", dt, codes, shape))
        other = f", other={constant(r, dt)}" if r.random() < 0.6 else ""
        body.append(f"x{i} = tv.load(t{i}, {offsets}, {tile}{other})")
        chain.pool.append(Val(f"x{i}", dt, "full"))
    if rank == 2 and r.random() < 0.4:  # a row or a column broadcast against the tile
        dt = r.choice(palette)
        along_rows = r.random() < 0.5
        size = shape[1] if along_rows else shape[0]
        args.append(Arg("vec", dt, (size,), codes=random_codes(g, dt, size)))
        offs, blk, index, kind = (
            ("n0", "BN", "[None, :]", "row") if along_rows else ("m0", "BM", "[:, None]", "col")
        )
        body.append(f"vec_tile = tv.load(vec, [{offs}], [{blk}])")
        body.append(f"xv = vec_tile{index}")
        chain.pool.append(Val("xv", dt, kind))
    for _ in range(r.randint(2, 6)):
        chain.step()
    body += chain.lines
    full = [v for v in chain.pool if v.shape == "full" and not v.name.startswith("x")]
    if not full:  # every step kept a row or a column: widen the last value to the tile
        last = chain.pool[-1]
        widened = f"tv.where(x0 != x0, {last.name}, {last.name})"
        full = [chain.new(widened, last.dt, "full", last.rel, last.abs)]
        body.append(chain.lines[-1])
    stored = [full[-1]]
    if len(full) > 1 and r.random() < 0.5:
        stored.append(r.choice(full[:-1]))
    for i, val in enumerate(stored):
        check = Check("exact") if val.exact else Check("close", rtol=val.rel, atol=val.abs)
        args.append(output(r, f"o{i}", val.dt, shape, check))
        body.append(f"tv.store(o{i}, {val.name}, {offsets})")
    summary = f"{rank}-D {shape} tile {tile} warps={warps}: " + ", ".join(
        f"{a.name}:{a.dtype}" for a in args
    )
    params = [tensor_param(a) for a in args]
    source = render(name, params, constexprs, body, [summary])
    return Program("elementwise", name, source, grid, warps, args, summary)


# ----- reductions -------------------------------------------------------------------------------

RED_TYPES = [tv.f32, tv.f32, tv.f16, tv.bf16, tv.f8e4m3fn, tv.i32, tv.i32, tv.i8, tv.u8, tv.i16]


def _wrap(dt: DataType, values: np.ndarray) -> np.ndarray:
    return values_of(dt, codes_of(dt, values))


def reduction(r: random.Random, g: np.random.Generator, name: str) -> Program:
    dt = r.choice(RED_TYPES)
    op = r.choice(["sum", "sum", "max", "min"])
    axis = r.choice([0, 1, 1, None])
    keep = r.random() < 0.5
    warps = r.choice(WARPS)
    pre = r.choice(["", "", "abs", "square", "f32"])
    if pre == "f32" and dt == tv.f32:
        pre = ""
    if op == "sum" and dt.bits <= 8 and dt.is_float:  # an 8-bit float sum would overflow
        pre = "f32"
    cdt = tv.f32 if pre == "f32" else dt
    body: list[str] = []
    if axis is None:
        bm, bn = 2 ** r.randint(0, 4), 2 ** r.randint(3, 6)
        rows, cols = r.randint(1, bm), r.randint(1, bn)
        chunks, grid, loop = 1, (1,), False
    else:
        bm, bn = 2 ** r.randint(0, 4), r.choice([8, 16, 24, 32, 40, 64, 96, 128])
        if axis == 0:
            bm, bn = r.choice([8, 16, 24, 32, 64]), 2 ** r.randint(2, 6)
        loop = r.random() < 0.6
        kept_block, red_block = (bm, bn) if axis == 1 else (bn, bm)
        kept = r.randint(1, 3 * kept_block)
        chunks = r.randint(1, 3) if loop else 1
        reduced = red_block * (chunks - 1) + r.randint(1, red_block)
        rows, cols = (kept, reduced) if axis == 1 else (reduced, kept)
        grid = (tv.cdiv(kept, kept_block),)
    x_codes = random_codes(g, dt, rows * cols, wild=0.0 if op == "sum" else 0.1)
    if dt.is_integer and op == "sum" and pre == "square":
        x_codes = codes_of(dt, np.clip(values_of(dt, x_codes), -6, 6))
    if dt.is_float and op == "sum":  # keep sums finite
        x_codes = codes_of(dt, np.clip(values_of(dt, x_codes), -8, 8))
    x = input_arg(r, "x", dt, x_codes, (rows, cols))
    other_text = constant(r, dt) if r.random() < 0.6 else None
    other = 0.0 if other_text is None else float(other_text.strip("()"))
    load_other = f", other={other_text}" if other_text is not None else ""
    init = cdt.min if op == "max" else cdt.max if op == "min" else 0
    init = float(init) if cdt.is_float else int(init)

    def pre_text(v: str) -> str:
        return {
            "": v,
            "abs": f"tv.abs({v})",
            "square": f"{v} * {v}",
            "f32": f"{v}.to(tv.f32)",
        }[pre]

    def pre_values(v: np.ndarray) -> np.ndarray:
        if pre == "abs":
            v = np.abs(v)
        elif pre == "square":
            v = v * v
        elif pre == "f32":
            return values_of(tv.f32, codes_of(tv.f32, v))
        return _wrap(cdt, v) if cdt.is_integer else values_of(cdt, codes_of(cdt, v))

    keep_text = ", keepdims=True" if keep else ""
    combine = {"sum": "acc + part", "max": "tv.maximum(acc, part)", "min": "tv.minimum(acc, part)"}
    if axis is None:
        body.append(f"v = tv.load(x, [0, 0], [BM, BN]{load_other})")
        body.append(f"total = tv.{op}({pre_text('v')}{keep_text})")
        out_shape = (1, 1) if keep else (1,)
        if keep:
            body.append("tv.store(out, total, [0, 0])")
        else:
            body.append(f"tv.store(out, tv.full([1], total, tv.{cdt}), [0])")
    else:
        k0 = "m0" if axis == 1 else "n0"
        kb = "BM" if axis == 1 else "BN"
        body.append(f"{k0} = tv.block_id(0) * {kb}")
        if axis == 1:
            offsets, step = "[m0, j * BN]", "x.shape[1], BN"
            part_shape = "[BM, 1]" if keep else "[BM]"
            out_shape = (rows, 1) if keep else (rows,)
            store_at = "[m0, 0]" if keep else "[m0]"
        else:
            offsets, step = "[j * BM, n0]", "x.shape[0], BM"
            part_shape = "[1, BN]" if keep else "[BN]"
            out_shape = (1, cols) if keep else (cols,)
            store_at = "[0, n0]" if keep else "[n0]"
        if loop:
            body.append(f"acc = tv.full({part_shape}, {literal(init)}, tv.{cdt})")
            body.append(f"for j in range(tv.cdiv({step})):")
            body.append(f"    v = tv.load(x, {offsets}, [BM, BN]{load_other})")
            body.append(f"    part = tv.{op}({pre_text('v')}, {axis}{keep_text})")
            body.append(f"    acc = {combine[op]}")
        else:
            body.append(f"v = tv.load(x, {offsets.replace('j * ', '0 * ')}, [BM, BN]{load_other})")
            body.append(f"acc = tv.{op}({pre_text('v')}, {axis}{keep_text})")
        body.append(f"tv.store(out, acc, {store_at})")

    # the float64 reference: padded with ``other``, pre-op in the type, partials per chunk
    values = values_of(dt, x_codes).reshape(rows, cols)
    if dt.is_integer:  # exactly, in 64 bits: squares of 32-bit values do not fit a float64
        values = np.asarray(dt.decode(x_codes.astype(dt.storage)), np.int64).reshape(rows, cols)
    if axis is None:
        prow, pcol = bm, bn
    elif axis == 1:
        prow, pcol = grid[0] * bm, chunks * bn
    else:
        prow, pcol = chunks * bm, grid[0] * bn
    padded = np.full((prow, pcol), int(other) if dt.is_integer else other, values.dtype)
    padded[:rows, :cols] = values
    terms = pre_values(padded)
    fold = {"sum": np.sum, "max": np.max, "min": np.min}[op]

    def round_to(v: np.ndarray) -> np.ndarray:
        return _wrap(cdt, v) if cdt.is_integer else values_of(cdt, codes_of(cdt, v))

    if axis is None:
        reference = round_to(np.asarray([fold(terms)]))
        magnitude = np.asarray([np.abs(terms).sum()])
        count = terms.size
    else:
        red_axis = axis
        block = bn if axis == 1 else bm
        acc = np.full(terms.shape[1 - red_axis], float(init))
        magnitude = np.full_like(acc, abs(float(init)))
        for c in range(chunks if loop else 1):
            part = np.take(terms, range(c * block, (c + 1) * block), axis=red_axis)
            part_value = round_to(fold(part, axis=red_axis))
            magnitude += np.abs(part).sum(axis=red_axis)
            if not loop:
                acc = part_value
            elif op == "sum":
                acc = round_to(acc + part_value)
            else:
                acc = np.maximum(acc, part_value) if op == "max" else np.minimum(acc, part_value)
        kept = rows if axis == 1 else cols
        reference, magnitude = acc[:kept], magnitude[:kept]
        count = block * chunks
    reference = reference.reshape(out_shape)
    if cdt.is_float and op == "sum":
        roundings = chunks + 1
        tol = (roundings * 2 * cdt.eps + 2 * count * F32_ULP) * magnitude + roundings * tiny(cdt)
        check = Check("reference", reference=reference, tol=tol.reshape(out_shape))
    else:
        check = Check("exact", reference=reference, signed_zero=op == "sum")
    out = output(r, "out", cdt, out_shape, check)
    constexprs = {"BM": bm, "BN": bn}
    summary = (
        f"tv.{op} axis={axis} keepdims={keep} pre={pre or 'none'} of {dt} {rows}x{cols} "
        f"tile [{bm}, {bn}] {'loop ' if loop else ''}other={other_text} warps={warps}"
    )
    source = render(name, [tensor_param(x), tensor_param(out)], constexprs, body, [summary])
    return Program("reduction", name, source, grid, warps, [x, out], summary)


# ----- casts ------------------------------------------------------------------------------------


def _neighbours(dt: DataType, values: np.ndarray) -> np.ndarray:
    """The next representable value of ``dt`` above each value (same sign side)."""
    codes = codes_of(dt, values)
    return values_of(dt, np.minimum(codes + 1, mask(dt)))


def interesting(g: np.random.Generator, src: DataType, dst: DataType, n: int) -> list:
    """Source values (floats, or Python ints for integer sources) that stress ``src -> dst``:
    the destination's rounding midpoints and the source values right beside them, its range
    limits, special values."""
    picks: list[np.ndarray] = []
    if dst.is_float:
        grid = values_of(dst, uniform_codes(g, dst, n))
        grid = grid[np.isfinite(grid)]
        with np.errstate(over="ignore"):
            mids = grid / 2 + _neighbours(dst, grid) / 2
        limit, small = float(dst.max), tiny(dst)
        picks += [mids, -mids, np.asarray([limit, -limit, limit * (1 + dst.eps / 4)])]
        picks.append(np.asarray([limit * (1 + dst.eps), small / 2, small, -small / 2, small * 1.5]))
    else:
        lo, hi = float(dst.min), float(dst.max)
        picks.append(np.asarray([lo, hi, lo - 1, hi + 1, lo - 0.5, hi + 0.5, hi + 0.75, 2.0**40]))
        picks.append(np.asarray([-0.5, 0.5, 1.5, -1.5, 2.5, -2.75, 0.0, -0.0, 2.0**63, -(2.0**63)]))
        picks.append(g.uniform(lo - 4, hi + 4, n))
    values = np.concatenate(picks)
    if src.is_float:
        values = np.concatenate([values, [math.nan, math.inf, -math.inf, -0.0]])
        rounded = values_of(src, codes_of(src, values))
        with np.errstate(invalid="ignore"):  # infinities and NaN have no neighbours
            beside = _neighbours(src, np.abs(rounded)) * np.sign(rounded)
            below = rounded - (beside - rounded)
        return list(np.concatenate([rounded, beside, below]))
    lo, hi = int(src.min), int(src.max)
    ints = [int(v) for v in np.floor(values[np.isfinite(values)])]
    ints = [v + d for v in ints for d in (-1, 0, 1)]
    precision = dst.mantissa + 1 if dst.is_float else 64
    room = src.bits - (1 if src.is_signed else 0) - precision
    if room > 0:  # ties of dst (on its grid, unrounded) and the integers beside them
        for _ in range(n // 4):
            shift = g.integers(1, room, endpoint=True)
            top = int(g.integers(1 << (precision - 1), 1 << precision))
            tie = (top << int(shift)) | (1 << (int(shift) - 1))
            ints += [tie, tie + 1, tie - 1, -tie, -tie - 1]
    return [v for v in ints if lo <= v <= hi]


def _int_codes(dt: DataType, values: np.ndarray) -> np.ndarray:
    """Integer values (Python ints allowed, for 64-bit extremes) -> patterns."""
    return np.asarray([int(v) & mask(dt) for v in values], dtype=np.uint64)


def cast(
    r: random.Random,
    g: np.random.Generator,
    name: str,
    pair: tuple[DataType, DataType] | None = None,
) -> Program:
    """``pair`` forces the conversion; otherwise a random one."""
    if pair is None:
        src = r.choice(CAST_TYPES)
        dst = r.choice([t for t in CAST_TYPES if t != src])
        chained = [t for t in CAST_TYPES if t != dst]
        third = r.choice(chained) if r.random() < 0.4 else None
    else:
        (src, dst), third = pair, None
    warps = r.choice(WARPS)
    block = 2 ** r.randint(5, 10)
    n = ragged(r, block, 3)
    n_random = n // 2
    codes = random_codes(g, src, n_random, wild=0.5)
    special = interesting(g, src, dst, n)
    if src.is_integer:
        special_codes = _int_codes(src, special)
    else:
        special_codes = codes_of(src, np.asarray(special, dtype=np.float64))
    pool = np.concatenate([codes, special_codes]).astype(np.uint64)
    codes = g.permutation(pool)[:n] if pool.size >= n else g.choice(pool, n)
    x = Arg("x", src, (n,), codes=codes)
    spell = f"v.to(tv.{dst})" if r.random() < 0.7 else f"tv.cast(v, tv.{dst})"
    other = f", other={constant(r, src)}" if r.random() < 0.3 else ""
    body = [
        "start = tv.block_id(0) * BLOCK",
        f"v = tv.load(x, [start], [BLOCK]{other})",
        f"a = {spell}",
        "tv.store(o0, a, [start])",
    ]
    args = [x, output(r, "o0", dst, (n,), Check("exact"))]
    if third is not None:
        body.append(f"tv.store(o1, a.to(tv.{third}), [start])")
        args.append(output(r, "o1", third, (n,), Check("exact")))
    chain = f"{src} -> {dst}" + (f" -> {third}" if third else "")
    summary = f"cast {chain}, n={n} BLOCK={block} warps={warps}"
    params = [tensor_param(a) for a in args]
    source = render(name, params, {"BLOCK": block}, body, [summary])
    return Program("cast", name, source, (tv.cdiv(n, block),), warps, args, summary)


# ----- views ------------------------------------------------------------------------------------

NARROW = [tv.i3, tv.u5, tv.i4, tv.u4, tv.u2, tv.i1, tv.u7, tv.i6, tv.f6e3m2fn, tv.f6e2m3fn]
NARROW += [tv.f4e2m1fn, tv.f3e1m1, tv.u12]
WIDE = [tv.u16, tv.i16, tv.f16, tv.bf16, tv.i32, tv.f32, tv.u32]


def view(r: random.Random, g: np.random.Generator, name: str) -> Program:
    """Bytes viewed as narrower or wider elements and back, or floats viewed as integers.

    Layouts use ``P`` threads (``P`` at most the block's threads on every target) and replicate
    over the rest, so a program covers the same elements whatever the warp size."""
    warps = r.choice(WARPS)
    kind = r.choice(["narrow", "narrow", "narrow2d", "wide", "bitcast", "derived"])
    body: list[str] = []
    args: list[Arg] = []
    blocks = r.randint(1, 3)
    p = 2 ** r.randint(3, 5 + int(math.log2(warps)))
    rep = f"replicate(tv.num_threads() // {p}, {{rank}})"
    if kind in ("narrow", "wide"):
        wt = r.choice(NARROW if kind == "narrow" else WIDE)
        if kind == "narrow":  # bytes per thread: a whole number of elements
            unit = wt.bits // math.gcd(wt.bits, 8)
            nbytes = unit * r.randint(1, max(1, 8 // unit))
        else:
            nbytes = (wt.bits // 8) * r.randint(1, 3)
        per = nbytes * 8 // wt.bits
        total = blocks * p * nbytes - r.randint(0, nbytes * 2)  # a ragged last block
        raw = Arg("raw", tv.u8, (total,), codes=uniform_codes(g, tv.u8, total))
        count = total * 8 // wt.bits
        body += [
            f"byte_layout = {rep.format(rank=1)} * spatial({p}) * local({nbytes})",
            f"value_layout = {rep.format(rank=1)} * spatial({p}) * local({per})",
            f"b = tv.load(raw, [tv.block_id(0) * {p * nbytes}], [{p * nbytes}],"
            " layout=byte_layout)",
            f"q = tv.view(b, dtype=tv.{wt}, layout=value_layout)",
            f"tv.store(vals, q, [tv.block_id(0) * {p * per}])",
        ]
        args += [raw, output(r, "vals", wt, (count,), Check("exact"))]
        if wt.is_float:
            body.append("w = q.to(tv.f32) * 2.0 + 1.0")
            args.append(output(r, "wide", tv.f32, (count,), Check("exact")))
        else:
            body.append("w = q.to(tv.i32) * 3 - 1")
            args.append(output(r, "wide", tv.i32, (count,), Check("exact")))
        body.append(f"tv.store(wide, w, [tv.block_id(0) * {p * per}])")
        body.append("back = tv.view(q, dtype=tv.u8, layout=byte_layout)")
        body.append(f"tv.store(out, back ^ 90, [tv.block_id(0) * {p * nbytes}])")
        args.append(output(r, "out", tv.u8, (total,), Check("exact")))
        summary = f"view u8 -> {wt} -> u8, {nbytes} bytes x {p} threads, {total} bytes"
        grid = (tv.cdiv(total, p * nbytes),)
    elif kind == "narrow2d":  # as examples/quantized_matmul.py: rows of packed values
        wt = r.choice(NARROW)
        rows = 2 ** r.randint(1, int(math.log2(p)))
        lanes = p // rows
        unit = wt.bits // math.gcd(wt.bits, 8)
        per_lane = unit * r.randint(1, 2)
        nbytes = per_lane * lanes
        values_per_row = nbytes * 8 // wt.bits
        nrows = rows * blocks - r.randint(0, rows - 1)
        raw = Arg("raw", tv.u8, (nrows, nbytes), codes=uniform_codes(g, tv.u8, nrows * nbytes))
        body += [
            f"byte_layout = {rep.format(rank=2)} * spatial({rows}, {lanes}) * local(1, {per_lane})",
            f"value_layout = {rep.format(rank=2)} * spatial({rows}, {lanes})"
            f" * local(1, {per_lane * 8 // wt.bits})",
            f"m0 = tv.block_id(0) * {rows}",
            f"b = tv.load(raw, [m0, 0], [{rows}, {nbytes}], layout=byte_layout)",
            f"q = tv.view(b, dtype=tv.{wt}, layout=value_layout)",
            "tv.store(vals, q, [m0, 0])",
            "tv.store(sums, tv.sum(q.to(tv.f32), 1), [m0])",
        ]
        args += [
            raw,
            output(r, "vals", wt, (nrows, values_per_row), Check("exact")),
            output(r, "sums", tv.f32, (nrows,), Check("exact")),
        ]
        summary = f"2-D view u8 [{rows}, {nbytes}] -> {wt}, lanes={lanes}"
        grid = (tv.cdiv(nrows, rows),)
    elif kind == "bitcast":
        ft, it = r.choice([(tv.f32, tv.i32), (tv.f32, tv.u32), (tv.f16, tv.u16), (tv.bf16, tv.i16)])
        block = 2 ** r.randint(5, 9)
        n = ragged(r, block, 3)
        x = Arg("x", ft, (n,), codes=random_codes(g, ft, n, wild=0.3))
        sign = 1 << (it.bits - 1)
        flip = sign if it.is_integer and not it.is_signed else -sign
        body += [
            f"v = tv.load(x, [tv.block_id(0) * {block}], [{block}])",
            f"bits = tv.view(v, dtype=tv.{it})",
            f"flipped = tv.view(bits ^ {literal(flip)}, dtype=tv.{ft})",
            f"tv.store(o_bits, bits, [tv.block_id(0) * {block}])",
            f"tv.store(o_neg, flipped, [tv.block_id(0) * {block}])",
        ]
        args += [
            x,
            output(r, "o_bits", it, (n,), Check("exact")),
            output(r, "o_neg", ft, (n,), Check("exact")),
        ]
        summary = f"view {ft} <-> {it}, n={n} block={block}"
        grid = (tv.cdiv(n, block),)
    else:  # derived: the default layout of a byte tile, viewed without a layout
        wt = r.choice([tv.u4, tv.i4, tv.u2, tv.i2, tv.u1, tv.f4e2m1fn])
        block = 2 ** r.randint(5, 9)
        n = ragged(r, block, 3)
        per = 8 // wt.bits
        raw = Arg("raw", tv.u8, (n,), codes=uniform_codes(g, tv.u8, n))
        body += [
            f"b = tv.load(raw, [tv.block_id(0) * {block}], [{block}])",
            f"q = tv.view(b, dtype=tv.{wt})",
            f"tv.store(vals, q, [tv.block_id(0) * {block * per}])",
        ]
        args += [raw, output(r, "vals", wt, (n * per,), Check("exact"))]
        summary = f"view u8 [{block}] -> {wt} with the derived layout, n={n}"
        grid = (tv.cdiv(n, block),)
    summary += f", warps={warps}"
    params = [tensor_param(a) for a in args]
    source = render(name, params, {}, body, [summary])
    return Program("view", name, source, grid, warps, args, summary)


# ----- dots -------------------------------------------------------------------------------------

DOT_TYPES = [tv.f16, tv.f16, tv.bf16, tv.bf16, tv.f32, tv.i8]

FIT_LAYOUT = '''
def fit(shape, threads, across):
    """A layout of the 2-D ``shape`` over ``threads``: up to ``across`` threads along a row, the
    rest down the rows, each holding a block; replicated where the rows run out."""
    rows, cols = shape
    q = math.gcd(across, cols)
    p = math.gcd(threads // q, rows)
    layout = spatial(p, q) * local(rows // p, cols // q)
    return replicate(threads // (p * q), 2) * layout if threads > p * q else layout


def atom_for(dtype, warp_size):
    """The matrix atom of the target (by its warp size) for ``dtype``, or None."""
    if warp_size == 32:
        table = {tv.f16: atoms.MMA_M16N8K16_F16, tv.bf16: atoms.MMA_M16N8K16_BF16}
    else:
        table = {tv.f16: atoms.MFMA_F32_16X16X16_F16, tv.bf16: atoms.MFMA_F32_16X16X16_BF16}
    return table.get(dtype)
'''


def dot(r: random.Random, g: np.random.Generator, name: str) -> Program:
    pin = r.choice(["", "", "load", "annotate", "atom"])
    warps = r.choice(WARPS)
    wm = 2 if warps >= 2 else 1
    wn = warps // wm
    sizes = [16, 16, 32, 32, 64] + ([8, 24, 48] if r.random() < 0.3 else [])
    bm, bn, bk = r.choice(sizes), r.choice(sizes), r.choice(sizes)
    # A side of 24 or 48 gets a layout with the whole tile in every thread where no atom
    # divides it, which the register budget refuses past 4x a thread's registers (1020 words on
    # NVIDIA) on the backends, not on the interpreter: such tiles stay within it.
    while any(x % 3 == 0 for x in (bm, bn, bk)) and max(bm * bn, bm * bk, bk * bn) > 1020:
        bm, bn, bk = r.choice(sizes), r.choice(sizes), r.choice(sizes)
    if pin == "atom":  # 16x8 (mma.sync) or 16x16 (MFMA) atoms: whole atoms on every warp
        dt = r.choice([tv.f16, tv.bf16])
        bm = r.choice([s for s in (16, 32, 64) if s % (16 * wm) == 0])
        bn = r.choice([s for s in (16, 32, 64) if s % (16 * wn) == 0])
        bk = r.choice([16, 32, 64])
    else:
        dt = r.choice(DOT_TYPES)
    acc_dt = tv.i32 if dt.is_integer else tv.f32
    loop = r.random() < 0.6
    chunks = r.randint(2, 3) if loop else 1
    m, n = ragged(r, bm, 2), ragged(r, bn, 2)
    k = bk * (chunks - 1) + r.randint(1, bk) if loop else r.randint(1, bk)
    transposed = r.random() < 0.3
    acc_from = r.choice(["zeros", "input", "none"] if not loop else ["zeros", "input"])
    out_dt = r.choice([acc_dt, acc_dt, tv.f16, tv.bf16]) if acc_dt.is_float else acc_dt

    def operand(rows: int, cols: int) -> np.ndarray:
        if dt.is_integer:
            return codes_of(dt, g.integers(-128, 127, rows * cols, endpoint=True))
        return codes_of(dt, g.standard_normal(rows * cols))

    a = Arg("a", dt, (m, k), codes=operand(m, k), layout=r.choice(["dense", "dense", "rows"]))
    b_shape = (n, k) if transposed else (k, n)
    b = Arg("b", dt, b_shape, codes=operand(*b_shape), layout=r.choice(["dense", "rows"]))
    args = [a, b]
    body = ["m0 = tv.block_id(0) * BM", "n0 = tv.block_id(1) * BN"]
    threads = "tv.num_threads()"
    layouts = {"a": "", "b": ""}
    if pin == "load" and not transposed:
        layouts = {
            "a": f", layout=fit([BM, BK], {threads}, {2 ** r.randint(0, 3)})",
            "b": f", layout=fit([BK, BN], {threads}, {2 ** r.randint(0, 5)})",
        }
    c_values = np.zeros((m, n))
    if acc_from == "input":
        c_random = g.integers(-1000, 1000, m * n) if dt.is_integer else g.standard_normal(m * n)
        c = Arg("c", acc_dt, (m, n), codes=codes_of(acc_dt, c_random))
        c_values = values_of(acc_dt, c.codes).reshape(m, n)
        args.append(c)
        body.append("acc = tv.load(c, [m0, n0], [BM, BN])")
    elif acc_from == "zeros":
        body.append(f"acc = tv.zeros([BM, BN], tv.{acc_dt})")
    if pin == "atom":
        body += [
            "atom = atom_for(a.dtype, tv.warp_size())",
            "wm = 2 if tv.num_threads() // tv.warp_size() >= 2 else 1",
            "wn = tv.num_threads() // tv.warp_size() // wm",
            "acc_layout = spatial(wm, wn) * local(BM // (wm * atom.m), BN // (wn * atom.n))"
            " * atom.c",
        ]
        if acc_from != "none":
            body.append("acc = tv.annotate(acc, acc_layout)")
    indent = ""
    if loop:
        body.append("for kk in range(tv.cdiv(a.shape[1], BK)):")
        indent = "    "
        k0 = "kk * BK"
    else:
        k0 = "0"
    body.append(f"{indent}x = tv.load(a, [m0, {k0}], [BM, BK]{layouts['a']})")
    if transposed:
        body.append(f"{indent}y = tv.transpose(tv.load(b, [n0, {k0}], [BN, BK]))")
    else:
        body.append(f"{indent}y = tv.load(b, [{k0}, n0], [BK, BN]{layouts['b']})")
    if pin == "annotate":
        body.append(f"{indent}x = tv.annotate(x, fit([BM, BK], {threads}, {2 ** r.randint(0, 3)}))")
        body.append(f"{indent}y = tv.annotate(y, fit([BK, BN], {threads}, {2 ** r.randint(0, 5)}))")
    if acc_from == "none":
        body.append("acc = tv.dot(x, y)")
        if pin == "atom":
            body.append("acc = tv.annotate(acc, acc_layout)")
    else:
        body.append(f"{indent}acc = tv.dot(x, y, acc)")
    result = "acc" if out_dt == acc_dt else f"acc.to(tv.{out_dt})"
    body.append(f"tv.store(out, {result}, [m0, n0])")

    av = values_of(dt, a.codes).reshape(m, k)
    bv = values_of(dt, b.codes).reshape(b_shape)
    bv = bv.T if transposed else bv
    exact = av @ bv + c_values
    magnitude = np.abs(av) @ np.abs(bv) + np.abs(c_values)
    if dt.is_integer:
        reference = _wrap(acc_dt, exact)
        check = Check("exact", reference=reference)
    else:
        reference = values_of(out_dt, codes_of(out_dt, exact))
        tol = (2 * k + 4 * chunks) * F32_ULP * magnitude + 2 * out_dt.eps * np.abs(exact)
        check = Check("reference", reference=reference, tol=tol + tiny(out_dt))
    args.append(output(r, "out", out_dt, (m, n), check))
    summary = (
        f"dot {dt}->{acc_dt} stored as {out_dt}: M={m} N={n} K={k}, tile [{bm}, {bn}, {bk}], "
        f"{'K loop, ' if loop else ''}acc={acc_from}, b{'.T' if transposed else ''}, "
        f"layouts={pin or 'default'}, warps={warps}"
    )
    source = render(
        name, [tensor_param(x) for x in args], {"BM": bm, "BN": bn, "BK": bk}, body, [summary]
    )
    head, _, kernel = source.partition("@tv.kernel")
    source = head.rstrip("\n") + "\n" + FIT_LAYOUT + "\n\n@tv.kernel" + kernel
    grid = (tv.cdiv(m, bm), tv.cdiv(n, bn))
    return Program("dot", name, source, grid, warps, args, summary)


# ----- running ----------------------------------------------------------------------------------


def array(dt: DataType, codes: np.ndarray, shape: tuple[int, ...]):
    """A kernel argument holding ``codes``: a numpy / ml_dtypes array, or a packed array."""
    twin = native(dt)
    codes = np.asarray(codes).reshape(-1)
    if twin is not None:
        return codes.astype(dt.storage).view(twin).reshape(shape)
    return tv.PackedArray(tv.pack(codes, dt, bits=True), dt, tuple(shape))


def read(value, dt: DataType) -> np.ndarray:
    """The bit patterns of an argument, as uint64."""
    if isinstance(value, tv.PackedArray):
        return value.codes().astype(np.uint64)
    return np.asarray(value).view(dt.storage).astype(np.uint64)


@dataclass
class Bound:
    """One argument as passed (``value``), the buffer around it and the window it occupies."""

    arg: Arg
    value: object
    buffer: object
    window: tuple[slice, ...]

    def codes(self) -> np.ndarray:
        return read(self.buffer, self.arg.dtype)[self.window]


def bind(arg: Arg) -> Bound:
    """Fresh memory for one argument: inputs hold their codes (maybe inside a wider poisoned
    buffer), outputs are poisoned (maybe windows of a larger buffer)."""
    full = tuple(slice(0, n) for n in arg.shape)
    if not arg.is_output:
        if arg.layout == "dense":
            value = array(arg.dtype, arg.codes.copy(), arg.shape)
            return Bound(arg, value, value, full)
        rows, cols = arg.shape
        wide = (rows, cols + 3) if arg.layout == "rows" else (rows, 2 * cols)
        buffer = array(arg.dtype, np.full(rows * wide[1], poison_code(arg.dtype)), wide)
        window = (slice(0, rows), slice(0, cols) if arg.layout == "rows" else slice(0, None, 2))
        value = buffer[window]
        value.view(arg.dtype.storage)[...] = arg.codes.reshape(arg.shape).astype(arg.dtype.storage)
        return Bound(arg, value, buffer, window)
    poison = poison_code(arg.dtype)
    if arg.pad is None:
        value = array(arg.dtype, np.full(int(np.prod(arg.shape)), poison), arg.shape)
        return Bound(arg, value, value, full)
    wide = tuple(before + n + after for n, (before, after) in zip(arg.shape, arg.pad))
    buffer = array(arg.dtype, np.full(int(np.prod(wide)), poison), wide)
    window = tuple(slice(before, before + n) for n, (before, _) in zip(arg.shape, arg.pad))
    return Bound(arg, buffer[window], buffer, window)


_kernels: dict[tuple[str, str], object] = {}


def load_kernel(path: str, name: str):
    """The kernel ``name`` of the module at ``path`` (imported once per process)."""
    if (path, name) not in _kernels:
        spec = importlib.util.spec_from_file_location(f"differential_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _kernels[path, name] = getattr(module, name)
    return _kernels[path, name]


def execute(program: Program, path: str, device: str) -> dict[str, np.ndarray]:
    """Launch ``program`` (its source at ``path``) on ``device``; the outputs' bit patterns by
    name. Checks that inputs come back untouched, and the poisoned margins around outputs (and
    the spare bits after a packed output's last element) too."""
    kernel = load_kernel(path, program.name)
    bound = [bind(a) for a in program.args]
    spare = {id(b): b.value.data.copy() for b in bound if isinstance(b.value, tv.PackedArray)}
    kernel[program.grid](*[b.value for b in bound], warps=program.warps, device=device)
    outputs = {}
    for b in bound:
        name, dt = b.arg.name, b.arg.dtype
        codes = b.codes()
        margin = np.ones(b.arg.shape if b.buffer is b.value else np.shape(b.buffer), bool)
        margin[b.window] = False
        stray = np.flatnonzero(read(b.buffer, dt)[margin] != poison_code(dt))
        assert stray.size == 0, f"{device} wrote {stray.size} elements around '{name}'"
        if id(b) in spare and (int(np.prod(b.arg.shape)) * dt.bits) % 8:
            used = int(np.prod(b.arg.shape)) * dt.bits
            before, after = spare[id(b)][used // 8 :], b.value.data[used // 8 :]
            keep = np.full(before.shape, 0xFF, np.uint8)
            keep[0] = (0xFF << (used % 8)) & 0xFF  # the bits after the last element
            assert np.array_equal(before & keep, after & keep), f"{device} wrote past '{name}'"
        if b.arg.is_output:
            outputs[name] = codes
        else:
            changed = np.flatnonzero(codes.reshape(-1) != b.arg.codes.astype(np.uint64))
            assert changed.size == 0, f"{device} changed input '{name}' at {changed[:8]}"
    return outputs


GENERATORS = {
    "elementwise": elementwise,
    "reduction": reduction,
    "cast": cast,
    "view": view,
    "dot": dot,
}


def generate(family: str, index: int, seed: int) -> Program:
    """The program ``index`` of ``family`` for ``seed``: the same text and inputs every time."""
    r = random.Random(f"tilevm-differential/{seed}/{family}/{index}")
    g = np.random.default_rng(r.getrandbits(64))
    return GENERATORS[family](r, g, f"{family}_{index}")
