"""The CPU backend itself: how a block program is cut, where variables live, which emulation
routines an emulated target's dots use, the object cache, parallel blocks, traps and errors.
The kernel suite (tests/tilevm) runs on every CPU executor as well."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tilevm as tv
from tilevm.backends.cpu import program as bp
from tilevm.backends.cpu.codegen import render
from tilevm.backends.cpu.target import cpu_target, target_for
from tilevm.lowering.pipeline import lower_kernel
from tilevm.runtime.build import facts_of


@tv.kernel
def row_sum(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], BLOCK: tv.constexpr):
    row = tv.block_id(0)
    v = tv.load(x, [row, 0], [1, BLOCK])
    tv.store(out, tv.sum(v, axis=1), [row])


@tv.kernel
def scale(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], alpha: tv.f32, BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK
    tv.store(out, tv.load(x, [start], [BLOCK]) * alpha, [start])


@tv.kernel
def dot16(a: tv.Tensor, b: tv.Tensor, c: tv.Tensor[tv.f32], M: tv.constexpr, N: tv.constexpr,
          K: tv.constexpr):  # fmt: skip
    acc = tv.dot(tv.load(a, [0, 0], [M, K]), tv.load(b, [0, 0], [K, N]), tv.zeros([M, N], tv.f32))
    tv.store(c, acc, [0, 0])


@tv.kernel
def while_with_barriers(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], limit: tv.f32):
    """A block-level while loop whose body reduces (shuffles, shared memory, barriers) and
    whose exit depends on the reduced value."""
    v = tv.load(x, [0], [256])
    rounds = 0
    total = tv.sum(v, axis=0)
    while total >= limit:
        v = v * 0.5
        total = tv.sum(v, axis=0)
        rounds += 1
    tv.store(out, tv.full([1], rounds, tv.f32), [0])
    tv.store(out, tv.full([1], total, tv.f32), [1])


@tv.kernel
def stepped(out: tv.Tensor[tv.i32], step: tv.i32):
    total = 0
    for i in tv.range(0, 10, step):
        total += i
    tv.store(out, tv.full([1], total, tv.i32), [0])


@tv.kernel
def pack_values(x: tv.Tensor[tv.i32], out: tv.Tensor[tv.i3], BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK
    tv.store(out, tv.load(x, [start], [BLOCK]).to(tv.i3), [start])


def _program(kernel, args, kwargs, device="cpu", warps=4):
    target = target_for(device)
    specs, _, _ = kernel.specialize(args, kwargs)
    ir = kernel.compile_ir(specs, warps, target.warp_size)
    thread = lower_kernel(ir, target, facts_of(specs)).thread
    return thread, target


def _regions(nodes):
    out = []
    for n in nodes:
        if isinstance(n, bp.Region):
            out.append(n)
        for attr in ("body", "then", "orelse"):
            out += _regions(getattr(n, attr, []) or [])
    return out


def test_an_elementwise_kernel_is_one_region_with_thread_local_variables() -> None:
    x = np.zeros(1024, np.float32)
    thread, target = _program(scale, (x, x, 2.0), {"BLOCK": 512})
    program = bp.block_program(thread, target)
    assert len(program.body) == 1 and isinstance(program.body[0], bp.Region)
    module = render(thread, target)
    assert module.workspace_bytes == 0  # nothing lives across a cut: no per-thread copies


def test_shuffles_and_barriers_cut_the_thread_loop() -> None:
    x = np.zeros((4, 256), np.float32)
    thread, target = _program(row_sum, (x, x[:, 0].copy()), {"BLOCK": 256})
    program = bp.block_program(thread, target)
    regions = _regions(program.body)
    gathers = [s for r in regions for s in r.stmts if isinstance(s, bp.Gather)]
    # a 128-thread block sums within warps (5 shuffles of 32 lanes), then across warps
    # through shared memory between two barriers
    assert len(gathers) == 5 and len(regions) >= 7
    assert all(program.gathers[g.name] is not None for g in gathers)  # values, not pointers
    module = render(thread, target)
    assert module.workspace_bytes > 0  # the partial sums live across the cuts


@pytest.mark.parametrize(
    ("device", "routine"),
    [
        ("cpu", None),
        ("cpu:cuda", "tv_emulate_mma_m16n8k16_f32_f16"),
        ("cpu:amd", "tv_emulate_mfma_f32_16x16x16_f16"),
    ],
)
def test_emulated_targets_run_their_matrix_atoms(device: str, routine: str | None, rng) -> None:
    a = rng.standard_normal((32, 32)).astype(np.float16)
    b = rng.standard_normal((32, 32)).astype(np.float16)
    c = np.full((32, 32), np.nan, np.float32)
    compiled = dot16.compile(device, a, b, c, M=32, N=32, K=32)
    if routine is None:
        assert "tv_emulate" not in compiled.source  # the CPU's own dots are multiply-adds
    else:
        assert f'call void @"{routine}"' in compiled.source
    dot16[1,](a, b, c, M=32, N=32, K=32, device=device)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(c, ref, rtol=1e-5, atol=1e-4)


def test_amd_emulation_uses_wave64_blocks() -> None:
    a = np.zeros((32, 32), np.float16)
    c = np.zeros((32, 32), np.float32)
    compiled = dot16.compile("cpu:amd", a, a, c, M=32, N=32, K=32, warps=2)
    assert compiled.num_threads == 128 and compiled.target.warp_size == 64


@pytest.mark.parametrize("device", ["cpu", "cpu:cuda", "cpu:amd", "cpu:intel"])
def test_a_while_loop_around_reductions(device: str, rng) -> None:
    x = (rng.random(256) + 0.5).astype(np.float32)
    results = {}
    for dev in ("interp", device):
        out = np.full(2, np.nan, np.float32)
        while_with_barriers[1,](x, out, 1.0, device=dev)
        results[dev] = out
    rounds = 0
    v = x.astype(np.float64)
    total = v.sum()
    while total >= 1.0:
        v = v * 0.5
        total = v.sum()
        rounds += 1
    assert results["interp"][0] == results[device][0] == rounds
    np.testing.assert_allclose(results[device][1], total, rtol=1e-5)


def test_many_blocks_on_several_threads_pack_sub_byte_values(monkeypatch, rng) -> None:
    """Blocks share bytes of a packed i3 output; parallel blocks must not lose each other's
    bits (the stores are atomic)."""
    monkeypatch.setenv("TILEVM_CPU_THREADS", "4")
    n = 64 * 301 + 5
    x = rng.integers(-4, 4, n).astype(np.int32)
    out = tv.PackedArray.from_values(rng.integers(-4, 4, n), tv.i3)  # random, not zeros
    pack_values[tv.cdiv(n, 64),](x, out, BLOCK=64, warps=1)
    np.testing.assert_array_equal(out.values(), x)


def test_a_zero_step_stops_the_kernel_with_a_clear_error() -> None:
    out = np.zeros(1, np.int32)
    stepped[1,](out, 3)
    assert out[0] == 0 + 3 + 6 + 9
    with pytest.raises(tv.LaunchError, match="trap") as info:
        stepped[1,](out, 0)
    assert info.value.code == "trap"


def test_an_unknown_emulated_target_is_a_device_error() -> None:
    x = np.zeros(8, np.float32)
    with pytest.raises(tv.DeviceError, match="cannot emulate") as info:
        scale[1,](x, x, 1.0, BLOCK=8, device="cpu:tpu")
    assert "cpu:amd" in info.value.expected
    with pytest.raises(tv.CompileError, match="gfx1030"):
        scale[1,](x, x, 1.0, BLOCK=8, device="cpu:amd-gfx1030")


def test_numpy_inputs_run_on_the_cpu_by_default() -> None:
    assert tv.devices()[:2] == ["interp", "cpu"]
    x = np.arange(300, dtype=np.float32)
    out = np.full(300, np.nan, np.float32)
    scale[tv.cdiv(300, 128),](x, out, 3.0, BLOCK=128)
    np.testing.assert_array_equal(out, x * 3)
    key = next(k for k in scale._binaries if k[-1] == "cpu")
    assert scale._binaries[key][0].built.device == "cpu"


def test_object_code_is_cached_on_disk_across_processes(tmp_path) -> None:
    script = textwrap.dedent(
        """
        import numpy as np, tilevm as tv
        from tests.backends.test_cpu_backend import scale
        x = np.arange(64, dtype=np.float32); out = np.zeros(64, np.float32)
        compiled = scale.compile("cpu", x, out, 2.0, BLOCK=64)
        scale[1,](x, out, 2.0, BLOCK=64)
        assert (out == 2 * x).all()
        print("cached" if compiled.cached else "compiled")
        """
    )
    env = {"TILEVM_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    runs = [
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            check=True,
        ).stdout.strip()  # fmt: skip
        for _ in range(2)
    ]
    assert runs == ["compiled", "cached"]
    assert any(p.is_file() for p in tmp_path.rglob("*"))


def test_the_llvm_ir_keeps_the_kernel_name_and_vectorizes_the_thread_loop() -> None:
    x = np.zeros(4096, np.float32)
    compiled = scale.compile("cpu", x, x, 2.0, BLOCK=1024)
    assert 'define void @"scale_blocks"(' in compiled.source
    assert compiled.target == cpu_target()
    optimized = compiled.optimized_ir()
    assert "<4 x float>" in optimized or "<8 x float>" in optimized or "<16 x float>" in optimized


def test_repeat_launches_on_numpy_arrays_take_the_fast_path(rng) -> None:
    scale._fast.clear()
    x = rng.standard_normal(256).astype(np.float32)
    out = np.full(256, np.nan, np.float32)
    scale[2,](x, out, 2.0, BLOCK=128)
    assert len(scale._fast.entries) == 1
    y = rng.standard_normal(256).astype(np.float32)
    scale[2,](y, out, -3.0, BLOCK=128)  # new data and scalar: the same entry runs
    assert len(scale._fast.entries) == 1
    np.testing.assert_array_equal(out, y * np.float32(-3.0))
    strided = np.full(512, np.nan, np.float32)
    scale[2,](y, strided[::2], 0.5, BLOCK=128)  # other strides: a new specialization
    assert len(scale._fast.entries) == 2
    np.testing.assert_array_equal(strided[::2], y * np.float32(0.5))
    assert np.isnan(strided[1::2]).all()
