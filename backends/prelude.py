"""The C++ helpers every language's prelude shares, written once.

A renderer's prelude is its own head (includes, ``TV_INLINE``, the integer types, how bits are
reinterpreted), ``helpers(spelling)``, and what only that language has (atomics, 16-bit float
pairs, math library, matrix instructions), each part after what it calls. The shared text needs
from the parts before it::

    TV_INLINE                        how a device helper is declared
    uint8_t, uint32_t, int32_t       the fixed-width integers
    Spelling.u32x2, Spelling.u32x4   8 and 16 bytes as one value of 32-bit words
    Spelling.pow                     pow on doubles

and names the few library functions it calls through ``Spelling``, so each language's source
reads as if written by hand: ``fmod`` (CUDA), ``__builtin_fmod`` (HIP, which links no libm
offline), ``sycl::fmod``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from string import Template

__all__ = ["FIXED_WIDTH_INTS", "LANES16_EQ", "Spelling", "helpers", "sigmoid"]


@dataclass(frozen=True)
class Spelling:
    """How one language names what the shared helpers call."""

    math: str  # prefix of fabs, fmod, copysign, floor, ldexp, trunc: "", "__builtin_", "sycl::"
    fabsf: str  # |x| of a float
    pow: str  # pow on doubles
    u32x2: str  # 8 bytes as two 32-bit words, moved as one access
    u32x4: str  # 16 bytes as four 32-bit words, 16-byte aligned


# For CUDA and HIP, whose runtime compilers (and offline clang with -nogpuinc) have no <stdint.h>.
FIXED_WIDTH_INTS = r"""
// (the integer types as the CUDA and HIP runtime headers spell them)
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
"""

# Where no instruction compares 16-bit lanes (CUDA has __vcmpeq2).
LANES16_EQ = r"""
// 0xffff in each 16-bit lane where a and b agree.
TV_INLINE uint32_t tv_lanes16_eq(uint32_t a, uint32_t b) {
    uint32_t d = a ^ b;
    return ((d & 0xffffu) ? 0u : 0xffffu) | ((d >> 16) ? 0u : 0xffff0000u);
}
"""

HELPERS = Template(r"""
// One aligned access of N elements (16 bytes at most): LDG.128, global_load_dwordx4 and friends.
// Elements under 32 bits move between memory and their (16-byte aligned) register array as
// whole 32-bit words, so the registers that matrix instructions read are never split up.
template <typename T, int N> struct alignas(sizeof(T) * N) tv_vec { T v[N]; };
template <int B> struct tv_words_of;  // B bytes as unsigned 32-bit words
template <> struct tv_words_of<4> { typedef uint32_t type; };
template <> struct tv_words_of<8> { typedef ${u32x2} type; };
template <> struct tv_words_of<16> { typedef ${u32x4} type; };
template <typename T, int N> TV_INLINE constexpr bool tv_by_words() {
    return sizeof(T) < 4 && sizeof(T) * N >= 4;
}
template <typename T, int N> TV_INLINE void tv_vload(T* dst, const T* src) {
    if constexpr (tv_by_words<T, N>()) {
        typedef typename tv_words_of<sizeof(T) * N>::type W;
        *reinterpret_cast<W*>(dst) = *reinterpret_cast<const W*>(src);
    } else {
        tv_vec<T, N> tmp = *reinterpret_cast<const tv_vec<T, N>*>(src);
        #pragma unroll
        for (int i = 0; i < N; ++i) dst[i] = tmp.v[i];
    }
}
template <typename T, int N> TV_INLINE void tv_vstore(T* dst, const T* src) {
    if constexpr (tv_by_words<T, N>()) {
        typedef typename tv_words_of<sizeof(T) * N>::type W;
        *reinterpret_cast<W*>(dst) = *reinterpret_cast<const W*>(src);
    } else {
        tv_vec<T, N> tmp;
        #pragma unroll
        for (int i = 0; i < N; ++i) tmp.v[i] = src[i];
        *reinterpret_cast<tv_vec<T, N>*>(dst) = tmp;
    }
}
// N slots of a register array set to one value (whole words, as tv_vload writes them).
template <typename T, int N> TV_INLINE void tv_vfill(T* dst, T value) {
    if constexpr (tv_by_words<T, N>()) {
        uint32_t bits = 0;
        #pragma unroll
        for (int i = 0; i < (int)(4 / sizeof(T)); ++i)
            reinterpret_cast<T*>(&bits)[i] = value;
        #pragma unroll
        for (int i = 0; i < (int)(sizeof(T) * N / 4); ++i) {
            reinterpret_cast<uint32_t*>(dst)[i] = bits;
        }
    } else {
        #pragma unroll
        for (int i = 0; i < N; ++i) dst[i] = value;
    }
}
// Two consecutive 16-bit slots of a register array read as one word.
template <typename T> TV_INLINE uint32_t tv_load_u32(const T* p) {
    return *reinterpret_cast<const uint32_t*>(p);
}
// Two consecutive 16-bit slots of a register array written as one word.
template <typename T> TV_INLINE uint32_t tv_store_u32(T* p, uint32_t v) {
    *reinterpret_cast<uint32_t*>(p) = v;
    return v;
}

// Sign-extend the low B bits.
template <int B> TV_INLINE int32_t tv_sext(uint32_t x) {
    return (int32_t)(x << (32 - B)) >> (32 - B);
}

// max/min that propagate NaN (as numpy does).
TV_INLINE float tv_max(float a, float b) { return (a != a || a > b) ? a : b; }
TV_INLINE float tv_min(float a, float b) { return (a != a || a < b) ? a : b; }
TV_INLINE double tv_max(double a, double b) { return (a != a || a > b) ? a : b; }
TV_INLINE double tv_min(double a, double b) { return (a != a || a < b) ? a : b; }
template <typename T> TV_INLINE T tv_max(T a, T b) { return a > b ? a : b; }
template <typename T> TV_INLINE T tv_min(T a, T b) { return a < b ? a : b; }
template <typename T> TV_INLINE T tv_abs(T a) { return a < 0 ? (T)(0 - a) : a; }
TV_INLINE float tv_abs(float a) { return ${fabsf}(a); }
TV_INLINE double tv_abs(double a) { return ${math}fabs(a); }

// Python's // and % (floor), with x // 0 == 0 and x % 0 == x for integers.
template <typename T> TV_INLINE T tv_floordiv(T a, T b) {
    if (b == 0) return 0;
    T q = a / b;
    return (q * b != a && ((a < 0) != (b < 0))) ? q - 1 : q;
}
template <typename T> TV_INLINE T tv_mod(T a, T b) {
    if (b == 0) return a;
    T r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
template <typename F> TV_INLINE F tv_fmod_floor(F a, F b, F* div) {
    F mod = ${math}fmod(a, b);
    if (b == 0) { *div = a / b; return mod; }
    F d = (a - mod) / b;
    if (mod != 0) { if ((b < 0) != (mod < 0)) { mod += b; d -= 1; } }
    else { mod = ${math}copysign((F)0, b); }
    F fl;
    if (d != 0) { fl = ${math}floor(d); if (d - fl > (F)0.5) fl += 1; }
    else { fl = ${math}copysign((F)0, a / b); }
    *div = fl;
    return mod;
}
TV_INLINE float tv_floordiv(float a, float b) { float d; tv_fmod_floor(a, b, &d); return d; }
TV_INLINE double tv_floordiv(double a, double b) { double d; tv_fmod_floor(a, b, &d); return d; }
TV_INLINE float tv_mod(float a, float b) { float d; return tv_fmod_floor(a, b, &d); }
TV_INLINE double tv_mod(double a, double b) { double d; return tv_fmod_floor(a, b, &d); }
TV_INLINE float tv_pow(float a, float b) { return (float)${pow}((double)a, (double)b); }
TV_INLINE double tv_pow(double a, double b) { return ${pow}(a, b); }
template <typename T> TV_INLINE T tv_pow(T a, T b) {
    if (b < 0) return 0;
    T r = 1;
    while (b) {
        if (b & 1) r = (T)((unsigned long long)r * (unsigned long long)a);
        a = (T)((unsigned long long)a * (unsigned long long)a);
        b >>= 1;
    }
    return r;
}

// Shifts read the count as unsigned, so a negative count is as large as any. A count of the
// type's width or more shifts every bit out, as that many one-bit shifts would: 0, or the sign
// for >> of a signed value (C leaves both undefined).
template <typename T> TV_INLINE T tv_shl(T a, T b, int bits) {
    bool out = (unsigned long long)b >= (unsigned long long)bits;
    return out ? (T)0 : (T)((unsigned long long)a << b);
}
template <typename T> TV_INLINE T tv_shr(T a, T b, int bits) {
    T sign = 0;
    if constexpr ((T)-1 < (T)0) sign = a < 0 ? (T)-1 : (T)0;
    return (unsigned long long)b >= (unsigned long long)bits ? sign : (T)(a >> b);
}

// x rounded to odd: of the two floats either side of x, the one whose last mantissa bit is 1
// (x itself when it is a float). Rounded once more to a type of at least two mantissa bits
// fewer, it gives what rounding x once gives: the odd bit stands for every bit the first
// rounding dropped, so it can neither make a tie nor hide one. Casts of f64 and of wide integers
// to floats narrower than f32 go through it; rounding through a plain f32 would round twice.
TV_INLINE float tv_odd_bit(float f, bool away, bool toward) {
    uint32_t u = TV_FLOAT_TO_BITS(f);
    // an even inexact result steps one pattern towards x: onto the odd neighbour
    return TV_BITS_TO_FLOAT(((u & 1u) || !(away || toward)) ? u : away ? u - 1u : u + 1u);
}
TV_INLINE float tv_to_f32_odd(double x) {
    float f = (float)x;  // to nearest (even)
    double ax = ${math}fabs(x), af = ${math}fabs((double)f);
    return tv_odd_bit(f, af > ax, af < ax);  // NaN compares false: kept
}
TV_INLINE float tv_to_f32_odd(uint64_t x) {
    float f = (float)x;  // to nearest (even): at most 2**64, which no uint64_t reaches
    bool away = f >= 18446744073709551616.0f || (uint64_t)f > x;
    return tv_odd_bit(f, away, !away && (uint64_t)f < x);
}
TV_INLINE float tv_to_f32_odd(int64_t x) {
    float m = tv_to_f32_odd(x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x);
    return x < 0 ? -m : m;
}

// float -> integer of B bits: truncate, saturate, NaN -> 0.
template <typename T, int B, bool S> TV_INLINE T tv_f2i(double x) {
    if (x != x) return 0;
    const double hi = S ? ${math}ldexp(1.0, B - 1) : ${math}ldexp(1.0, B);
    const double lo = S ? -${math}ldexp(1.0, B - 1) : 0.0;
    if (x >= hi) return S ? (T)((1ull << (B - 1)) - 1) : (T)(B == 64 ? ~0ull : (1ull << B) - 1);
    if (x <= lo) return S ? (T)(-(long long)(1ull << (B - 1))) : (T)0;
    return S ? (T)(long long)${math}trunc(x) : (T)(unsigned long long)${math}trunc(x);
}

// Bit-packed tensors: element i of a B-bit tensor is bits [i*B, (i+1)*B) of the bytes.
TV_INLINE uint32_t tv_load_bits(const uint8_t* p, long long pos, int bits) {
    const uint8_t* q = p + (pos >> 3);
    int shift = (int)(pos & 7);
    unsigned long long w = q[0];  // up to 32 bits from bit 7 on: five bytes, read as needed
    for (int k = 1; k < 5 && shift + bits > 8 * k; ++k) w |= (unsigned long long)q[k] << (8 * k);
    return (uint32_t)((w >> shift) & ((1ull << bits) - 1ull));
}
""")


def helpers(spelling: Spelling) -> str:
    """The shared helpers in one language's spelling."""
    return HELPERS.substitute(asdict(spelling))


SIGMOID = Template(r"""
// sigmoid(x) = 1 / (1 + exp(-x)) from e = exp(-|x|), which lies in (0, 1]: no overflow, 0 and 1
// at the infinities, nan only for nan.
TV_INLINE float tv_sigmoid(float x) {
    float e = ${expf}(-${fabsf}(x));
    float s = 1.0f / (1.0f + e);
    return x >= 0.0f ? s : e * s;
}
TV_INLINE double tv_sigmoid(double x) {
    double e = ${exp}(-${fabs}(x));
    double s = 1.0 / (1.0 + e);
    return x >= 0.0 ? s : e * s;
}""")


def sigmoid(expf: str, fabsf: str, exp: str, fabs: str) -> str:
    """The sigmoid helper, with the language's names of exp and |x| (float, then double)."""
    return SIGMOID.substitute(expf=expf, fabsf=fabsf, exp=exp, fabs=fabs).strip()
