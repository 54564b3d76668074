"""Catalogue entries: errors in a kernel's source, found when it is compiled."""

from __future__ import annotations

from tilevm.error_catalog.entry import Entry

_DEFAULT = (
    "the default code of its error class: every place that raises one names a more "
    "precise code, which explain also lists"
)

ENTRIES = [
    Entry(
        "compile",
        "a kernel cannot be compiled",
        "The general compile error; more precise codes exist for most causes. The message points "
        "at the kernel's line.",
        "Read the message and the caret under the offending expression.",
        why_no_example=_DEFAULT,
    ),
    Entry(
        "unsupported-syntax",
        "a Python construct the kernel language does not have",
        "Kernels are a subset of Python: no lambdas, classes, try, with, return values, ...",
        "Write the computation with tiles and the tv builtins; move helpers to @tv.func.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    f = lambda v: v

k[1,](np.ones(4, np.float32), device="interp")
""",
    ),
    Entry(
        "type",
        "operand dtypes or kinds do not fit an instruction",
        "Dtypes never mix implicitly: an f32 tile times an f16 tile is an error, as is true "
        "division of integers or storing a tile of another dtype.",
        "Convert explicitly with x.to(dtype) (or tv.cast) so both operands agree.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32], y: tv.Tensor[tv.f16]):
    tv.store(x, tv.load(x, [0], [64]) * tv.load(y, [0], [64]), [0])

k[1,](np.ones(64, np.float32), np.ones(64, np.float16), device="interp")
""",
    ),
    Entry(
        "shape",
        "tile shapes do not fit an instruction",
        "Elementwise operands must have equal shapes (or broadcast: size 1 or a missing "
        "leading dimension); tile sizes are compile-time powers of two.",
        "Make the shapes agree: load tiles of the same shape, or reshape to broadcast.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.load(x, [0], [64]) + tv.load(x, [0], [32]), [0])

k[1,](np.ones(64, np.float32), device="interp")
""",
    ),
    Entry(
        "value",
        "a compile-time value is not one the construct takes",
        "A constexpr or literal argument of a builtin is outside what it accepts.",
        "Pass a value the builtin documents (docs/language.md).",
        why_no_example=_DEFAULT,
    ),
    Entry(
        "call-depth",
        "@tv.func calls nest too deep to inline",
        "Helpers are inlined at each call; a helper that calls itself without end never stops.",
        "Write the recursion as a loop (tv.range or tv.static_range).",
        example="""
@tv.func
def forever(a):
    return forever(a)

@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    tv.store(x, forever(tv.load(x, [0], [32])), [0])

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
    Entry(
        "undefined-name",
        "a name the kernel uses is not defined",
        "The name is neither a parameter, a local, nor a global of the kernel's module.",
        "Define it, import it, or pass it as a parameter.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    tv.store(x, missing, [0])

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
    Entry(
        "attribute",
        "an attribute a value does not have",
        "Tensors have shape, stride() and dtype; tiles have shape, dtype and to(); scalars few.",
        "Check the spelling and the kind of value (docs/language.md, Values).",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.zeros([x.size], tv.f32), [0])

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
    Entry(
        "subscript",
        "a subscript the kernel language does not have",
        "Tiles cannot be indexed or sliced element by element; tensors are read with tv.load.",
        "Load the part you need with tv.load(tensor, offsets, shape), or reshape the tile.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    a = tv.load(x, [0], [32])
    tv.store(x, a[:, :, None], [0])

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
    Entry(
        "unsupported",
        "an operation on values that do not support it",
        "A Python operator or builtin applied to kernel values it is not defined for.",
        "Use the tv builtins on tiles and scalars; compute Python values at compile time only.",
        example="""
OPTIONS = {"dtype": tv.f32}

@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.zeros([32], **OPTIONS, **OPTIONS), [0])

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
    Entry(
        "call",
        "a call the kernel cannot make",
        "A builtin got wrong arguments, or a plain Python function was called on run-time "
        "values (only compile-time values may go to Python functions).",
        "Check the builtin's signature (its docstring: help(tv.load)); use @tv.func for helpers.",
        example="""
@tv.func
def twice(a):
    return a + a

@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    tv.store(x, twice(tv.load(x, [0], [32]), 3), [0])

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
    Entry(
        "constexpr-call",
        "a Python function failed on compile-time values",
        "Calling a Python function on constexprs runs it at compile time; it raised.",
        "Fix the arguments; the message has the function's own error.",
        example="""
import math

@tv.kernel
def k(x: tv.Tensor[tv.f32], N: tv.constexpr):
    tv.store(x, tv.zeros([int(math.log2(N))], tv.f32), [0])

k[1,](np.ones(32, np.float32), N=-1, device="interp")
""",
    ),
    Entry(
        "unpack",
        "a tuple assignment whose sides do not match",
        "Unpacking needs a compile-time tuple of the same length.",
        "Make both sides the same length.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    a, b = (1, 2, 3)
    tv.store(x, tv.zeros([32], tv.f32), [0])

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
    Entry(
        "loop-value",
        "a value changes its type or shape inside a run-time loop",
        "A variable carried through tv.range must keep its kind, dtype, shape and layout.",
        "Convert before the loop, or use a new name inside it.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32], n: tv.i32):
    dt = tv.f32
    for _ in range(n):
        dt = tv.f16
    tv.store(x, tv.zeros([32], dt).to(tv.f32), [0])

k[1,](np.ones(32, np.float32), 2, device="interp")
""",
    ),
    Entry(
        "branch-value",
        "the branches of a run-time if disagree about a value",
        "A variable assigned in a block-uniform if must have the same kind, dtype and shape "
        "after either branch.",
        "Assign the same kind of value in both branches (or before the if).",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32], n: tv.i32):
    dt = tv.f32
    if n > 0:
        dt = tv.f16
    tv.store(x, tv.zeros([32], dt).to(tv.f32), [0])

k[1,](np.ones(32, np.float32), 1, device="interp")
""",
    ),
    Entry(
        "condition",
        "an if or while condition that is not a block-uniform scalar",
        "Control flow is block-uniform: a condition on a tile would differ between threads.",
        "Use tv.where(cond, a, b) for elementwise choices; reduce the tile to a scalar first.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    a = tv.load(x, [0], [64])
    if a > 0:
        tv.store(x, a, [0])

k[1,](np.ones(64, np.float32), device="interp")
""",
    ),
    Entry(
        "range-step",
        "a loop with a zero step",
        "range(start, stop, 0) would never end.",
        "Use a non-zero step.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    for _ in range(0, 8, 0):
        pass

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
    Entry(
        "static-range",
        "tv.static_range over values not known at compile time or not ints",
        "tv.static_range unrolls: its bounds must be compile-time integers.",
        "Use compile-time ints, or tv.range for a run-time loop.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    for _ in tv.static_range(1e3):
        pass

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
    Entry(
        "unroll-budget",
        "tv.static_range unrolls past 100 000 VM instructions",
        "Unrolled loops (nested ones included) are limited so compiles stay fast.",
        "Use tv.range for long loops; unroll only short inner loops.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    acc = tv.zeros([32], tv.f32)
    for _ in tv.static_range(200_000):
        acc = acc + 1.0
    tv.store(x, acc, [0])

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
    Entry(
        "unsupported-option",
        "a loop option the construct does not take",
        "tv.range takes start, stop, step and unroll; other keywords are refused.",
        "Remove the option (software pipelining is written by hand: docs/language.md).",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    for i in tv.range(0, 4, 1, stages=3):
        tv.store(x, tv.zeros([64], tv.f32), [i * 64])

k[1,](np.ones(256, np.float32), device="interp")
""",
    ),
    Entry(
        "static-assert",
        "a compile-time assert failed",
        "assert on compile-time values is checked when the kernel compiles, with your message.",
        "Launch with values that satisfy the assertion.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32], BLOCK: tv.constexpr):
    assert BLOCK % 32 == 0, "BLOCK must be a multiple of 32"
    tv.store(x, tv.zeros([BLOCK], tv.f32), [0])

k[1,](np.ones(64, np.float32), BLOCK=48, device="interp")
""",
    ),
    Entry(
        "global-value",
        "a global the kernel reads is not a compile-time value",
        "Kernels may read module globals that are numbers, dtypes, layouts or tuples of them "
        "(frozen at compile time); other objects cannot enter a kernel.",
        "Pass the value as a parameter, or make the global a number or tuple.",
        example="""
class Settings:
    scale = 2.0

SETTINGS = Settings()

@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.full([32], SETTINGS.scale, tv.f32), [0])

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
    Entry(
        "no-source",
        "the kernel's source cannot be read",
        "Kernels are compiled from their source text, which Python keeps only for functions "
        "defined in files.",
        "Define kernels in a .py file (not in exec() or an interactive prompt).",
        example="""
namespace = {"tv": tv}
exec("@tv.kernel\\ndef k(x: tv.Tensor[tv.f32]):\\n    pass\\n", namespace)
namespace["k"][1,](np.ones(4, np.float32), device="interp")
""",
    ),
    Entry(
        "annotation",
        "the kernel's parameter annotations cannot be evaluated",
        "Annotations (tv.Tensor[dtype], a dtype, tv.constexpr) are evaluated when the kernel is "
        "decorated.",
        "Fix the name in the annotation.",
        example="""
@tv.kernel
def k(x: "tv.Tensor[tv.no_such_type]"):
    pass
""",
    ),
    Entry(
        "outside-kernel",
        "a kernel-language builtin called from plain Python",
        "tv.load, tv.store, ... only have a meaning inside a @tv.kernel or @tv.func function.",
        "Call them in a kernel and launch it: kernel[grid](args).",
        example="tv.load(np.ones(4), [0], [4])",
    ),
    Entry(
        "division-by-zero",
        "a division by a compile-time zero",
        "Compile-time arithmetic follows Python, where x / 0 is an error.",
        "Guard the divisor, or fix the constexpr that made it zero.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.full([32], 1.0 / 0, tv.f32), [0])

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
    Entry(
        "shift-count",
        "a shift by a compile-time count outside the operand's width",
        "Shifting an n-bit value by n or more bits (or a negative count) has no defined result.",
        "Shift by 0 .. bits-1.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.i32]):
    tv.store(x, tv.full([32], 1 << -1, tv.i32), [0])

k[1,](np.ones(32, np.int32), device="interp")
""",
    ),
    Entry(
        "atomic-dtype",
        "an atomic add on a dtype the target has no atomic for",
        "tv.atomic_add takes i32, u32, i64, u64, f32, f64, and f16/bf16 where the target has them.",
        "Accumulate in a supported dtype (e.g. f32) and convert afterwards.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.i8]):
    tv.atomic_add(x, tv.load(x, [0], [32]), [0])

k[1,](np.ones(32, np.int8), device="interp")
""",
    ),
    Entry(
        "shared-memory",
        "shared tiles larger than the target gives a block",
        "Every shared tile of a block, live at the same time, must fit the target's shared memory.",
        "Use smaller tiles, fewer pipeline stages, or a narrower dtype.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    s = tv.shared([1 << 20], tv.f32)
    tv.store_shared(s, tv.zeros([1 << 20], tv.f32))

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
    Entry(
        "register-budget",
        "a register tile larger than four times a thread's registers",
        "A tile is spread over the block's threads; one needing more than 4x 255 32-bit "
        "registers per thread would spill to memory.",
        "Use a smaller tile or more warps, or loop over parts of it.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.zeros([1 << 20], tv.f32), [0])

k[1,](np.ones(32, np.float32), warps=1, device="interp")
""",
    ),
    Entry(
        "accumulator-dtype",
        "a sum or dot asked to accumulate floats in an integer dtype, or integers in a float one",
        "tv.sum(x, dtype=) and tv.dot(a, b, dtype=) pick the result's and the accumulator's "
        "dtype; it must be of the inputs' kind (a float dtype for float inputs).",
        "Convert the inputs first (x.to(tv.f32)), then reduce; or drop dtype=.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.i32]):
    tv.store(out, tv.full([1], tv.sum(tv.load(x, [0], [32]), dtype=tv.i32), tv.i32), [0])

k[1,](np.ones(32, np.float32), np.zeros(1, np.int32), device="interp")
""",
    ),
    Entry(
        "scan-axis",
        "a scan along an axis the tile does not have",
        "tv.cumsum and tv.associative_scan run along one axis of the tile, an int in [-rank, "
        "rank).",
        "Pass one axis; to scan every element, tv.reshape the tile to one dimension first.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.cumsum(tv.load(x, [0], [32]), axis=1), [0])

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
    Entry(
        "scan-combine",
        "an associative_scan combine that is not a @tv.func of two values doing arithmetic",
        "The combine sees two elements at a time (the running value and the next element) and "
        "returns one scalar: arithmetic, comparisons, tv.where, math and casts only.",
        "Decorate it with @tv.func, give it two parameters, return one value; choose with "
        "tv.where instead of if.",
        example="""
def larger(a, b):
    return tv.maximum(a, b)

@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.associative_scan(tv.load(x, [0], [32]), 0, larger), [0])

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
    Entry(
        "scan-dtype",
        "an associative_scan combine whose result dtype is not the tile's",
        "A scan's running values keep the scanned tile's dtype.",
        "Convert the result inside the combine: (...).to(tv.<the tile's dtype>).",
        example="""
@tv.func
def widen(a, b):
    return (a + b).to(tv.f64)

@tv.kernel
def k(x: tv.Tensor[tv.f32]):
    tv.store(x, tv.associative_scan(tv.load(x, [0], [32]), 0, widen), [0])

k[1,](np.ones(32, np.float32), device="interp")
""",
    ),
]
