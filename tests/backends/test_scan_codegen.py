"""Scans in generated code: CUDA compiles to cubins whose SASS exchanges totals with butterfly
shuffles and meets across warps through shared memory; HIP compiles with hipRTC (gfx90a) and
clang (gfx942), a wave of 64 exchanging across all its lanes; SYCL permutes within sub-groups.
Each lane exchange moves one total per group of slots, not one per slot. (Running them: every
executor in tests/tilevm/test_scan.py, the GPU ones included where there is one.)"""

from __future__ import annotations

import re

import numpy as np
import pytest

import tilevm as tv
from tests.devices import need as _need
from tilevm.backends.cuda import disasm
from tilevm.backends.hip import clang, hiprtc
from tilevm.backends.hip.renderer import HipRenderer
from tilevm.backends.hip.target import amd_target
from tilevm.backends.sycl import renderer as sycl_renderer
from tilevm.backends.sycl.target import intel_target


@tv.func
def product(a, b):
    return a * b


@tv.kernel
def scans(x: tv.Tensor, out: tv.Tensor, N: tv.constexpr, OP: tv.constexpr, REVERSE: tv.constexpr):
    t = tv.load(x, [0], [N])
    if OP == "sum":
        y = tv.cumsum(t, reverse=REVERSE)
    else:
        y = tv.associative_scan(t, 0, product, reverse=REVERSE)
    tv.store(out, y, [0])


# (dtype, op, reverse): sums in f32 from every width, a user combine in the tile's own dtype
CASES = [
    (np.float32, "sum", False),
    (np.float16, "sum", True),
    (np.int8, "sum", False),
    (np.float64, "sum", True),
    (np.float32, "prod", False),
    (np.int32, "prod", True),
]
IDS = [f"{np.dtype(d).name}-{op}-{'rev' if r else 'fwd'}" for d, op, r in CASES]
N = 2048  # with 4 warps: each thread's slots, every lane bit and the warps all scan


def _args(dtype, op: str, reverse: bool):
    x = np.zeros(N, dtype)
    return (x, x.copy()), {"N": N, "OP": op, "REVERSE": reverse, "warps": 4}


@pytest.mark.parametrize("arch", ["sm_80", "sm_90a"])
@pytest.mark.parametrize(("dtype", "op", "reverse"), CASES, ids=IDS)
def test_cuda_scans_compile_to_butterflies_and_one_trip_through_shared_memory(
    dtype, op: str, reverse: bool, arch: str
) -> None:
    args, kwargs = _args(dtype, op, reverse)
    compiled = scans.compile(f"cuda:{arch}", *args, **kwargs)
    assert compiled.binary[:4] == b"\x7fELF"
    source = compiled.source
    masks = sorted({int(m) for m in re.findall(r"__shfl_xor_sync\(0xffffffffu, [^,]+, (\d+)\)",
                                                source)})  # fmt: skip
    assert masks == [1, 2, 4, 8, 16]  # the five lane bits of a warp of 32
    assert source.count("__syncthreads()") == 2  # store the totals, read them: once
    if disasm.find_tool("nvdisasm") is None:
        _need("nvdisasm not found (pip install nvidia-cuda-nvdisasm)")
    sass = compiled.sass()
    assert "SHFL.BFLY" in sass and "BAR.SYNC" in sass and "STS" in sass and "LDS" in sass


def test_lanes_exchange_one_total_per_group_of_slots() -> None:
    """A thread's 16 slots are two groups of 8 consecutive elements (8 per 16-byte access of
    f16): each lane bit shuffles two totals, not sixteen."""
    args, kwargs = _args(np.float16, "sum", False)
    source = scans.emit("cuda", *args, **kwargs)
    body = source[source.index("line 33") :]
    loops = re.findall(r"for \(int tv_g0 = 0; tv_g0 < (\d+); \+\+tv_g0\) \{\n\s+float \w+ = "
                       r"__shfl_xor_sync", body)  # fmt: skip
    assert loops == ["2"] * 5


@pytest.mark.parametrize(("dtype", "op", "reverse"), CASES, ids=IDS)
def test_hip_scans_compile_for_wave64(dtype, op: str, reverse: bool) -> None:
    args, kwargs = _args(dtype, op, reverse)
    for arch in ("gfx90a", "gfx942"):
        source = HipRenderer().render(scans.lower(amd_target(arch), *args, **kwargs).thread)
        masks = {int(m) for m in re.findall(r"tv_shfl_xor<(\d+)>", source)}
        assert masks == {1, 2, 4, 8, 16, 32}  # a wave of 64: six lane bits
        assert "#include" not in source
        if arch == "gfx90a":
            _need(hiprtc.unavailable())
            code = hiprtc.compile_code_object(source, arch, "scans")
        else:
            _need(clang.unavailable())
            code = clang.compile_offline(source, arch, "scans")
        assert code[:4] == b"\x7fELF" and b"scans" in code
    if clang.find_objdump() is not None:
        isa = clang.disassemble(code)
        assert "ds_swizzle" in isa and "ds_bpermute" in isa  # lanes < 32, and across halves


@pytest.mark.parametrize(("dtype", "op", "reverse"), CASES[:3], ids=IDS[:3])
def test_sycl_scans_permute_within_sub_groups(dtype, op: str, reverse: bool) -> None:
    args, kwargs = _args(dtype, op, reverse)
    target = intel_target("xe")
    lowered = scans.lower(target, *args, **kwargs)
    source = sycl_renderer.render(lowered)
    assert "permute_group_by_xor" in source and "__shfl" not in source
    bits = (target.warp_size - 1).bit_length()
    masks = {int(m) for m in re.findall(r"permute_group_by_xor\([^,]+, [^,]+, (\d+)\)", source)}
    assert masks == {1 << b for b in range(bits)}
