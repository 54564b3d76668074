"""The stdlib GEMM: results against float64 on random (odd) shapes and both operand orders, on
every executor; its CUDA code uses the tensor-core path (HMMA fed by LDSM, cp.async copies)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import ml_dtypes
import numpy as np
import pytest

import tilevm as tv
from tests.devices import DEVICES, run
from tilevm.backends.cuda import disasm
from tilevm.stdlib import matmul as mm

BF16 = np.dtype(ml_dtypes.bfloat16)


def _operands(rng, m, n, k, dtype, a_cols: bool, b_cols: bool):
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    return (np.asfortranarray(a) if a_cols else a), (np.asfortranarray(b) if b_cols else b)


def _rel(out, ref) -> float:
    out = np.asarray(out, dtype=np.float64)
    assert not np.isnan(out).any(), "unwritten output"
    return float(np.linalg.norm(out - ref) / np.linalg.norm(ref))


@pytest.mark.parametrize(("a_cols", "b_cols"), [(False, False), (True, False), (False, True),
                                                (True, True)])  # fmt: skip
@pytest.mark.parametrize("dtype", [np.float16, BF16], ids=["f16", "bf16"])
def test_interpreter_matches_float64(rng, dtype, a_cols: bool, b_cols: bool) -> None:
    m, n, k = (int(x) for x in rng.integers(1, 80, size=3))
    a, b = _operands(rng, m, n, k, dtype, a_cols, b_cols)
    out = np.full((m, n), np.nan, dtype)
    mm.matmul(a, b, out, config=mm.CONFIGS["small"], device="interp")
    assert _rel(out, mm.reference(a, b)) < (2e-3 if dtype == np.float16 else 1e-2)


def test_interpreter_takes_the_heuristic_config(rng) -> None:
    m, n, k = (int(x) for x in rng.integers(17, 33, size=3))
    a, b = _operands(rng, m, n, k, np.float16, a_cols=False, b_cols=True)
    out = np.full((m, n), np.nan, np.float16)
    mm.matmul(a, b, out, device="interp")
    assert _rel(out, mm.reference(a, b)) < 2e-3
    chosen = mm.gemm_tuned.best_config(a, b.T, out, out, A_T=False, B_T=True, device="interp")
    assert chosen == mm.choose_config(m, n, k).to_config() == mm.CONFIGS["narrow"].to_config()


@pytest.mark.parametrize("device", ["cpu", "cpu:amd"])
def test_untuned_skinny_matmul_fits_the_devices_shared_memory(rng, monkeypatch, device) -> None:
    # M <= 16 took skinny-k256 (120 KiB of rings) everywhere: over cpu's 96 and cpu:amd's 64 KiB
    monkeypatch.setenv("TILEVM_AUTOTUNE", "0")
    m, n, k = 5, 40, 300
    a, b = _operands(rng, m, n, k, np.float16, a_cols=False, b_cols=False)
    out = np.full((m, n), np.nan, np.float16)
    mm.matmul(a, b, out, device=device)
    assert _rel(out, mm.reference(a, b)) < 2e-3
    chosen = mm.gemm_tuned.best_config(a, b, out, out, A_T=False, B_T=False, device=device)
    limit = tv.device_properties(device).shared_bytes_per_block
    assert chosen != mm.CONFIGS["skinny-k256"].to_config()
    assert mm.GemmConfig(*(chosen.constexprs[x] for x in ("BM", "BN", "BK", "STAGES")),
                         chosen.warps).shared_bytes() <= limit  # fmt: skip
    assert mm.choose_config(m, n, k) == mm.CONFIGS["skinny-k256"]  # no limit: the GPU's pick


def test_tuned_matmul_on_the_cpu_matches_float64(rng, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TILEVM_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TILEVM_AUTOTUNE", raising=False)
    m, n, k = (int(x) for x in rng.integers(33, 65, size=3))  # two configs fit: 32x64, 32x32
    a, b = _operands(rng, m, n, k, np.float16, a_cols=True, b_cols=False)
    out = np.full((m, n), np.nan, np.float16)
    mm.matmul(a, b, out, device="cpu")
    assert _rel(out, mm.reference(a, b)) < 2e-3
    timings = mm.gemm_tuned.timings
    assert set(timings) == {mm.CONFIGS["narrow"].to_config(), mm.CONFIGS["small"].to_config()}
    best = mm.gemm_tuned.best_config(a.T, b, out, out, A_T=True, B_T=False, device="cpu")
    assert best == min(timings, key=timings.__getitem__)


def test_pruning_keeps_the_tiles_that_fit_the_problem() -> None:
    configs = list(mm.gemm_tuned.configs)

    def kept(m: int, n: int, k: int, a_t: bool = False) -> set[tuple[int, int, int]]:
        a = SimpleNamespace(shape=(k, m) if a_t else (m, k))
        fits = mm.prune_configs(configs, a=a, b=None, c=SimpleNamespace(shape=(m, n)), A_T=a_t)
        return {(c.BM, c.BN, c.BK) for c in fits}

    assert kept(4096, 4096, 4096) == {(c.BM, c.BN, c.BK) for c in configs}
    assert kept(16, 8192, 8192) == {(16, 64, 128), (16, 64, 256)}
    assert kept(100, 8192, 8192, a_t=True) == kept(4096, 4096, 4096)  # K from A's rows
    assert kept(64, 8192, 8192) == {
        (64, 128, 32), (16, 64, 128), (16, 64, 256), (32, 64, 64), (32, 32, 32)
    }  # fmt: skip
    assert kept(40, 48, 56) == {(32, 64, 64), (32, 32, 32)}
    assert kept(1, 1, 1) == {(32, 32, 32)}  # nothing fits: the smallest tile


def _gpu():
    import torch

    return torch


@pytest.mark.skipif("cuda" not in DEVICES, reason="needs a CUDA GPU")
@pytest.mark.parametrize("trial", range(6))
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cuda_matches_float64_on_random_shapes(rng, trial: int, dtype: str) -> None:
    torch = _gpu()
    m, n, k = (int(x) for x in rng.integers(1, 700, size=3))
    if trial == 0:
        m, n, k = 16, 1000, 1024  # the skinny path
    a_cols, b_cols = bool(trial & 1), bool(trial & 2)
    tdt = getattr(torch, dtype)
    a = torch.randn(m, k, device="cuda", dtype=tdt)
    b = torch.randn(k, n, device="cuda", dtype=tdt)
    a = a.t().contiguous().t() if a_cols else a
    b = b.t().contiguous().t() if b_cols else b
    for name in ("tuned", "large", "skinny", "small"):
        cfg = None if name == "tuned" else mm.CONFIGS[name]
        out = torch.full((m, n), float("nan"), device="cuda", dtype=tdt)
        mm.matmul(a, b, out, config=cfg)
        torch.cuda.synchronize()
        ref = (a.double() @ b.double()).cpu().numpy()
        err = _rel(out.double().cpu().numpy(), ref)
        assert err < (2e-3 if dtype == "float16" else 1e-2), f"{name}: {m}x{n}x{k} {err:.2e}"


def _sass(arch: str, dtype, cfg: mm.GemmConfig, a_t=False, b_t=False, k: int = 4096) -> str:
    a = np.zeros((k, 256) if a_t else (256, k), dtype)
    b = np.zeros((256, k) if b_t else (k, 256), dtype)
    c = np.zeros((256, 256), dtype)
    kernel = mm.gemm_kernel.compile(
        f"cuda:{arch}", a, b, c, c, BM=cfg.BM, BN=cfg.BN, BK=cfg.BK, STAGES=cfg.STAGES,
        GROUP_M=cfg.GROUP_M, A_T=a_t, B_T=b_t, warps=cfg.warps,
    )  # fmt: skip
    return kernel.sass()


def _count(sass: str, op: str) -> int:
    return len(re.findall(rf"\b{op}\b", sass))


@pytest.mark.parametrize("arch", ["sm_80", "sm_90a"])
@pytest.mark.parametrize("dtype", [np.float16, BF16], ids=["f16", "bf16"])
@pytest.mark.parametrize(("a_t", "b_t"), [(False, False), (True, True)])
def test_gemm_compiles_to_tensor_core_instructions(arch, dtype, a_t, b_t) -> None:
    if disasm.find_tool("cuobjdump") is None:
        pytest.skip("cuobjdump not found (pip install nvidia-cuda-cuobjdump)")
    sass = _sass(arch, dtype, mm.CONFIGS["large"], a_t, b_t)
    ops = re.findall(r"\b(HMMA\.\w+(?:\.\w+)*|LDSM\.\w+(?:\.\w+)*|LDGSTS\.\w+(?:\.\w+)*)", sass)
    # a 64x64 warp tile over BK = 32: 4 x 8 atoms of 16x8, two k16 steps each
    assert sum(op.startswith("HMMA.16816.F32") for op in ops) == 64, sorted(set(ops))
    assert any(op.startswith("LDSM.16.M88.4") for op in ops)
    if a_t or b_t:
        assert any(op.startswith("LDSM.16.MT88.4") for op in ops)
    assert any(op.startswith("LDGSTS.E.BYPASS.128") for op in ops)
    assert _count(sass, "LDL") == 0 and _count(sass, "STL") == 0  # fragments stay in registers
    assert _count(sass, "FFMA") == 0  # no SIMT fallback


def test_unaligned_rows_fall_back_to_narrower_copies() -> None:
    if disasm.find_tool("cuobjdump") is None:
        pytest.skip("cuobjdump not found (pip install nvidia-cuda-cuobjdump)")
    # A's rows (K = 4098 halves) are only 4-byte aligned; B's (256 halves) are 16-byte aligned
    sass = _sass("sm_80", np.float16, mm.CONFIGS["small"], k=4098)
    assert _count(sass, "HMMA.16816.F32") > 0
    assert re.search(r"LDGSTS\.E(\.ZFILL)? ", sass)  # 4-byte asynchronous copies for A
    assert "LDGSTS.E.BYPASS.128" in sass  # 16-byte ones for B


def test_bad_operands_are_clear_errors() -> None:
    a = np.ones((4, 8), np.float32)
    with pytest.raises(tv.LaunchTypeError, match="float16 or bfloat16"):
        mm.matmul(a, a.T)
    h = np.ones((4, 8), np.float16)
    with pytest.raises(tv.LaunchError, match="inner dimensions"):
        mm.matmul(h, h)
    with pytest.raises(tv.LaunchError, match="output shape"):
        mm.matmul(h, h.T.copy(), np.empty((3, 3), np.float16))
    strided = np.ones((8, 16), np.float16)[::2, ::2]
    with pytest.raises(tv.LaunchError, match="row- or column-major"):
        mm.matmul(strided, np.ones((8, 4), np.float16))


@tv.func
def _gelu_tanh(x):
    return 0.5 * x * (1.0 + tv.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


def _gelu_reference(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


@pytest.mark.parametrize("device", DEVICES)
def test_fused_bias_and_activation(rng, device: str) -> None:
    """``gelu(a @ b + bias)`` in one kernel: the bias row and the activation act on the f32
    accumulator, and the result is rounded once, on every executor and odd shapes."""
    m, n, k = (int(x) for x in rng.integers(17, 70, size=3))
    a, b = _operands(rng, m, n, k, np.float16, a_cols=False, b_cols=False)
    bias = rng.standard_normal(n).astype(np.float32)

    def fused(a, b, out, bias, device):
        mm.matmul(a, b, out, bias=bias, epilogue=_gelu_tanh, config=mm.CONFIGS["small"],
                  device=device)  # fmt: skip

    def plain(a, b, out, device):
        mm.matmul(a, b, out, config=mm.CONFIGS["small"], device=device)

    out = np.full((m, n), np.nan, np.float16)
    run(fused, a, b, out, bias, device=device)  # (torch CUDA tensors on a GPU)
    assert _rel(out, _gelu_reference(mm.reference(a, b, bias))) < 2e-3
    same = np.full((m, n), np.nan, np.float16)  # the same kernel without them is unchanged
    run(plain, a, b, same, device=device)
    assert _rel(same, mm.reference(a, b)) < 2e-3


def test_epilogue_errors(rng) -> None:
    a, b = _operands(rng, 8, 8, 8, np.float16, a_cols=False, b_cols=False)
    with pytest.raises(tv.LaunchError, match="bias shape") as info:
        mm.matmul(a, b, bias=np.zeros(7, np.float32), device="interp")
    assert "length N = 8" in str(info.value)
    with pytest.raises(tv.LaunchTypeError, match="@tv.func"):
        mm.matmul(a, b, epilogue=lambda x: x, device="interp")
