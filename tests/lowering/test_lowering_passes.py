"""The target-neutral passes on the CPU: layout inference (rules, conversions, errors), shared
memory planning, divisibility, and the inferred program computing what the original does."""

from __future__ import annotations

import numpy as np
import pytest

import tilevm as tv
from tests.tilevm import kernels as k
from tilevm.interp.execute import Interpreter
from tilevm.interp.values import GlobalTensor
from tilevm.ir.nodes import Instr
from tilevm.layouts import local, spatial
from tilevm.layouts.ops import reduce
from tilevm.lowering.divisibility import Divisibility
from tilevm.lowering.infer_layouts import infer_layouts
from tilevm.lowering.layout_rules import dot_operand_layouts
from tilevm.lowering.pipeline import lower_kernel
from tilevm.lowering.plan_shared import plan_shared
from tilevm.lowering.target import Target
from tilevm.runtime.arrays import host_tensor

TARGET = Target("test", warp_size=32)


def _ir(kernel, *args, **kwargs):
    specs, _, _ = kernel.specialize(args, kwargs)
    return kernel.compile_ir(specs, kernel.default_warps)


def _instrs(body):
    for stmt in body:
        if isinstance(stmt, Instr):
            yield stmt
        for inner in ("body", "then_body", "else_body", "cond_body"):
            yield from _instrs(getattr(stmt, inner, ()))


@tv.kernel
def scaled_rows(x: tv.Tensor[tv.f32], s: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    v = tv.load(x, [0, 0], [32, 64])
    scale = tv.load(s, [0, 0], [32, 1])
    total = tv.sum(v * scale, axis=1, keepdims=True)
    tv.store(out, v - total, [0, 0])


def test_loads_get_vector_layouts_and_broadcasts_follow_their_users() -> None:
    ir = infer_layouts(
        _ir(scaled_rows, *(np.zeros(s, np.float32) for s in ((32, 64),) * 3)), TARGET
    )
    by_name = {i.out.name: i.out.type.layout for i in _instrs(ir.kernel.body) if i.out}
    v = by_name["v"]
    assert v.local_modes and v.mode_sizes[v.local_modes[-1]] == 4  # 16-byte runs of f32
    assert by_name["scale"] == reduce(v, [1], keepdims=True)  # no conversion needed
    assert by_name["total"] == reduce(v, [1], keepdims=True)
    assert not ir.conversions


@pytest.fixture
def matmul_kernel():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "examples" / "matmul.py"
    spec = importlib.util.spec_from_file_location("lowering_matmul", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.matmul


def test_shared_memory_operands_take_the_dot_layouts(matmul_kernel) -> None:
    a, b = np.zeros((64, 64), np.float16), np.zeros((64, 64), np.float16)
    ir = infer_layouts(_ir(matmul_kernel, a, b, np.zeros((64, 64), np.float32)), TARGET)
    dot = next(i for i in _instrs(ir.kernel.body) if i.op == "dot")
    want_a, want_b = dot_operand_layouts(dot.out.type.layout, 16)
    assert dot.args[0].type.layout == want_a and dot.args[1].type.layout == want_b
    assert not ir.conversions  # loads from shared memory adopt them


@tv.kernel
def disagree(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], N: tv.constexpr):
    rows = tv.load(x, [0, 0], [N, N], layout=spatial(N, 128 // N) * local(1, N * N // 128))
    cols = tv.annotate(rows, spatial(128 // N, N) * local(N * N // 128, 1))
    tv.store(out, cols + rows, [0, 0])


def test_disagreeing_layouts_convert_through_shared_memory_and_keep_values(
    rng: np.random.Generator,
) -> None:
    x = rng.standard_normal((32, 32)).astype(np.float32)
    ir = _ir(disagree, x, x, N=32)
    inferred = infer_layouts(ir, TARGET)
    assert inferred.conversions
    assert any(i.op == "convert" for i in _instrs(inferred.kernel.body))
    outs = []
    for program in (ir, inferred.kernel):
        out = np.full((32, 32), np.nan, np.float32)
        env = {}
        for param, value in zip(program.params, (x, out)):
            host = host_tensor(value, param.var.name)
            env[param.var] = GlobalTensor(host.dtype, host.codes, host.shape, host.strides)
        Interpreter(program, (1, 1, 1)).run(env)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], 2 * x)


@tv.kernel
def carried_prefetch(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], N: tv.constexpr):
    raw = tv.load(x, [0, 0], [N, N])
    acc = tv.zeros([N, N], tv.f32)
    for i in range(3):
        ahead = tv.load(x, [(i + 1) * N, 0], [N, N])  # the next block, loaded a step early
        acc = acc + tv.annotate(raw, spatial(128 // N, N) * local(N * N // 128, 1))
        raw = ahead
    tv.store(out, acc, [0, 0])


def test_a_value_carried_through_a_loop_is_loaded_in_its_users_layout(rng) -> None:
    """``raw = ahead`` at the end of the body links ``ahead``'s layout to ``raw``'s users, so
    the prefetching load takes it directly: no conversion (and barrier) in the loop."""
    x = rng.standard_normal((128, 32)).astype(np.float32)
    ir = _ir(carried_prefetch, x, np.zeros((32, 32), np.float32), N=32)
    inferred = infer_layouts(ir, TARGET)
    assert not inferred.conversions
    assert not any(i.op == "convert" for i in _instrs(inferred.kernel.body))
    out = np.full((32, 32), np.nan, np.float32)
    carried_prefetch[1, 1](x, out, N=32, device="interp")
    np.testing.assert_allclose(out, x[:32] + x[32:64] + x[64:96], rtol=1e-6)


def test_a_conversion_too_large_for_shared_memory_names_both_instructions() -> None:
    x = np.zeros((32, 32), np.float32)
    tiny = Target("tiny", warp_size=32, shared_bytes=1024)
    with pytest.raises(tv.CompileError) as info:
        lower_kernel(_ir(disagree, x, x, N=32), tiny, {})
    assert info.value.code == "layout-conflict"
    assert "line" in str(info.value) and "4096 bytes" in str(info.value)


@tv.kernel
def two_phases(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    first = tv.shared([32, 32], tv.f32)
    tv.store_shared(first, tv.load(x, [0, 0], [32, 32]))
    tv.sync()
    a = tv.load_shared(first)
    second = tv.shared([32, 32], tv.f32)
    tv.store_shared(second, a + 1.0)
    tv.sync()
    tv.store(out, tv.load_shared(second), [0, 0])


def test_buffers_with_disjoint_lifetimes_share_bytes_after_a_barrier() -> None:
    ir = infer_layouts(
        _ir(two_phases, np.zeros((32, 32), np.float32), np.zeros((32, 32), np.float32)), TARGET
    ).kernel
    plan = plan_shared(ir, TARGET, lambda ins: 0)
    shared = {v.name: v for v in plan.offsets if hasattr(v, "name")}
    assert plan.offsets[shared["first"]] == plan.offsets[shared["second"]] == 0
    assert plan.total == 32 * 32 * 4
    assert shared["second"] in plan.reuse_barrier


def test_buffers_alive_together_do_not_overlap(matmul_kernel) -> None:
    a = np.zeros((64, 64), np.float16)
    ir = infer_layouts(_ir(matmul_kernel, a, a, np.zeros((64, 64), np.float32)), TARGET).kernel
    plan = plan_shared(ir, TARGET, lambda ins: 0)
    spans = sorted((plan.offsets[k], plan.offsets[k] + plan.sizes[k]) for k in plan.offsets)
    assert spans[0][1] <= spans[1][0]  # the A and B tiles live through the whole loop


@tv.kernel
def offsets(x: tv.Tensor[tv.f32], n: tv.i32):
    tv.assume(n % 8 == 0)
    start = tv.block_id(0) * 128
    skew = start + 4
    half = n * 2
    tv.store(x, tv.full([4], 1.0, tv.f32), [start + skew + half])


def test_divisibility_follows_literals_products_sums_and_assumptions() -> None:
    ir = _ir(offsets, np.zeros(8, np.float32), 16)
    facts = Divisibility(ir, {})
    known = {i.out.name: facts.of(i.out) for i in _instrs(ir.body) if i.out is not None}
    assert known["start"] == 128
    assert known["skew"] == 4
    assert known["half"] == 16  # n is a multiple of 8, times 2


def test_dot_picks_the_atom_whose_fragment_divides_and_falls_back_to_simt() -> None:
    from tilevm.backends.cuda.target import cuda_target
    from tilevm.layouts import atoms, divide
    from tilevm.lowering.layout_rules import SIMT_FMA, dot_atom

    sm80 = cuda_target("sm_80")
    for dtype, atom in ((np.float16, atoms.MMA_M16N8K16_F16), (np.int8, atoms.MMA_M16N8K32_S8)):
        acc_dt = np.float32 if dtype == np.float16 else np.int32
        a, b = np.zeros((64, 64), dtype), np.zeros((64, 32), dtype)
        c = np.zeros((64, 32), acc_dt)
        kernel = infer_layouts(_ir(k.dot_op, a, b, c, M=64, N=32, K=64), sm80).kernel
        dot = next(i for i in _instrs(kernel.body) if i.op == "dot")
        assert dot_atom(sm80, dot, dot.out.type.layout) is atom
        quotient = divide(dot.out.type.layout, atom.c)  # 4 warps, each a block of atoms
        assert quotient.num_threads == 4 and quotient.local_size * 4 == 64 * 32 // 128
        want_a, want_b = dot_operand_layouts(dot.out.type.layout, 64, atom)
        assert (dot.args[0].type.layout, dot.args[1].type.layout) == (want_a, want_b)
    # f32 has no atom; a target without atoms gets SIMT for f16 too
    for dtype, target in ((np.float32, sm80), (np.float16, TARGET)):
        a, b = np.zeros((64, 64), dtype), np.zeros((64, 32), dtype)
        kernel = infer_layouts(_ir(k.dot_op, a, b, np.zeros((64, 32), np.float32), M=64, N=32,
                                   K=64), target).kernel  # fmt: skip
        dot = next(i for i in _instrs(kernel.body) if i.op == "dot")
        assert dot_atom(target, dot, dot.out.type.layout) is SIMT_FMA


@tv.kernel
def padded_rows(a: tv.Tensor, c: tv.Tensor, STRIDE: tv.constexpr):
    s = tv.shared([64, 64], tv.f16, layout=tv.layouts.shared_layout([64, 64], [STRIDE, 1]))
    tv.store_shared(s, tv.load(a, [0, 0], [64, 64]))
    tv.sync()
    x = tv.load_shared(s)
    tv.store(c, tv.dot(x, x), [0, 0])


def test_matrix_loads_need_aligned_contiguous_rows(matmul_kernel) -> None:
    from tilevm.backends.cuda.target import cuda_target

    def emit(kernel, *args, **kwargs) -> str:  # the kernel's body, without the helpers
        source = kernel.emit("cuda:sm_80", *args, **kwargs)
        return source[source.index('extern "C"') :]

    a, c = np.zeros((64, 64), np.float16), np.zeros((64, 64), np.float32)
    source = emit(matmul_kernel, a, a, c)
    assert "tv_ldmatrix_x4" in source and "tv_ldmatrix_trans_x4" in source  # A, and B [K, N]
    assert "tv_mma_m16n8k16_f32_f16" in source
    aligned = emit(padded_rows, a, c, STRIDE=72)  # rows start on 16 bytes
    assert "tv_ldmatrix" in aligned
    unaligned = emit(padded_rows, a, c, STRIDE=65)  # they do not: plain loads
    assert "tv_ldmatrix" not in unaligned and "tv_mma_m16n8k16_f32_f16" in unaligned
    assert cuda_target("sm_75").atoms == ()  # mma.sync m16n8k16 with f32 needs sm_80 here
