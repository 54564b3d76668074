"""RDNA3 (gfx1100, wave32) with WMMA atoms: the fragments lane by lane against AMD's register
maps, dots lowered for gfx1100 executed on the CPU bit for bit like the interpreter, and the
HIP source of the stdlib GEMM compiled by clang for gfx1100 into ``v_wmma`` instructions. In CI
(``CI=true``) a missing clang or llvm-objdump fails instead of skipping."""

from __future__ import annotations

import dataclasses
import re

import ml_dtypes
import numpy as np
import pytest

import tilevm as tv
import tilevm.layouts as tl
from tests.devices import need as _need
from tests.tilevm import kernels as k
from tilevm.backends.hip import clang
from tilevm.backends.hip.renderer import HipRenderer
from tilevm.backends.hip.target import amd_target
from tilevm.layouts.atoms import WMMA_ATOMS, WMMA_F32_16X16X16_BF16, WMMA_F32_16X16X16_F16
from tilevm.lowering import thread_ir as t
from tilevm.stdlib import matmul as mm

WAVE = 32
DTYPES = {"f16": np.float16, "bf16": np.dtype(ml_dtypes.bfloat16)}


def _need_clang_and_objdump() -> None:
    _need(clang.unavailable())
    _need(None if clang.find_objdump() else "no llvm-objdump (apt-get install llvm-19)")


# ----- the fragments --------------------------------------------------------------------------


# Where AMD puts each matrix element of v_wmma_f32_16x16x16_{f16,bf16} in wave32, as the Matrix
# Instruction Calculator's rdna3 register maps give it (matrix element -> VGPR slot and lanes):
# A[i][k] is 16-bit element k of the 8 A VGPRs (VGPR k / 2, half k % 2) in lanes i and i + 16;
# B[k][j] likewise in lanes j and j + 16; the f32 C[i][j] is VGPR i / 2 of lane 16 (i % 2) + j.
def _documented_owners(operand: str, row: int, col: int) -> list[tuple[int, int]]:
    """The (lane, slot) pairs holding element (row, col) of ``operand`` (a: [M, K], b: [K, N],
    c: [M, N]); a slot is the element's position in the fragment's vector."""
    if operand == "a":
        return [(row, col), (row + 16, col)]
    if operand == "b":
        return [(col, row), (col + 16, row)]
    return [(16 * (row % 2) + col, row // 2)]


def _documented_table(operand: str) -> dict[tuple[int, int], tuple[int, int]]:
    """Every (lane, slot) of one wave -> the (row, col) it holds."""
    table = {}
    for row in range(16):
        for col in range(16):
            for owner in _documented_owners(operand, row, col):
                assert owner not in table, f"{operand}: {owner} holds two elements"
                table[owner] = (row, col)
    return table


@pytest.mark.parametrize("atom", WMMA_ATOMS, ids=lambda a: a.name)
@pytest.mark.parametrize("operand", ["a", "b", "c"])
def test_wmma_fragments_match_amds_register_maps(atom: tl.atoms.MmaAtom, operand: str) -> None:
    layout = getattr(atom, operand)
    table = _documented_table(operand)
    slots = 8 if operand == "c" else 16
    assert layout.shape == (16, 16) and layout.num_threads == WAVE
    assert layout.local_size == slots and len(table) == WAVE * slots
    for lane in range(WAVE):
        for slot in range(slots):
            assert layout(lane, slot) == table[lane, slot], (operand, lane, slot)
    for row in range(16):
        for col in range(16):
            assert layout.owners([row, col]) == _documented_owners(operand, row, col)


def test_the_half_waves_replicate_a_and_b_in_the_layout_algebra() -> None:
    atom = WMMA_F32_16X16X16_F16
    assert atom.a.replication == atom.b.replication == 2 and atom.c.replication == 1
    # the replica index is the lane's top bit: lanes l and l + 16 hold the same A row
    assert atom.a == tl.replicate(2, 2) * tl.spatial(16, 1) * tl.local(1, 16)
    assert atom.b == tl.replicate(2, 2) * tl.spatial(1, 16) * tl.local(16, 1)
    assert atom.c == tl.local(8, 1) * tl.spatial(2, 16)
    # replication on the inside (neighbouring lanes) is another layout
    assert atom.a != tl.spatial(16, 1).replicate(2) * tl.local(1, 16)


def test_wmma_atoms_are_the_f16_and_bf16_forms() -> None:
    f16, bf16 = WMMA_ATOMS
    assert (f16, bf16) == (WMMA_F32_16X16X16_F16, WMMA_F32_16X16X16_BF16)
    assert [(a.m, a.n, a.k, a.input_dtypes, a.acc_dtype) for a in WMMA_ATOMS] == [
        (16, 16, 16, ("f16",), "f32"),
        (16, 16, 16, ("bf16",), "f32"),
    ]
    assert [a.intrinsic for a in WMMA_ATOMS] == [
        "wmma_f32_16x16x16_f16",
        "wmma_f32_16x16x16_bf16",
    ]
    assert (f16.a, f16.b, f16.c) == (bf16.a, bf16.b, bf16.c)


# ----- the target -----------------------------------------------------------------------------


def test_the_gfx1100_target_is_wave32_with_wmma() -> None:
    target = amd_target("gfx1100")
    assert target.name == "hip-gfx1100" and target.warp_size == WAVE
    assert (target.max_threads, target.shared_bytes, target.vector_bytes) == (1024, 65536, 16)
    assert target.atoms == WMMA_ATOMS
    assert target.matrix_loads == () and target.async_copy_bytes == ()
    assert all(a.c.num_threads == target.warp_size for a in target.atoms)


@pytest.mark.parametrize("arch", ["gfx90a", "gfx942"])
def test_the_cdna_targets_keep_wave64_and_mfma(arch: str) -> None:
    target = amd_target(arch)
    assert target.warp_size == 64 and target.atoms == tl.atoms.MFMA_ATOMS


def test_an_rdna_arch_without_a_table_is_a_compile_error() -> None:
    with pytest.raises(tv.CompileError) as info:
        amd_target("gfx1030")  # RDNA2: no WMMA
    assert info.value.code == "unsupported-target" and "gfx1100" in info.value.expected


# ----- dots lowered for gfx1100, run on the CPU -----------------------------------------------


def _exact_operands(rng: np.random.Generator, m: int, n: int, kk: int, dtype: str):
    """Sixteenths in [-1, 1] (exact in f16 and bf16) and an f32 accumulator of 256ths: every
    partial sum is a multiple of 2^-8 below 2^8, exact in f32 whatever the summation order, so
    the emulated atoms must give the interpreter's bits."""
    a = (rng.integers(-16, 17, (m, kk)) / 16).astype(DTYPES[dtype])
    b = (rng.integers(-16, 17, (kk, n)) / 16).astype(DTYPES[dtype])
    c = (rng.integers(-4096, 4097, (m, n)) / 256).astype(np.float32)
    return a, b, c


def _calls(node) -> set[str]:
    """Every function the thread program calls."""
    found = set()
    if isinstance(node, t.Call):
        found.add(node.fn)
    if dataclasses.is_dataclass(node):
        for field in dataclasses.fields(node):
            found |= _calls(getattr(node, field.name))
    elif isinstance(node, (list, tuple)):
        for item in node:
            found |= _calls(item)
    return found


SHAPES = [
    pytest.param(64, 32, 64, 4, id="64x32x64-4warps"),
    pytest.param(16, 16, 16, 1, id="16x16x16-1warp"),
]


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
@pytest.mark.parametrize(("m", "n", "kk", "warps"), SHAPES)
def test_a_dot_lowered_for_gfx1100_runs_on_wmma_like_the_interpreter(
    rng: np.random.Generator, dtype: str, m: int, n: int, kk: int, warps: int
) -> None:
    a, b, c = _exact_operands(rng, m, n, kk, dtype)
    lowered = k.dot_op.lower("cpu:amd-gfx1100", a, b, c, M=m, N=n, K=kk, warps=warps)
    calls = _calls(lowered.thread)
    assert f"wmma_f32_16x16x16_{dtype}" in calls and "fma" not in calls, sorted(calls)
    results = {}
    for device in ("interp", "cpu:amd-gfx1100"):
        out = c.copy()
        k.dot_op[1,](a, b, out, M=m, N=n, K=kk, warps=warps, device=device)
        results[device] = out
    exact = a.astype(np.float64) @ b.astype(np.float64) + c
    np.testing.assert_array_equal(results["interp"], exact)
    assert results["cpu:amd-gfx1100"].tobytes() == results["interp"].tobytes()


def test_the_stdlib_gemm_runs_on_emulated_gfx1100(rng: np.random.Generator) -> None:
    m, n, k_ = (int(x) for x in rng.integers(33, 80, size=3))  # ragged edges
    a = rng.standard_normal((m, k_)).astype(np.float16)
    b = np.asfortranarray(rng.standard_normal((k_, n)).astype(np.float16))
    out = np.full((m, n), np.nan, np.float16)
    mm.matmul(a, b, out, config=mm.CONFIGS["small"], device="cpu:amd-gfx1100")
    ref = mm.reference(a, b)
    assert np.linalg.norm(out.astype(np.float64) - ref) / np.linalg.norm(ref) < 2e-3


# ----- HIP source and code objects ------------------------------------------------------------


def _gemm_source(arch: str, dtype: str, config: str) -> str:
    cfg = mm.CONFIGS[config]
    a = np.zeros((256, 512), DTYPES[dtype])
    b = np.zeros((512, 256), DTYPES[dtype])
    c = np.zeros((256, 256), DTYPES[dtype])
    lowered = mm.gemm_kernel.lower(
        amd_target(arch), a, b, c, c, BM=cfg.BM, BN=cfg.BN, BK=cfg.BK, STAGES=cfg.STAGES,
        GROUP_M=cfg.GROUP_M, A_T=False, B_T=False, warps=cfg.warps,
    )  # fmt: skip
    return HipRenderer().render(lowered.thread)


def test_only_kernels_that_call_wmma_carry_its_helpers() -> None:
    rdna = _gemm_source("gfx1100", "f16", "small")
    body = rdna[rdna.index('extern "C" __global__') :]
    assert "tv_wmma_f32_16x16x16_f16(" in body and "tv_mfma" not in body
    assert "__builtin_amdgcn_wmma_f32_16x16x16_f16_w32" in rdna
    assert "#if defined(__GFX11__)" in rdna  # and even then only where gfx11 compiles it
    cdna = _gemm_source("gfx942", "f16", "small")
    assert "wmma" not in cdna and "tv_mfma_f32_" in cdna[cdna.index('extern "C" __global__') :]


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
def test_the_stdlib_gemm_compiles_to_wmma_for_gfx1100(dtype: str) -> None:
    _need_clang_and_objdump()
    source = _gemm_source("gfx1100", dtype, "large")
    code = clang.compile_offline(source, "gfx1100", "gemm_kernel")
    assert code[:4] == b"\x7fELF"
    ops = re.findall(r"\bv_wmma_\w+", clang.disassemble(code))
    # a 64x64 wave tile over BK = 32: 4 x 4 atoms of 16x16, two k16 steps each (clang may
    # duplicate a block that holds one, never drop one)
    assert set(ops) == {f"v_wmma_f32_16x16x16_{dtype}"} and len(ops) >= 32, ops


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
def test_a_small_dot_compiles_to_wmma_for_gfx1100(dtype: str) -> None:
    _need_clang_and_objdump()
    a, b = np.zeros((16, 16), DTYPES[dtype]), np.zeros((16, 16), DTYPES[dtype])
    source = k.dot_op.emit("hip:gfx1100", a, b, np.zeros((16, 16), np.float32),
                           M=16, N=16, K=16, warps=1)  # fmt: skip
    disassembly = clang.disassemble(clang.compile_offline(source, "gfx1100", "dot_op"))
    assert set(re.findall(r"\bv_wmma_\w+", disassembly)) == {f"v_wmma_f32_16x16x16_{dtype}"}
    assert not re.search(r"\bv_(fma|fmac|mfma)_", disassembly)
