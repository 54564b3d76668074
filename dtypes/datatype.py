"""``DataType``: integers of any width 1..64 and floats of any exponent/mantissa split.

Every number a type answers (range, epsilon, special encodings) is derived from its widths and its
convention; nothing is typed in by hand.

Float conventions follow ml_dtypes (and the OCP 8-bit / MX specifications behind them)::

    suffix  sign  infinities  NaN encodings                      default bias
    (none)  yes   exp=1..1,   exp=1..1, mantissa != 0             2**(e-1) - 1   IEEE 754 style
                  mantissa=0
    fn      yes   none        all-ones magnitude (S.1..1.1..1)    2**(e-1) - 1
                              when the type has >= 8 bits; the
                              MX formats below 8 bits have none
    fnuz    yes   none        only the negative-zero pattern      2**(e-1)
    fnu     no    none        the all-ones pattern                2**(e-1) - 1

A non-default bias is written in the name: ``f8e4m3b11fnuz`` has bias 11. An ``fnu`` type without
mantissa bits (``f8e8m0fnu``, the MX scale type) has no zero: every exponent field is normal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tilevm.dtypes import convert
from tilevm.dtypes.errors import DtypeError

FLOAT_VARIANTS = ("", "fn", "fnuz", "fnu")
# Floats up to this many bits use the generic encoder; f32 and f64 are the two wider types.
MAX_SMALL_FLOAT_BITS = 16

_FLOAT_NAME = re.compile(r"f(\d+)e(\d+)m(\d+)(?:b(-?\d+))?(fnuz|fnu|fn)?")
_INT_NAME = re.compile(r"([iu])(\d+)")


@dataclass(frozen=True)
class DataType:
    """A scalar data type. Build one with ``dtype(name)``, ``int_type`` or ``float_type``."""

    kind: str  # "int", "uint" or "float"
    bits: int
    exponent: int = 0
    mantissa: int = 0
    bias: int = 0
    variant: str = ""  # float convention: "", "fn", "fnuz", "fnu"

    # ----- identity -------------------------------------------------------------------------
    @cached_property
    def name(self) -> str:
        if self.kind == "int":
            return f"i{self.bits}"
        if self.kind == "uint":
            return f"u{self.bits}"
        ieee = self.variant == "" and self.bias == _default_bias(self.exponent, "")
        if ieee and (self.exponent, self.mantissa) == (5, 10):
            return "f16"
        if ieee and (self.exponent, self.mantissa) == (8, 7):
            return "bf16"
        if ieee and (self.exponent, self.mantissa) == (8, 23):
            return "f32"
        if ieee and (self.exponent, self.mantissa) == (11, 52):
            return "f64"
        bias = "" if self.bias == _default_bias(self.exponent, self.variant) else f"b{self.bias}"
        return f"f{self.bits}e{self.exponent}m{self.mantissa}{bias}{self.variant}"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"dtype({self.name!r})"

    # ----- classification -------------------------------------------------------------------
    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def is_integer(self) -> bool:
        return self.kind != "float"

    @property
    def is_signed(self) -> bool:
        if self.kind == "float":
            return self.variant != "fnu"
        return self.kind == "int"

    @property
    def is_wide_float(self) -> bool:
        """f32 and f64: encoded by numpy itself rather than by the generic small-float code."""
        return self.kind == "float" and self.bits > MAX_SMALL_FLOAT_BITS

    # ----- storage --------------------------------------------------------------------------
    @property
    def storage(self) -> np.dtype:
        """The unsigned numpy type that holds one bit pattern of this type."""
        return np.dtype(f"uint{_container_bits(self.bits)}")

    @property
    def value_dtype(self) -> np.dtype:
        """The numpy type ``decode`` returns: exact for every value of this type."""
        if self.kind == "uint":
            return np.dtype("uint64") if self.bits == 64 else np.dtype("int64")
        if self.kind == "int":
            return np.dtype("int64")
        return np.dtype("float32") if _fits(self, 8, 23) else np.dtype("float64")

    # ----- host conversions (see tilevm.dtypes.convert for rounding and overflow) ----------------
    def encode(self, values: object, overflow: str = "default") -> np.ndarray:
        """Values -> bit patterns (``self.storage``), rounding to nearest even."""
        return convert.encode(self, values, overflow)

    def decode(self, bits: object) -> np.ndarray:
        """Bit patterns -> exact values (``self.value_dtype``)."""
        return convert.decode(self, bits)

    def round(self, values: object, overflow: str = "default") -> np.ndarray:
        """Values rounded to this type, as values (``decode(encode(values))``)."""
        return self.decode(self.encode(values, overflow))

    def nbytes(self, count: int) -> int:
        """Bytes that ``count`` bit-packed elements occupy."""
        return (count * self.bits + 7) // 8

    # ----- float structure ------------------------------------------------------------------
    @property
    def has_inf(self) -> bool:
        return self.kind == "float" and self.variant == ""

    @property
    def has_subnormals(self) -> bool:
        """False only for ``fnu`` types without mantissa (every exponent field is normal)."""
        return self.kind == "float" and not (self.variant == "fnu" and self.mantissa == 0)

    @property
    def rounds_ties_away(self) -> bool:
        """Rounding ties go away from zero (not to even): exponent-only scale types such as
        ``f8e8m0fnu``, as ml_dtypes rounds them."""
        return self.kind == "float" and self.variant == "fnu" and self.mantissa == 0

    @property
    def has_zero(self) -> bool:
        return self.kind != "float" or self.has_subnormals

    @property
    def has_negative_zero(self) -> bool:
        return self.kind == "float" and self.variant in ("", "fn")

    @cached_property
    def nan_codes(self) -> tuple[int, ...]:
        """Every bit pattern that decodes to NaN (for IEEE-like types, 2 * (2**mantissa - 1) of
        them: ask ``has_nan`` or ``nan_code`` rather than this for f32 and f64)."""
        if self.kind != "float":
            return ()
        sign = 1 << (self.bits - 1)
        exp_ones = ((1 << self.exponent) - 1) << self.mantissa
        all_ones = (1 << (self.exponent + self.mantissa)) - 1
        if self.variant == "":
            mags = range(exp_ones + 1, all_ones + 1)
            return tuple(sorted([*mags, *(m | sign for m in mags)]))
        if self.variant == "fn":
            return (all_ones, all_ones | sign) if self.bits >= 8 else ()
        if self.variant == "fnuz":
            return (sign,)
        return (all_ones,)  # fnu

    @property
    def has_nan(self) -> bool:
        # decided from the format, not by listing the patterns (f64 has 2**53 of them)
        if self.kind != "float":
            return False
        if self.variant == "":
            return self.mantissa > 0  # exponent all ones with a non-zero mantissa
        if self.variant == "fn":
            return self.bits >= 8
        return True  # fnuz: the negative zero pattern; fnu: all ones

    @cached_property
    def nan_code(self) -> int | None:
        """The pattern ``encode`` writes for +NaN (a quiet NaN where there is a choice)."""
        if not self.has_nan:
            return None
        if self.variant == "" and self.mantissa > 0:
            return (((1 << self.exponent) - 1) << self.mantissa) | (1 << (self.mantissa - 1))
        return min(self.nan_codes)

    @property
    def inf_code(self) -> int | None:
        if not self.has_inf:
            return None
        return ((1 << self.exponent) - 1) << self.mantissa

    @cached_property
    def max_code(self) -> int:
        """Magnitude bits of the largest finite value (for integers: the largest value)."""
        if self.kind != "float":
            return int(self.max)
        magnitude_bits = self.exponent + self.mantissa
        if self.variant == "":
            return (((1 << self.exponent) - 1) << self.mantissa) - 1
        if self.variant in ("fnu",) or (self.variant == "fn" and self.bits >= 8):
            return (1 << magnitude_bits) - 2
        return (1 << magnitude_bits) - 1

    @property
    def min_exponent(self) -> int:
        """Unbiased exponent of the smallest normal value."""
        return (1 if self.has_subnormals else 0) - self.bias

    def magnitude_value(self, code: int) -> float:
        """Value of a non-negative magnitude code (no sign bit, not NaN/inf)."""
        field, man = code >> self.mantissa, code & ((1 << self.mantissa) - 1)
        if field == 0 and self.has_subnormals:
            return math.ldexp(man, 1 - self.bias - self.mantissa)
        return math.ldexp((1 << self.mantissa) + man, field - self.bias - self.mantissa)

    # ----- ranges ---------------------------------------------------------------------------
    @cached_property
    def max(self) -> int | float:
        if self.kind == "int":
            return (1 << (self.bits - 1)) - 1
        if self.kind == "uint":
            return (1 << self.bits) - 1
        return self.magnitude_value(self.max_code)

    @cached_property
    def min(self) -> int | float:
        """The most negative value (``0`` for unsigned types, the smallest value for ``fnu``)."""
        if self.kind == "int":
            return -(1 << (self.bits - 1))
        if self.kind == "uint":
            return 0
        if not self.is_signed:
            return self.magnitude_value(0)
        return -self.max

    @property
    def eps(self) -> float:
        """Distance from 1.0 to the next larger value: ``2**-mantissa``, or the subnormal
        spacing in types so narrow (bias < 1) that 1.0 is subnormal."""
        self._require_float("eps")
        return math.ldexp(1.0, max(0, self.min_exponent) - self.mantissa)

    @property
    def smallest_normal(self) -> float:
        self._require_float("smallest_normal")
        return math.ldexp(1.0, self.min_exponent)

    @property
    def smallest_subnormal(self) -> float:
        """The smallest positive value (``smallest_normal`` where there are no subnormals)."""
        self._require_float("smallest_subnormal")
        if not self.has_subnormals or self.mantissa == 0:
            return self.smallest_normal
        return math.ldexp(1.0, self.min_exponent - self.mantissa)

    def _require_float(self, what: str) -> None:
        if self.kind != "float":
            raise DtypeError(
                f"{what} is defined for floating-point types only",
                expected="a float dtype such as f16 or f6e3m2fn",
                found=self.name,
                code="dtype-not-float",
            )


def _container_bits(bits: int) -> int:
    for width in (8, 16, 32, 64):
        if bits <= width:
            return width
    raise AssertionError(bits)


def _default_bias(exponent: int, variant: str) -> int:
    return (1 << (exponent - 1)) - (0 if variant == "fnuz" else 1)


def _fits(dt: DataType, exponent: int, mantissa: int) -> bool:
    """Whether every finite value of ``dt`` is exact in an IEEE float with these widths."""
    bias = (1 << (exponent - 1)) - 1
    largest = (dt.max_code >> dt.mantissa) - dt.bias  # unbiased exponent of the largest value
    smallest = dt.min_exponent - dt.mantissa  # weight of the lowest mantissa bit
    return dt.mantissa <= mantissa and largest <= bias and smallest >= 1 - bias - mantissa


# ----- constructors ---------------------------------------------------------------------------


def int_type(bits: int, signed: bool = True) -> DataType:
    """Two's-complement signed (``i<bits>``) or unsigned (``u<bits>``) integer, 1 <= bits <= 64."""
    if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or not 1 <= bits <= 64:
        raise DtypeError(
            "integer width out of range",
            expected="a whole number of bits from 1 to 64",
            found=repr(bits),
            hint="for example tv.int_type(3) is i3, tv.int_type(5, signed=False) is u5",
            code="dtype-width",
        )
    return DataType("int" if signed else "uint", int(bits))


def float_type(
    exponent: int, mantissa: int, variant: str = "", bias: int | None = None
) -> DataType:
    """A float with ``exponent`` and ``mantissa`` bits and one of the conventions
    ``""`` (IEEE-like), ``"fn"``, ``"fnuz"``, ``"fnu"`` (see the module docstring).

    Up to 16 bits in all, any split; wider, only IEEE f32 (e8m23) and f64 (e11m52).
    """
    if variant not in FLOAT_VARIANTS:
        raise DtypeError(
            "unknown float convention",
            expected="one of '', 'fn', 'fnuz', 'fnu'",
            found=repr(variant),
            hint="'fn' = finite (no infinities), 'fnuz' = finite with NaN as negative zero, "
            "'fnu' = unsigned finite",
            code="dtype-variant",
        )
    for label, value in (("exponent", exponent), ("mantissa", mantissa)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise DtypeError(
                f"float {label} width must be a non-negative whole number",
                expected="an int >= 0",
                found=repr(value),
                code="dtype-width",
            )
    exponent, mantissa = int(exponent), int(mantissa)
    sign_bits = 0 if variant == "fnu" else 1
    bits = sign_bits + exponent + mantissa
    wide = (exponent, mantissa) in ((8, 23), (11, 52)) and variant == ""
    if exponent < 1 or bits < 2 or (bits > MAX_SMALL_FLOAT_BITS and not wide):
        raise DtypeError(
            f"float with {exponent} exponent and {mantissa} mantissa bits is not supported",
            expected="at least 1 exponent bit and 2..16 bits in all (or f32 = e8m23, f64 = e11m52)",
            found=f"e{exponent}m{mantissa}{variant} ({bits} bits)",
            hint="for example tv.float_type(3, 2, 'fn') is f6e3m2fn",
            code="dtype-width",
        )
    if bias is None:
        bias = _default_bias(exponent, variant)
    dt = DataType("float", bits, exponent, mantissa, int(bias), variant)
    if dt.max_code <= 0:
        raise DtypeError(
            f"float {dt.name} has no finite value but zero",
            expected="a split with at least one finite non-zero value",
            found=f"e{exponent}m{mantissa}{variant}: its only exponent field is infinity/NaN",
            hint="add a mantissa bit or use the 'fn' convention",
            code="dtype-width",
        )
    if not _fits(dt, 11, 52):
        raise DtypeError(
            f"float {dt.name} has a range that float64 cannot hold exactly",
            expected="an exponent range inside float64's (2**-1074 .. 2**1023)",
            found=f"{exponent} exponent bits with bias {bias}",
            hint="use fewer exponent bits or a bias closer to 2**(exponent-1)",
            code="dtype-width",
        )
    return dt


_ALIASES = {
    "f16": (5, 10),
    "bf16": (8, 7),
    "f32": (8, 23),
    "f64": (11, 52),
    "half": (5, 10),
    "float16": (5, 10),
    "bfloat16": (8, 7),
    "float": (8, 23),
    "float32": (8, 23),
    "double": (11, 52),
    "float64": (11, 52),
}


def parse(name: str) -> DataType:
    """Parse a tilevm dtype name (``i3``, ``u5``, ``f16``, ``f6e3m2fn``, ``f8e4m3b11fnuz``) or a
    numpy / ml_dtypes spelling of the same type (``int8``, ``float8_e4m3fn``, ``uint4``)."""
    text = name.strip().lower()
    if text in _ALIASES:
        return float_type(*_ALIASES[text])
    ml = re.fullmatch(r"(u?)int(\d+)", text)
    if ml:
        text = f"{'u' if ml.group(1) else 'i'}{ml.group(2)}"
    ml = re.fullmatch(r"float(\d+)_e(\d+)m(\d+)(b\d+)?(fnuz|fnu|fn)?", text)
    if ml:
        text = f"f{ml.group(1)}e{ml.group(2)}m{ml.group(3)}{ml.group(4) or ''}{ml.group(5) or ''}"
    m = _INT_NAME.fullmatch(text)
    if m:
        return int_type(int(m.group(2)), signed=m.group(1) == "i")
    m = _FLOAT_NAME.fullmatch(text)
    if m:
        bits, exponent, mantissa = (int(m.group(i)) for i in (1, 2, 3))
        variant = m.group(5) or ""
        bias = int(m.group(4)) if m.group(4) is not None else None
        dt = float_type(exponent, mantissa, variant, bias)
        if dt.bits != bits:
            raise DtypeError(
                f"dtype name {name!r} does not add up",
                expected=f"{dt.bits} bits for e{exponent}m{mantissa}"
                + (" (no sign bit)" if variant == "fnu" else " plus a sign bit"),
                found=f"{bits} bits",
                hint=f"write {dt.name!r}",
                code="dtype-name",
            )
        return dt
    raise DtypeError(
        f"unknown dtype name {name!r}",
        expected="i1..i64, u1..u64, f16, bf16, f32, f64, "
        "or f<bits>e<exp>m<man>[b<bias>][fn|fnuz|fnu]",
        found=repr(name),
        hint="for example 'i3', 'u5', 'f6e3m2fn', 'f8e4m3fn', 'f4e2m1fn'",
        code="dtype-name",
    )
