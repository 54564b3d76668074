"""The AMD and Intel target capabilities, and what the target-neutral dot rules pick on them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import tilevm.dtypes as dt
from tests.tilevm import kernels as k
from tilevm.backends.hip.target import amd_target
from tilevm.backends.sycl.target import intel_target
from tilevm.errors import CompileError
from tilevm.ir.nodes import Instr, Var
from tilevm.ir.types import TileType
from tilevm.layouts import atoms, divide, divisible, local, spatial
from tilevm.lowering import thread_ir as t
from tilevm.lowering.layout_defaults import dot_layout, simt_dot_layout
from tilevm.lowering.layout_rules import SIMT_FMA, dot_atom, dot_candidates, dot_operand_layouts
from tilevm.lowering.pipeline import lower_kernel
from tilevm.runtime.build import facts_of


@pytest.mark.parametrize("arch", ["gfx90a", "gfx940", "gfx941", "gfx942"])
def test_amd_cdna_targets(arch: str) -> None:
    target = amd_target(arch)
    assert target.name == f"hip-{arch}" and target.warp_size == 64
    assert (target.max_threads, target.shared_bytes, target.vector_bytes) == (1024, 65536, 16)
    assert target.atoms == atoms.MFMA_ATOMS
    assert target.matrix_loads == () and target.async_copy_bytes == ()
    assert all(a.c.num_threads == target.warp_size for a in target.atoms)


def test_the_default_amd_target_is_mi300() -> None:
    assert amd_target() == amd_target("gfx942")


@pytest.mark.parametrize("arch", ["gfx908", "gfx1030", "sm_90a", ""])
def test_an_unknown_amd_arch_is_a_compile_error(arch: str) -> None:
    with pytest.raises(CompileError) as info:
        amd_target(arch)
    err = info.value
    assert err.code == "unsupported-target" and err.found == repr(arch)
    assert "gfx942" in err.expected and err.hint


def test_intel_xe_target() -> None:
    target = intel_target()
    assert target.name == "sycl-xe" and target.warp_size == 16
    assert (target.max_threads, target.shared_bytes, target.vector_bytes) == (1024, 65536, 16)
    assert target.atoms == () and target.matrix_loads == () and target.async_copy_bytes == ()
    with pytest.raises(CompileError):
        intel_target("pvc2")


def _dot(m: int, n: int, kk: int, dtype: str, acc: str = "f32") -> Instr:
    """``c = dot(a, b, c)`` on register tiles whose layouts are not chosen yet."""
    a = Var("a", TileType(dt.parse(dtype), (m, kk)))
    b = Var("b", TileType(dt.parse(dtype), (kk, n)))
    c = Var("c", TileType(dt.parse(acc), (m, n)))
    return Instr("dot", Var("d", c.type), (a, b, c))


@pytest.mark.parametrize(
    ("dtype", "atom"),
    [("f16", atoms.MFMA_F32_16X16X16_F16), ("bf16", atoms.MFMA_F32_16X16X16_BF16)],
)
def test_a_64x64_dot_on_four_waves_runs_on_mfma(dtype: str, atom: atoms.MmaAtom) -> None:
    target = amd_target()
    dot = _dot(64, 64, 64, dtype)
    assert [a.name for a in dot_candidates(target, dot)] == [
        atom.name,
        atom.name.replace("16x16x16", "32x32x8"),
    ]
    warps = 4
    acc = dot_layout(dot, warps, warps * target.warp_size, target)
    assert dot_atom(target, dot, acc) is atom
    # waves in a 2x2 grid, each a 2x2 block of 16x16 atoms
    assert divide(acc, atom.c) == spatial(2, 2) * local(2, 2)
    assert acc.num_threads == 256 and acc.replication == 1
    a, b = dot_operand_layouts(acc, 64, atom)
    assert divisible(a, atom.a) and divisible(b, atom.b)
    assert a.shape == (64, 64) and a.num_threads == 256


def test_the_32x32_mfma_takes_a_dot_too_small_in_k_for_16x16x16() -> None:
    target = amd_target("gfx90a")
    dot = _dot(64, 64, 8, "f16")
    acc = dot_layout(dot, 4, 256, target)
    assert dot_atom(target, dot, acc) is atoms.MFMA_F32_32X32X8_F16
    assert divide(acc, atoms.MFMA_F32_32X32X8_F16.c) == spatial(2, 2)  # one atom per wave


def test_dots_without_an_mfma_fall_back_to_simt() -> None:
    amd = amd_target()
    f32 = _dot(64, 64, 64, "f32")  # no f32-input atom in the table
    acc = dot_layout(f32, 4, 256, amd)
    assert dot_atom(amd, f32, acc) is SIMT_FMA and acc == simt_dot_layout((64, 64), 256)
    odd = _dot(64, 64, 4, "f16")  # K too small for either MFMA
    assert dot_candidates(amd, odd) == []


def test_the_intel_target_dots_with_the_simt_multiply_add() -> None:
    target = intel_target()
    dot = _dot(64, 64, 64, "f16")
    assert dot_candidates(target, dot) == []
    threads = 4 * target.warp_size
    acc = dot_layout(dot, 4, threads, target)
    assert acc == simt_dot_layout((64, 64), threads) and acc.num_threads == 64
    assert dot_atom(target, dot, acc) is SIMT_FMA


def _calls(node) -> list[str]:
    """The names of every intrinsic call in a thread-IR tree."""
    found = []
    if isinstance(node, t.Call):
        found.append(node.fn)
    if isinstance(node, (tuple, list)):
        for item in node:
            found += _calls(item)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            found += _calls(getattr(node, f.name))
    return found


def test_a_dot_kernel_lowers_to_mfma_calls_for_gfx942() -> None:
    a, b = np.zeros((64, 64), np.float16), np.zeros((64, 64), np.float16)
    c = np.zeros((64, 64), np.float32)
    specs, _, _ = k.dot_op.specialize((a, b, c), {"M": 64, "N": 64, "K": 64})
    # The frontend builds the VM IR for 32-lane warps; nothing in this kernel depends on it, so
    # the same body is lowered as waves of 64.
    ir = dataclasses.replace(k.dot_op.compile_ir(specs, 4), warp_size=64)
    lowered = lower_kernel(ir, amd_target(), facts_of(specs))
    calls = _calls(lowered.thread.body)
    assert "mfma_f32_16x16x16_f16" in calls and "fma" not in calls
    dot = next(i for i in _walk(lowered.kernel.body) if i.op == "dot")
    assert dot_atom(amd_target(), dot, dot.out.type.layout) is atoms.MFMA_F32_16X16X16_F16


def _walk(body):
    for stmt in body:
        if isinstance(stmt, Instr):
            yield stmt
        for inner in ("body", "then_body", "else_body", "cond_body"):
            yield from _walk(getattr(stmt, inner, ()))
