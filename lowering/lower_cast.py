"""Lowering of casts of packed fields to f16, bf16 and f32, with magic numbers.

``q.to(tv.f16)`` of a tile that a ``view`` cut out of machine words (each thread's bits split
into ``b``-bit fields) needs no shift, int-to-float conversion and multiply per element. The
field's bits are moved as they are into the mantissa of a float whose exponent makes the field's
lowest bit weigh 1, and one subtraction removes the float's leading one::

    f16 bits    0 | exponent 25 - a | mantissa: the field at bits [a, a + b)
    value       2**(10 - a) + q           minus 2**(10 - a)  ->  q, exactly

Two fields at bits ``a`` and ``16 + a'`` of one 32-bit word give two halves at once: one and/or
(``LOP3`` on NVIDIA) and one packed subtraction (``HADD2``). The lowering pairs the output slots
``2i, 2i + 1`` that users read as one 32-bit register, finds each field's bits in the thread's
bit string through the view, and reads them through 32-bit *windows* of that string (a funnel
shift of two words, shared by every value it serves); values that fit no common window take one
each. Signed fields flip their sign bit first (``q + 2**(b-1)`` is unsigned, and that much more
is subtracted). Small floats move their exponent/mantissa bits and their sign bit into place and
multiply by ``2**(bias_to - bias_from)``; codes whose placed value is not theirs (infinities,
NaNs) are recognised by their placed bits and patched. Every scheme is checked against the
type's exact decoding over all its codes before it is used. Casts no scheme does exactly in 16
bits (8-bit integers to bf16: its 7-bit mantissa cannot hold them) go through f32 values, one
per element; anything else takes the ordinary elementwise cast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from tilevm import dtypes as dts
from tilevm.dtypes import DataType
from tilevm.ir.nodes import Instr, Var
from tilevm.ir.types import TileType
from tilevm.lowering import thread_ir as t
from tilevm.lowering.exprs import const, slot_table
from tilevm.lowering.lower import Lowerer

U32 = dts.u32


@dataclass(frozen=True)
class Format:
    """A float format fields are placed into."""

    name: str
    width: int  # 16 or 32
    exponent: int
    mantissa: int
    bias: int


F16 = Format("f16", 16, 5, 10, 15)
BF16 = Format("bf16", 16, 8, 7, 127)
F32 = Format("f32", 32, 8, 23, 127)
_FORMATS = {"f16": F16, "bf16": BF16, "f32": F32}


@dataclass(frozen=True)
class Piece:
    """Field bits ``mask`` land with their lowest bit at offset ``lo``..``hi`` of the value."""

    mask: int
    lo: int
    hi: int

    @property
    def lsb(self) -> int:
        return (self.mask & -self.mask).bit_length() - 1


@dataclass(frozen=True)
class Scheme:
    """How a field becomes a value of a format: its pieces placed (integers: anywhere in the
    mantissa, the exponent following them; floats: sign and exponent/mantissa at fixed spots),
    then one add or multiply, then patches ``(mask, pattern, bits or-ed in)`` on placed bits."""

    integer: bool
    pieces: tuple[Piece, ...]
    flip: int  # xor-ed into the field first (a signed field's sign bit)
    fixes: tuple[tuple[int, int, int], ...]

    def magic(self, fmt: Format, offset: int) -> int:
        """The exponent bits that make bit ``offset`` weigh 1 (integers; 0 for floats)."""
        return (fmt.bias + fmt.mantissa - offset) << fmt.mantissa if self.integer else 0

    def constant(self, fmt: Format, field: DataType, offset: int) -> float:
        if self.integer:
            return -float(2 ** (fmt.mantissa - offset) + self.flip)
        return 2.0 ** (fmt.bias - field.bias)


@dataclass(frozen=True)
class Value:
    """One output value: its field at thread bit ``at``, placed in the word's half ``half``."""

    at: int
    half: int

    def interval(self, piece: Piece) -> tuple[int, int]:
        """Where a window may start so the piece lands between its offsets."""
        base = self.at + piece.lsb - self.half
        return base - piece.hi, base - piece.lo


def lower_packed_cast(lw: Lowerer, ins: Instr) -> bool:
    """Lower ``ins`` (a cast) from the words under its operand's view; False if it cannot."""
    src, out = ins.args[0], ins.out
    packed, mark = lw.views.get(src, (None, None)) if isinstance(src, Var) else (None, None)
    if packed is None or not isinstance(out.type, TileType):
        return False
    if packed in lw.carried and not lw.unchanged_since(packed, mark):
        return False  # the words under the view may have been given new values since
    field, dst = src.type.dtype, out.type.dtype
    fmt = _FORMATS.get(dst.name)
    if fmt is None or packed.type.dtype.bits not in (8, 16, 32):
        return False
    # floats to bf16 go through f32: placed bf16 subnormals would meet bf16 arithmetic
    paired = fmt.width == 16 and (fmt is F16 or field.is_integer) and scheme(field, fmt) is not None
    if not paired and scheme(field, F32) is None:
        return False
    fields = [int(j) * field.bits for j in slot_table(out.type.layout, src.type.layout)]
    name = lw.declare_tile(out)
    words = Words(lw, packed)
    count = len(fields) - len(fields) % 2 if paired else 0
    if count:
        _pairs(lw, words, name, dst, field, fmt, fields[:count])
    if count < len(fields):
        _singles(lw, words, name, dst, field, fields[count:], first=count)
    return True


def _pairs(lw: Lowerer, words: Words, name: str, dst: DataType, field, fmt, fields) -> None:
    plan = scheme(field, fmt)
    values = [Value(at, 16 * (i % 2)) for i, at in enumerate(fields)]
    windows = choose_windows(values, plan)
    op = f"{'half' if fmt is F16 else 'bfloat'}2_{'add' if plan.integer else 'mul'}"
    for i in range(0, len(values), 2):
        pair = values[i : i + 2]
        bits, constant = _placed(words, windows, pair, plan, field, fmt)
        value = t.Call(op, (bits, t.Const(constant, U32)), U32)
        value = _patched(value, bits, plan, pair, lanes=True)
        lw.emit(t.Effect(t.Call("store_u32", (t.Ref(name, const(i), dst), value), U32)))


def _singles(lw: Lowerer, words: Words, name, dst, field, fields, first: int) -> None:
    """Each value through f32 (exact), then rounded to the destination (exact as well)."""
    plan = scheme(field, F32)
    values = [Value(at, 0) for at in fields]
    windows = choose_windows(values, plan)
    for i, v in enumerate(values):
        bits, constant = _placed(words, windows, [v], plan, field, F32)
        number = t.FromBits(_patched(bits, bits, plan, [v], lanes=False), dts.f32)
        scale = _f32(constant)
        number = t.Bin("add" if plan.integer else "mul", number, t.Const(scale, dts.f32), dts.f32)
        lw.emit(t.Set(t.Elem(name, const(first + i), dst), t.Encode(number, dst)))


def _placed(words, windows, values, plan: Scheme, field, fmt) -> tuple[t.Expr, int | float]:
    """The word holding ``values`` placed by ``plan`` (magic or-ed in), and the constant of the
    following add/multiply (a packed pair of 16-bit constants, or one float)."""
    masks: dict[int, list[int]] = {}  # window start -> [mask, flip]: one and/xor per window
    magic, constants = 0, []
    for v in values:
        offset = 0
        for piece in plan.pieces:
            start = windows[(v, piece)]
            land = v.at + piece.lsb - start  # where the piece's lowest bit is in the window
            offset = land - v.half
            both = masks.setdefault(start, [0, 0])
            both[0] |= piece.mask >> piece.lsb << land
            both[1] |= (plan.flip & piece.mask) >> piece.lsb << land
        magic |= plan.magic(fmt, offset) << v.half
        constants.append(plan.constant(fmt, field, offset))
    expr: t.Expr | None = None
    for start, (mask, flip) in masks.items():
        window = words.window(start)
        if flip:
            window = t.Bin("xor", window, t.Const(flip, U32), U32)
        part = t.Bin("and", window, t.Const(mask & 0xFFFFFFFF, U32), U32)
        expr = part if expr is None else t.Bin("or", expr, part, U32)
    assert expr is not None
    if magic:
        expr = t.Bin("or", expr, t.Const(magic, U32), U32)
    if len(values) == 1 and fmt is F32:
        return expr, constants[0]
    packed = sum(_bits16(fmt, c) << (16 * i) for i, c in enumerate(constants))
    return expr, packed


def _patched(value: t.Expr, bits: t.Expr, plan: Scheme, values, lanes: bool) -> t.Expr:
    """Patch the codes whose placed value is not theirs, recognised by their placed bits."""
    for mask, pattern, fix in plan.fixes:
        m = p = f = 0
        for v in values:
            m, p, f = m | mask << v.half, p | pattern << v.half, f | fix << v.half
        hit = t.Bin("and", bits, t.Const(m, U32), U32)
        carry = _all_ones_carry(mask, pattern)
        if lanes and carry is not None:
            value = t.Bin("or", value, _carried_fix(hit, carry, mask, fix, values), U32)
        elif lanes:
            same = t.Call("lanes16_eq", (hit, t.Const(p, U32)), U32)
            value = t.Bin("or", value, t.Bin("and", same, t.Const(f, U32), U32), U32)
        else:
            same = t.Bin("eq", hit, t.Const(p, U32), dts.u1)
            value = t.Select(same, t.Bin("or", value, t.Const(f, U32), U32), value, U32)
    return value


def _all_ones_carry(mask: int, pattern: int) -> int | None:
    """Where adding the lowest bit of ``mask`` carries to when the masked bits are all ones,
    if the patch tests exactly that (a contiguous run, pattern == mask) and the carry stays
    inside a 16-bit lane; else None."""
    low = mask & -mask
    run = mask + low  # a contiguous run adds up to a single bit
    if pattern != mask or run & (run - 1) or run > 0x8000:
        return None
    return run.bit_length() - 1


def _carried_fix(hit: t.Expr, carry: int, mask: int, fix: int, values) -> t.Expr:
    """The fix bits in each 16-bit lane whose masked bits are all ones: ``hit + low`` carries
    into bit ``carry`` exactly there (no carry leaves a lane), then one shift moves that bit
    onto a single fix bit at or below it, or a multiply spreads it over several (an integer
    add, shift and and/or instead of a per-lane compare)."""
    low = t.Const(sum((mask & -mask) << v.half for v in values), U32)
    carried = t.Bin("add", hit, low, U32)
    if fix & (fix - 1) == 0 and fix.bit_length() - 1 <= carry:
        shift = carry - (fix.bit_length() - 1)
        moved = t.Bin("shr", carried, const(shift), U32) if shift else carried
        return t.Bin("and", moved, t.Const(sum(fix << v.half for v in values), U32), U32)
    ones = t.Bin("and", t.Bin("shr", carried, const(carry), U32),
                 t.Const(sum(1 << v.half for v in values), U32), U32)  # fmt: skip
    return t.Bin("mul", ones, t.Const(fix, U32), U32)


def choose_windows(values: Sequence[Value], plan: Scheme) -> dict[tuple[Value, Piece], int]:
    """A window start for every placed piece: a whole word where one fits (no shift); then as
    few shifted windows as cover the rest (stabbing intervals at their right ends); the two
    values of a pair share a window when one window serves both."""
    intervals: dict[tuple[Value, Piece], tuple[int, int]] = {}
    for v in values:
        for piece in plan.pieces:
            intervals[(v, piece)] = v.interval(piece)
    chosen: dict[tuple[Value, Piece], int] = {}
    for key, (lo, hi) in intervals.items():
        aligned = -(-lo // 32) * 32
        if aligned <= hi:
            chosen[key] = aligned
    rest = sorted((hi, lo, i) for i, (key, (lo, hi)) in enumerate(intervals.items())
                  if key not in chosen)  # fmt: skip
    keys = list(intervals)
    point = None
    for hi, lo, i in rest:
        if point is None or not lo <= point <= hi:
            point = hi
        chosen[keys[i]] = point
    return chosen


class Words:
    """A thread's bits as 32-bit words, and 32-bit windows at any bit position; each declared
    once, so values that share one read the same register."""

    def __init__(self, lw: Lowerer, source: Var) -> None:
        self.lw, self.source = lw, source
        self.slot_bits = source.type.dtype.bits
        self.total = source.type.layout.local_size * self.slot_bits
        self.cache: dict[int, t.Expr] = {}

    def word(self, i: int) -> t.Expr:
        if i < 0 or 32 * i >= self.total:
            return t.Const(0, U32)
        return self.window(32 * i)

    def window(self, start: int) -> t.Expr:
        """Bits ``[start, start + 32)`` of the thread's bit string (zeros outside it)."""
        if start not in self.cache:
            index, shift = divmod(start, 32)
            value = self._gather(index) if shift == 0 else self._funnel(index, shift)
            tag = f"m{-start}" if start < 0 else str(start)
            name = self.lw.names.fresh(f"{self.lw.name(self.source)}_bits{tag}")
            self.lw.emit(t.Declare(name, U32, None, value))
            self.cache[start] = t.Sym(name, U32)
        return self.cache[start]

    def _gather(self, index: int) -> t.Expr:
        dtype, per = self.source.type.dtype, 32 // self.slot_bits
        value: t.Expr | None = None
        for k in range(per):
            slot = index * per + k
            if slot * self.slot_bits >= self.total:
                break
            bits = t.ToBits(t.Elem(self.lw.name(self.source), const(slot), dtype), U32)
            part = t.Bin("shl", bits, const(k * self.slot_bits), U32) if k else bits
            value = part if value is None else t.Bin("or", value, part, U32)
        assert value is not None
        return value

    def _funnel(self, index: int, shift: int) -> t.Expr:
        lo, hi = self.word(index), self.word(index + 1)
        parts = [t.Bin("shr", lo, const(shift), U32)] if not _zero(lo) else []
        if not _zero(hi):
            parts.append(t.Bin("shl", hi, const(32 - shift), U32))
        if not parts:
            return t.Const(0, U32)
        return parts[0] if len(parts) == 1 else t.Bin("or", parts[0], parts[1], U32)


def _zero(e: t.Expr) -> bool:
    return isinstance(e, t.Const) and e.value == 0


# ----- schemes, and the exactness check -------------------------------------------------------


@lru_cache(maxsize=256)
def scheme(field: DataType, fmt: Format) -> Scheme | None:
    """How ``field`` becomes ``fmt`` exactly for every code, or None when no scheme does."""
    plan = _int_scheme(field, fmt) if field.is_integer else _float_scheme(field, fmt)
    if plan is None or not _exact(field, fmt, plan):
        return None
    return _fewest_fix_bits(field, fmt, plan)


def _fewest_fix_bits(field: DataType, fmt: Format, plan: Scheme) -> Scheme:
    """``plan`` with each patch or-ing in only the bits its codes' values lack (e4m3fn's NaN
    code becomes 480 in f16: one exponent bit more makes it a NaN), when that stays exact:
    a single bit can be moved into place with a shift instead of spread with a multiply.
    Only for the 16-bit formats, whose pairs are patched after their packed multiply; a value
    through f32 is patched before its multiply, which only a whole exponent survives."""
    if plan.integer or not plan.fixes or fmt.width != 16:
        return plan
    with np.errstate(invalid="ignore", over="ignore"):
        placed, value = _placed_values(field, fmt, plan, plan.pieces[0].lo)
    bits = _bits(value, fmt)
    fixes = []
    for mask, pattern, fix in plan.fixes:
        hit = (placed & mask) == pattern
        common = np.bitwise_and.reduce(bits[hit]) if hit.any() else 0
        fixes.append((mask, pattern, fix & ~int(common) or fix))
    fewer = Scheme(plan.integer, plan.pieces, plan.flip, tuple(fixes))
    return fewer if _exact(field, fmt, fewer) else plan


def _int_scheme(field: DataType, fmt: Format) -> Scheme | None:
    b = field.bits
    if b > fmt.mantissa:
        return None
    flip = 1 << (b - 1) if field.kind == "int" else 0
    return Scheme(True, (Piece((1 << b) - 1, 0, fmt.mantissa - b),), flip, ())


def _float_scheme(field: DataType, fmt: Format) -> Scheme | None:
    if field.is_wide_float or not field.is_signed:
        return None
    e, m, b = field.exponent, field.mantissa, field.bits
    identical = (e, field.bias, field.variant) == (fmt.exponent, fmt.bias, "")
    if m > fmt.mantissa or not (e < fmt.exponent or identical):
        return None
    em_at = fmt.mantissa - m  # the field's mantissa tops the format's, its exponent the low end
    pieces = (Piece((1 << (e + m)) - 1, em_at, em_at), Piece(1 << (b - 1), fmt.width - 1,
                                                              fmt.width - 1))  # fmt: skip
    return Scheme(False, pieces, 0, _fixes(field, fmt, em_at))


def _fixes(field: DataType, fmt: Format, em_at: int) -> tuple[tuple[int, int, int], ...]:
    """Patches on the placed bits: an all-ones exponent (the infinities and NaNs of IEEE-style
    types), an all-ones magnitude (the NaN of fn types), the negative-zero pattern (the NaN of
    fnuz types). The patch sets the format's exponent to all ones (and a mantissa bit)."""
    e, m = field.exponent, field.mantissa
    exp_ones = ((1 << fmt.exponent) - 1) << fmt.mantissa
    if field.variant == "" and (e, field.bias) != (fmt.exponent, fmt.bias):
        ones = ((1 << e) - 1) << (em_at + m)
        return ((ones, ones, exp_ones),)
    if field.variant == "fn" and field.has_nan:
        ones = ((1 << (e + m)) - 1) << em_at
        return ((ones, ones, exp_ones),)
    if field.variant == "fnuz":
        sign = 1 << (fmt.width - 1)
        every = ((1 << (e + m)) - 1) << em_at | sign
        return ((every, sign, exp_ones | 1 << (fmt.mantissa - 1)),)
    return ()


def _exact(field: DataType, fmt: Format, plan: Scheme) -> bool:
    """Simulate the scheme on every code, at every offset a piece may take, against the type's
    own decoding (values and signs; NaN for NaN)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return _simulate(field, fmt, plan)


def _simulate(field: DataType, fmt: Format, plan: Scheme) -> bool:
    codes = np.arange(1 << field.bits, dtype=np.int64)
    exact = field.decode(codes.astype(field.storage)).astype(np.float64)
    first = plan.pieces[0]
    for offset in range(first.lo, first.hi + 1):
        placed, value = _placed_values(field, fmt, plan, offset)
        for mask, pattern, fix in plan.fixes:
            hit = (placed & mask) == pattern
            value = np.where(hit, _as_float(_bits(value, fmt) | fix, fmt), value)
        same = np.isnan(exact) & np.isnan(value) | (value == exact)
        signs = np.isnan(exact) | (np.signbit(value) == np.signbit(exact))
        if not (same & signs).all():
            return False
    return True


def _placed_values(field: DataType, fmt: Format, plan: Scheme, offset: int):
    """Every code's placed bits (pieces at ``offset``, magic or-ed in) and the value the add or
    multiply makes of them, before any patch."""
    codes = np.arange(1 << field.bits, dtype=np.int64)
    placed = np.zeros_like(codes)
    for piece in plan.pieces:
        land = offset if plan.integer else piece.lo
        placed |= (((codes ^ plan.flip) & piece.mask) >> piece.lsb) << land
    placed |= plan.magic(fmt, offset)
    value = _as_float(placed, fmt)
    constant = plan.constant(fmt, field, offset)
    return placed, _round(value + constant if plan.integer else value * constant, fmt)


def _as_float(bits: np.ndarray, fmt: Format) -> np.ndarray:
    bits = np.asarray(bits) & ((1 << fmt.width) - 1)
    if fmt is F16:
        return bits.astype(np.uint16).view(np.float16).astype(np.float64)
    if fmt is BF16:
        return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


def _bits(value: np.ndarray, fmt: Format) -> np.ndarray:
    value = np.asarray(value, dtype=np.float64)
    if fmt is F16:
        return value.astype(np.float16).view(np.uint16).astype(np.int64)
    if fmt is BF16:  # values here are exact bfloat16s: truncating the float32 is exact
        return (value.astype(np.float32).view(np.uint32) >> 16).astype(np.int64)
    return value.astype(np.float32).view(np.uint32).astype(np.int64)


def _round(value: np.ndarray, fmt: Format) -> np.ndarray:
    """Round to the format (values here are exact in it, or the scheme is rejected)."""
    if fmt is BF16:
        import ml_dtypes

        return np.asarray(value).astype(ml_dtypes.bfloat16).astype(np.float64)
    return _as_float(_bits(value, fmt), fmt)


def _bits16(fmt: Format, value: float) -> int:
    if fmt is BF16:
        import ml_dtypes

        return int(np.array([value]).astype(ml_dtypes.bfloat16).view(np.uint16)[0])
    return int(_bits(np.array([value]), fmt)[0])


def _f32(value: float) -> float:
    return float(np.float32(value))
