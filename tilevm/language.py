"""The kernel language's names (``tv.load``, ``tv.sum``, ...).

Each is a ``Builtin``: the frontend recognizes it by identity and turns the call into VM IR.
Called from plain Python, outside a ``@tv.kernel`` function, it raises a clear error.
"""

from __future__ import annotations

from tilevm.dtypes import DataType
from tilevm.errors import CompileError


class Builtin:
    """A kernel-language function; its meaning lives in the frontend's handler table."""

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.__doc__ = doc
        self.__name__ = name

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise CompileError(
            f"tv.{self.name} is part of the kernel language",
            expected=f"a call to tv.{self.name} inside a @tv.kernel or @tv.func function",
            found="a call from plain Python",
            hint="decorate the function with @tv.kernel and launch it: kernel[grid](args)",
            code="outside-kernel",
        )

    def __repr__(self) -> str:
        return f"tv.{self.name}"


_DOCS = {
    "block_id": "block_id(axis) -> i32: this block's index along grid axis 0, 1 or 2",
    "num_blocks": "num_blocks(axis) -> i32: the grid's size along an axis",
    "load": "load(tensor, offsets, shape, other=0) -> tile; elements outside the tensor read other",
    "store": "store(tensor, tile, offsets): elements outside the tensor are not written",
    "atomic_add": "atomic_add(tensor, value, offsets): atomically tensor[offsets + i] += value[i] "
    "for each element i of a tile inside the tensor (each once, elements outside untouched); "
    "with a scalar value, one add at offsets that returns the old value, the same in every "
    "thread (0 outside the tensor). Relaxed: no order with other memory accesses. Dtypes: "
    "i32, u32, i64, u64, f32, f64, and f16/bf16 where the target has them",
    "shared": "shared(shape, dtype, layout=None) -> a shared-memory tile",
    "load_shared": "load_shared(shared, offsets=None, shape=None) -> register tile",
    "store_shared": "store_shared(shared, tile, offsets=None)",
    "sync": "sync(): barrier over the block (shared memory is visible after it)",
    "copy_async": "copy_async(dst_shared, src, offsets, dst_offsets=None, shape=None): start a "
    "global -> shared copy (outside elements arrive as 0); it lands after tv.wait_async",
    "commit_async": "commit_async(): close the group of copies started since the last commit",
    "wait_async": "wait_async(pending=0): wait until at most `pending` committed groups are in "
    "flight, then sync the block (their data is visible to every thread)",
    "zeros": "zeros(shape, dtype) -> tile",
    "full": "full(shape, value, dtype) -> tile",
    "arange": "arange(start, stop) -> i32 tile [stop - start] (compile-time bounds)",
    "where": "where(cond, a, b) -> elementwise select",
    "maximum": "maximum(a, b)",
    "minimum": "minimum(a, b)",
    "exp": "exp(x, approx=False); approx=True: the GPU's fast 2**(x*log2(e)) (within 2 + 1.5|x| "
    "ulp on CUDA), exact on the CPU and the interpreter",
    "exp2": "exp2(x, approx=False); approx=True: the GPU's fast exp2 instruction (within 2 ulp on "
    "CUDA)",
    "log": "log(x)",
    "log2": "log2(x, approx=False); approx=True: the GPU's fast log2 instruction",
    "sqrt": "sqrt(x)",
    "rsqrt": "rsqrt(x, approx=False) = 1 / sqrt(x); approx=True: the GPU's fast rsqrt instruction",
    "abs": "abs(x)",
    "sin": "sin(x)",
    "cos": "cos(x)",
    "tan": "tan(x)",
    "atan": "atan(x) in [-pi/2, pi/2]",
    "tanh": "tanh(x)",
    "erf": "erf(x): the error function, 2/sqrt(pi) * integral of exp(-t*t) from 0 to x",
    "sigmoid": "sigmoid(x) = 1 / (1 + exp(-x)), computed without overflow (0 and 1 at the ends, "
    "never nan for a number)",
    "log1p": "log1p(x) = log(1 + x), accurate for x near 0",
    "expm1": "expm1(x) = exp(x) - 1, accurate for x near 0",
    "pow": "pow(x, y) = x ** y of floats, elementwise with broadcasting (nan for a negative x "
    "and a non-integer y); for integer powers write x ** n",
    "fdiv": "fdiv(x, y, approx=False) = x / y of floats; approx=True: x times the GPU's fast "
    "reciprocal of y (within 2 ulp on CUDA where 1/y is a normal float)",
    "floor": "floor(x)",
    "ceil": "ceil(x)",
    "cast": "cast(x, dtype) (also x.to(dtype))",
    "view": "view(x, dtype=None, layout=None, shape=None): reinterpret each thread's bits; "
    "without layout=, the layout is derived from the dtypes and shape (one dimension scaled)",
    "sum": "sum(x, axis, keepdims=False, dtype=None): partial sums rounded to f32 (f64 for f64 "
    "results); dtype= widens the result and its accumulator, e.g. dtype=tv.f64",
    "max": "max(x, axis, keepdims=False)",
    "min": "min(x, axis, keepdims=False)",
    "cumsum": "cumsum(x, axis=0, reverse=False) -> tile: the inclusive running sum along one "
    "axis (out[i] = x[0] + ... + x[i]; reverse: x[i] + ... + x[n-1]), in x's dtype, accumulated "
    "as tv.sum accumulates (integers wrap; floats at least in float32, exactly on the interpreter)",
    "associative_scan": "associative_scan(x, axis, combine, reverse=False) -> tile: the "
    "inclusive scan of x along axis with combine, a @tv.func of two values of x's dtype "
    "returning one (out[i] = combine(...combine(x[0], x[1])..., x[i])), grouped as a tree: "
    "combine must be associative; rounding may differ from a sequential loop",
    "dot": "dot(a, b, acc=None) -> acc + a @ b: a [*B, M, K], b [*B, K, N], acc [*B, M, N], "
    "batched like numpy's matmul over leading dimensions B that must be equal (no broadcasting); "
    "acc defaults to zeros of dtype (f32 for float inputs, i32 for integers); products are "
    "added along K into partial sums rounded to f32 (f64 for an f64 acc)",
    "reshape": "reshape(x, shape)",
    "transpose": "transpose(x, dims=None)",
    "annotate": "annotate(x, layout): pin a register layout",
    "assume": "assume(condition): a divisibility / range fact the compiler may use",
    "static_print": "static_print(*values): print at compile time",
    "print": "print(*values): print from the kernel at run time",
    "static_range": "static_range(start, stop, step): a loop unrolled at compile time",
    "range": "range(start, stop, step, unroll=None): a block-uniform loop",
    "cdiv": "cdiv(a, b) = ceil(a / b)",
    "num_threads": "num_threads() -> int: threads in the block (a compile-time constant)",
    "warp_size": "warp_size() -> int: threads in a warp of the target (a compile-time constant)",
}


class _HostCallable(Builtin):
    """A builtin that also works on plain Python numbers (``tv.cdiv`` for grid sizes)."""

    def __init__(self, name: str, doc: str, host) -> None:
        super().__init__(name, doc)
        self._host = host

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self._host(*args, **kwargs)


globals().update({name: Builtin(name, doc) for name, doc in _DOCS.items()})
cdiv = _HostCallable("cdiv", _DOCS["cdiv"], lambda a, b: -(-a // b))
BUILTINS: dict[str, Builtin] = {name: globals()[name] for name in _DOCS}


class _Constexpr:
    """Annotation of compile-time parameters: ``BLOCK: tv.constexpr = 1024``."""

    def __repr__(self) -> str:
        return "tv.constexpr"


constexpr = _Constexpr()


class Tensor:
    """Annotation of tensor parameters: ``x: tv.Tensor[tv.f32]`` (``tv.Tensor`` alone: any
    dtype, taken from the argument)."""

    def __init__(self, dtype: DataType | None = None) -> None:
        self.dtype = dtype

    def __class_getitem__(cls, dtype: DataType) -> Tensor:
        return cls(dtype)

    def __repr__(self) -> str:
        return f"tv.Tensor[{self.dtype}]" if self.dtype else "tv.Tensor"
