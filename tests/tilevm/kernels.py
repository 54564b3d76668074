"""Small kernels, one instruction each, shared by the instruction tests."""

from __future__ import annotations

import tilevm as tv


@tv.kernel
def binary_op(x: tv.Tensor, y: tv.Tensor, out: tv.Tensor, OP: tv.constexpr, BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK
    a = tv.load(x, [start], [BLOCK])
    b = tv.load(y, [start], [BLOCK])
    if OP == "add":
        r = a + b
    elif OP == "sub":
        r = a - b
    elif OP == "mul":
        r = a * b
    elif OP == "div":
        r = a / b
    elif OP == "floordiv":
        r = a // b
    elif OP == "mod":
        r = a % b
    elif OP == "maximum":
        r = tv.maximum(a, b)
    elif OP == "minimum":
        r = tv.minimum(a, b)
    elif OP == "and":
        r = a & b
    elif OP == "or":
        r = a | b
    elif OP == "xor":
        r = a ^ b
    else:
        r = tv.where(a < b, a, b)
    tv.store(out, r, [start])


@tv.kernel
def compare_op(
    x: tv.Tensor, y: tv.Tensor, out: tv.Tensor[tv.i32], OP: tv.constexpr, BLOCK: tv.constexpr
):
    start = tv.block_id(0) * BLOCK
    a = tv.load(x, [start], [BLOCK])
    b = tv.load(y, [start], [BLOCK])
    if OP == "lt":
        r = a < b
    elif OP == "le":
        r = a <= b
    elif OP == "eq":
        r = a == b
    elif OP == "ne":
        r = a != b
    elif OP == "gt":
        r = a > b
    else:
        r = a >= b
    tv.store(out, r.to(tv.i32), [start])


@tv.kernel
def unary_op(x: tv.Tensor, out: tv.Tensor, OP: tv.constexpr, BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK
    a = tv.load(x, [start], [BLOCK], other=1)
    if OP == "exp":
        r = tv.exp(a)
    elif OP == "exp2":
        r = tv.exp2(a)
    elif OP == "log":
        r = tv.log(a)
    elif OP == "sqrt":
        r = tv.sqrt(a)
    elif OP == "rsqrt":
        r = tv.rsqrt(a)
    elif OP == "abs":
        r = tv.abs(a)
    elif OP == "neg":
        r = -a
    elif OP == "tanh":
        r = tv.tanh(a)
    elif OP == "tan":
        r = tv.tan(a)
    elif OP == "atan":
        r = tv.atan(a)
    elif OP == "erf":
        r = tv.erf(a)
    elif OP == "sigmoid":
        r = tv.sigmoid(a)
    elif OP == "log1p":
        r = tv.log1p(a)
    elif OP == "expm1":
        r = tv.expm1(a)
    elif OP == "floor":
        r = tv.floor(a)
    else:
        r = tv.ceil(a)
    tv.store(out, r, [start])


@tv.kernel
def cast_op(x: tv.Tensor, out: tv.Tensor, BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK
    tv.store(out, tv.load(x, [start], [BLOCK]).to(out.dtype), [start])


@tv.kernel
def reduce_op(
    x: tv.Tensor,
    out: tv.Tensor,
    OP: tv.constexpr,
    AXIS: tv.constexpr,
    R: tv.constexpr,
    C: tv.constexpr,
):
    v = tv.load(x, [0, 0], [R, C])
    if OP == "sum":
        r = tv.sum(v, AXIS, keepdims=True)
    elif OP == "max":
        r = tv.max(v, AXIS, keepdims=True)
    else:
        r = tv.min(v, AXIS, keepdims=True)
    tv.store(out, r, [0, 0])


@tv.kernel
def reduce_all(x: tv.Tensor, out: tv.Tensor, R: tv.constexpr, C: tv.constexpr):
    total = tv.sum(tv.load(x, [0, 0], [R, C]))
    tv.store(out, tv.full([1], total, out.dtype), [0])


@tv.kernel
def dot_op(
    a: tv.Tensor, b: tv.Tensor, c: tv.Tensor, M: tv.constexpr, N: tv.constexpr, K: tv.constexpr
):
    acc = tv.load(c, [0, 0], [M, N])
    tv.store(c, tv.dot(tv.load(a, [0, 0], [M, K]), tv.load(b, [0, 0], [K, N]), acc), [0, 0])


@tv.kernel
def tile_2d(x: tv.Tensor, out: tv.Tensor, BM: tv.constexpr, BN: tv.constexpr, OP: tv.constexpr):
    m0 = tv.block_id(0) * BM
    n0 = tv.block_id(1) * BN
    if OP == "copy":
        tv.store(out, tv.load(x, [m0, n0], [BM, BN], other=-1), [m0, n0])
    else:
        t = tv.transpose(tv.load(x, [m0, n0], [BM, BN]))
        tv.store(out, t, [n0, m0])


@tv.kernel
def shapes(x: tv.Tensor[tv.i32], out: tv.Tensor[tv.i32], N: tv.constexpr):
    row = tv.arange(0, N)[:, None]
    col = tv.arange(0, N)[None, :]
    grid = row * N + col
    flat = tv.reshape(grid, [N * N])
    tv.store(out, flat + tv.load(x, [0], [N * N]), [0])


@tv.kernel
def view_roundtrip(
    raw: tv.Tensor[tv.u8],
    out: tv.Tensor[tv.u8],
    values: tv.Tensor,
    WTYPE: tv.constexpr,
    BYTES: tv.constexpr,
):
    layout = tv.layouts.spatial(tv.num_threads()) * tv.layouts.local(BYTES)
    b = tv.load(raw, [0], [tv.num_threads() * BYTES], layout=layout)
    v = tv.view(
        b,
        dtype=WTYPE,
        layout=tv.layouts.spatial(tv.num_threads()) * tv.layouts.local(BYTES * 8 // WTYPE.bits),
    )
    tv.store(values, v, [0])
    back = tv.view(v, dtype=tv.u8, layout=layout)
    tv.store(out, back, [0])


@tv.kernel
def shared_roundtrip(x: tv.Tensor, out: tv.Tensor, N: tv.constexpr, SWIZZLE: tv.constexpr):
    layout = tv.layouts.shared_layout([N, N])
    if SWIZZLE:
        layout = layout.swizzled(2, 0, 2)
    smem = tv.shared([N, N], x.dtype, layout)
    tv.store_shared(smem, tv.load(x, [0, 0], [N, N]))
    tv.sync()
    half = N // 2
    quarter = tv.load_shared(smem, [half, 0], [half, N])
    tv.store(out, quarter, [0, 0])
    tv.store_shared(smem, quarter, [0, 0])
    tv.sync()
    tv.store(out, tv.load_shared(smem, [0, 0], [half, N]), [half, 0])


@tv.kernel
def grid_info(out: tv.Tensor[tv.i32], x: tv.Tensor):
    i = tv.block_id(0)
    j = tv.block_id(1)
    k = tv.block_id(2)
    flat = (i * tv.num_blocks(1) + j) * tv.num_blocks(2) + k
    info = tv.zeros([4], tv.i32) + tv.arange(0, 4) * 0
    values = tv.where(
        tv.arange(0, 4) == 0,
        x.shape[0],
        tv.where(
            tv.arange(0, 4) == 1,
            x.shape[1],
            tv.where(tv.arange(0, 4) == 2, x.stride(0), x.stride(1)),
        ),
    )
    tv.store(out, (info + values)[None, :], [flat, 0])


@tv.func
def clamp_add(a, b, limit):
    s = a + b
    return tv.minimum(s, limit)


@tv.kernel
def control_flow(out: tv.Tensor[tv.i32], n: tv.i32, UNROLL: tv.constexpr):
    total = 0
    for i in range(n):
        if i % 3 == 0:
            total += i
        else:
            total -= 1
    count = 0
    while count * count < n:
        count += 1
    acc = tv.zeros([4], tv.i32)
    for u in tv.static_range(UNROLL):
        acc = acc + u
    acc = clamp_add(acc, total, 1000)
    result = acc + count * 10000
    tv.store(out, result, [0])


@tv.kernel
def printing(x: tv.Tensor[tv.i32], out: tv.Tensor[tv.i32]):
    v = tv.load(x, [0], [4])
    tv.static_print("compile time", v)
    tv.print("value", v)
    pinned = tv.annotate(v, tv.layouts.local(4).replicate(tv.num_threads()))
    acc = tv.zeros([4], tv.i32)
    for i in tv.range(0, 3, 1, unroll=2):
        acc = acc + pinned * i
    tv.store(out, acc, [0])


@tv.func
def _pair_at(x, i):
    return tv.load(x, [i * 4], [4]), i


@tv.kernel
def rotate_tuples(x: tv.Tensor[tv.i32], out: tv.Tensor[tv.i32], n: tv.i32):
    """A loop carrying tuples (and a tuple of tuples): what the body reads at iteration i was
    loaded two iterations before, as a software pipeline holds it."""
    cur = _pair_at(x, 0)
    nxt = _pair_at(x, 1)
    total = tv.zeros([4], tv.i32)
    for i in range(n):
        ahead = _pair_at(x, i + 2)
        tile, index = cur
        total = total + tile * (index + 1)
        cur = nxt
        nxt = ahead
    tv.store(out, total, [0])
