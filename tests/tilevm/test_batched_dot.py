"""Batched ``tv.dot``: ``[*B, M, K] @ [*B, K, N] (+ [*B, M, N])`` on every executor, against
float64 numpy. Shapes that are multiples of the atoms run on mma.sync (``cpu:cuda``) and MFMA
(``cpu:amd``), emulated from the atoms' fragment layouts; odd shapes and f32 fall back to the
SIMT multiply-add. Fresh random data, outputs poisoned before each launch."""

from __future__ import annotations

import dataclasses
import re
from typing import NamedTuple

import ml_dtypes
import numpy as np
import pytest

import tilevm as tv
from tests.devices import at
from tilevm.backends.cpu.target import target_for
from tilevm.backends.cuda import disasm
from tilevm.backends.cuda.target import cuda_target
from tilevm.ir.nodes import Instr, Var
from tilevm.ir.types import TileType
from tilevm.layouts import atoms, divide, local, spatial
from tilevm.layouts.ops import reshape
from tilevm.lowering import thread_ir as t
from tilevm.lowering.layout_defaults import dot_layout
from tilevm.lowering.layout_rules import SIMT_FMA, dot_atom, dot_operand_layouts

NUMPY = {"f16": np.float16, "bf16": np.dtype(ml_dtypes.bfloat16), "f32": np.float32, "i8": np.int8}
ACC = {"f16": np.float32, "bf16": np.float32, "f32": np.float32, "i8": np.int32}


@tv.kernel
def batched_dot(
    a: tv.Tensor,
    b: tv.Tensor,
    c: tv.Tensor,
    out: tv.Tensor,
    BATCH: tv.constexpr,
    M: tv.constexpr,
    N: tv.constexpr,
    K: tv.constexpr,
    HAS_ACC: tv.constexpr,
):
    origin = [0] * (len(BATCH) + 2)
    x = tv.load(a, origin, list(BATCH) + [M, K])
    y = tv.load(b, origin, list(BATCH) + [K, N])
    acc = tv.load(c, origin, list(BATCH) + [M, N]) if HAS_ACC else None
    tv.store(out, tv.dot(x, y, acc), origin)


class Case(NamedTuple):
    dtype: str
    batch: tuple[int, ...]
    mnk: tuple[int, int, int]
    warps: int
    has_acc: bool
    atoms_on: tuple[str, ...]  # the emulated targets whose matrix atoms the dot runs on


CASES = [
    Case("f16", (2,), (32, 16, 32), 4, True, ("cuda", "amd")),  # warps 2 x (1 x 2)
    Case("bf16", (3,), (16, 16, 32), 1, False, ("cuda", "amd")),
    Case("i8", (2, 2), (16, 16, 32), 2, True, ("cuda",)),  # no 8-bit MFMA in the table
    Case("f16", (8,), (16, 16, 16), 8, False, ("cuda", "amd")),  # one warp per batch element
    Case("bf16", (2, 4), (16, 16, 16), 8, True, ("cuda", "amd")),
    Case("i8", (5,), (32, 32, 32), 4, False, ("cuda",)),  # 5 batch elements: warps over M, N
    Case("f16", (1,), (64, 32, 16), 4, True, ("cuda", "amd")),
    Case("f16", (2,), (12, 10, 6), 2, True, ()),  # odd: SIMT
    Case("f32", (3,), (5, 7, 3), 4, True, ()),  # no f32 atom: SIMT
    Case("f32", (2, 3), (8, 4, 5), 1, False, ()),
]


def _random(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Exact values of ``dtype`` (integers kept small enough not to wrap in i32)."""
    if dtype in ("i8", "i32"):
        return rng.integers(-100, 100, shape, endpoint=True).astype(NUMPY.get(dtype, np.int32))
    return rng.standard_normal(shape).astype(NUMPY[dtype])


def _poisoned(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    fill = np.nan if np.dtype(dtype).kind == "f" else np.iinfo(dtype).min
    return np.full(shape, fill, dtype)


def _check(out: np.ndarray, exact: np.ndarray) -> None:
    """Integers are exact; float sums accumulate in float32 on every executor, the interpreter
    included (docs/language.md, "Accumulation"), so they lie within float32 accumulation's
    error of the exact float64 product (tests/tilevm/test_accumulation.py pins the order)."""
    if out.dtype.kind == "i":
        np.testing.assert_array_equal(out, exact.astype(out.dtype))
    else:
        scale = float(np.abs(exact).max())
        np.testing.assert_allclose(out, exact, rtol=1e-5, atol=1e-5 * scale)


def _intrinsics(node) -> set[str]:
    """The names of every call in a thread-IR tree."""
    if isinstance(node, t.Call):
        return {node.fn} | _intrinsics(node.args)
    if isinstance(node, (tuple, list)):
        return set().union(*(_intrinsics(item) for item in node))
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return set().union(*(_intrinsics(getattr(node, f.name)) for f in dataclasses.fields(node)))
    return set()


def _assert_atoms(device: str, kernel: tv.Kernel, args, warps: int, case: Case, **kw) -> None:
    """On an emulated GPU, the lowered program calls the target's matrix atom, not fma."""
    if not device.startswith("cpu"):
        return
    compiled = kernel.compile(device, *args, warps=warps, **kw)
    calls = _intrinsics(compiled.thread.body)
    vendor = device.partition(":")[2]
    if vendor and vendor in case.atoms_on:
        used = {a.intrinsic for a in target_for(device).atoms} & calls
        assert used and "fma" not in calls, calls
    else:
        assert not {a.intrinsic for a in target_for(device).atoms} & calls


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.dtype}-{c.batch}-{c.mnk}-w{c.warps}")
def test_batched_dot_is_matmul_over_the_batch(
    device: str, case: Case, rng: np.random.Generator
) -> None:
    m, n, k = case.mnk
    a = _random(rng, case.dtype, (*case.batch, m, k))
    b = _random(rng, case.dtype, (*case.batch, k, n))
    acc_name = "i32" if case.dtype == "i8" else "f32"
    c = _random(rng, acc_name, (*case.batch, m, n)).astype(ACC[case.dtype])
    out = _poisoned(c.shape, c.dtype)
    kw = {"BATCH": case.batch, "M": m, "N": n, "K": k, "HAS_ACC": case.has_acc}
    _assert_atoms(device, batched_dot, (a, b, c, out), case.warps, case, **kw)
    at(device, batched_dot[1,])(a, b, c, out, warps=case.warps, **kw)
    exact = np.matmul(a.astype(np.float64), b.astype(np.float64))
    if case.has_acc:
        exact += c.astype(np.float64)
    _check(out, exact)


@tv.kernel
def split_k(
    a: tv.Tensor, b: tv.Tensor, out: tv.Tensor, M: tv.constexpr, N: tv.constexpr,
    K: tv.constexpr, SPLITS: tv.constexpr,
):  # fmt: skip
    """``a @ b`` as ``SPLITS`` partial products over slices of K, then their sum."""
    x = tv.load(a, [0, 0], [M, K])
    y = tv.load(b, [0, 0], [K, N])
    xs = tv.transpose(tv.reshape(x, [M, SPLITS, K // SPLITS]), [1, 0, 2])  # [SPLITS, M, K/S]
    ys = tv.reshape(y, [SPLITS, K // SPLITS, N])
    partial = tv.dot(xs, ys)  # one warp per slice where the warps divide SPLITS
    tv.store(out, tv.sum(partial, axis=0), [0, 0])


@pytest.mark.parametrize(
    ("dtype", "warps", "splits", "mnk"),
    [("f16", 2, 2, (16, 16, 64)), ("bf16", 4, 4, (32, 16, 64)), ("f16", 8, 8, (16, 16, 128)),
     ("f32", 4, 4, (8, 12, 20))],
    ids=lambda v: str(v),
)  # fmt: skip
def test_split_k_partials_per_warp_then_a_cross_warp_sum(
    device: str, dtype: str, warps: int, splits: int, mnk, rng: np.random.Generator
) -> None:
    m, n, k = mnk
    a, b = _random(rng, dtype, (m, k)), _random(rng, dtype, (k, n))
    out = _poisoned((m, n), np.float32)
    kw = {"M": m, "N": n, "K": k, "SPLITS": splits}
    if dtype != "f32":
        case = Case(dtype, (splits,), (m, n, k // splits), warps, False, ("cuda", "amd"))
        _assert_atoms(device, split_k, (a, b, out), warps, case, **kw)
    at(device, split_k[1,])(a, b, out, warps=warps, **kw)
    _check(out, a.astype(np.float64) @ b.astype(np.float64))


@tv.kernel
def shared_operands(
    a: tv.Tensor, bt: tv.Tensor, out: tv.Tensor, BATCH: tv.constexpr, M: tv.constexpr,
    N: tv.constexpr, K: tv.constexpr,
):  # fmt: skip
    """Both operands through 3-D shared tiles; B arrives as [BATCH, N, K] and is transposed."""
    sa = tv.shared([BATCH, M, K], a.dtype)
    sb = tv.shared([BATCH, N, K], bt.dtype)
    tv.store_shared(sa, tv.load(a, [0, 0, 0], [BATCH, M, K]))
    tv.store_shared(sb, tv.load(bt, [0, 0, 0], [BATCH, N, K]))
    tv.sync()
    r = tv.dot(tv.load_shared(sa), tv.transpose(tv.load_shared(sb), [0, 2, 1]))
    tv.store(out, r, [0, 0, 0])


def test_operands_from_3d_shared_tiles(device: str, rng: np.random.Generator) -> None:
    """Matrix loads (ldmatrix) take 2-D tiles only: 3-D ones load element by element, and the
    dot still runs on the atoms."""
    batch, m, n, k = 2, 32, 16, 32
    a, bt = _random(rng, "f16", (batch, m, k)), _random(rng, "f16", (batch, n, k))
    out = _poisoned((batch, m, n), np.float32)
    kw = {"BATCH": batch, "M": m, "N": n, "K": k}
    case = Case("f16", (batch,), (m, n, k), 4, False, ("cuda", "amd"))
    _assert_atoms(device, shared_operands, (a, bt, out), 4, case, **kw)
    at(device, shared_operands[1,])(a, bt, out, warps=4, **kw)
    exact = np.matmul(a.astype(np.float64), np.swapaxes(bt, 1, 2).astype(np.float64))
    _check(out, exact)
    source = shared_operands.emit("cuda:sm_80", a, bt, out, warps=4, **kw)
    body = source[source.index('extern "C"') :]
    assert "tv_mma_m16n8k16_f32_f16" in body and "tv_ldmatrix" not in body


def _need_disassembler() -> None:
    if disasm.find_tool("nvdisasm") is None:
        pytest.skip("nvdisasm not found (pip install nvidia-cuda-nvdisasm)")


def test_a_batched_f16_dot_compiles_to_hmma_for_sm_90a() -> None:
    _need_disassembler()
    batch, m, n, k = (2, 2), 32, 16, 32
    args = (
        np.zeros((*batch, m, k), np.float16),
        np.zeros((*batch, k, n), np.float16),
        np.zeros((*batch, m, n), np.float32),
        np.zeros((*batch, m, n), np.float32),
    )
    kw = {"BATCH": batch, "M": m, "N": n, "K": k, "HAS_ACC": True}
    compiled = batched_dot.compile("cuda:sm_90a", *args, warps=4, **kw)
    assert compiled.binary[:4] == b"\x7fELF"
    assert re.search(r"\bHMMA\.16816\.F32\b", compiled.sass())


def _dot_ins(a_shape, b_shape, dtype: str = "f16", acc: str = "f32") -> Instr:
    """``d = dot(a, b, c)`` on register tiles whose layouts are not chosen yet."""
    parse = tv.dtypes.parse
    a = Var("a", TileType(parse(dtype), tuple(a_shape)))
    b = Var("b", TileType(parse(dtype), tuple(b_shape)))
    c = Var("c", TileType(parse(acc), (*a_shape[:-1], b_shape[-1])))
    return Instr("dot", Var("d", c.type), (a, b, c))


def test_2d_dot_layouts_are_the_ones_chosen_before_batching() -> None:
    sm80 = cuda_target("sm_80")
    dot = _dot_ins((128, 32), (32, 128))
    acc = dot_layout(dot, 4, 128, sm80)
    assert repr(acc) == (
        "spatial(2, 1).local(4, 1).spatial(1, 2).column_local(2, 8).spatial(8, 4).local(1, 2)"
    )
    a, b = dot_operand_layouts(acc, 32, dot_atom(sm80, dot, acc))
    assert repr(a) == (
        "spatial(2, 1).local(4, 1).column_local(2, 4).replicate(2).spatial(8, 4).local(1, 2)"
    )
    assert repr(b) == (
        "replicate(2, rank=2).spatial(1, 2).column_local(4, 8).column_spatial(4, 8).local(2, 1)"
    )
    simt = dot_layout(_dot_ins((64, 64), (64, 64), "f32"), 4, 128, sm80)
    assert repr(simt) == "spatial(8, 16).local(8, 4)"


def test_batched_dot_warps_take_the_batch_first() -> None:
    """8 x [64, 64] on 4 warps: each warp 2 batch elements of a 4 x 8 block of 16x8 atoms; 3
    batch elements do not divide 4 warps, so those form the 2 x 2 grid over M and N."""
    sm80 = cuda_target("sm_80")
    atom = atoms.MMA_M16N8K16_F16
    for batch, quotient in (
        ((8,), spatial(4, 1, 1) * local(2, 4, 8)),
        ((3,), spatial(1, 2, 2) * local(3, 2, 4)),
        ((2, 2), spatial(2, 2, 1, 1) * local(1, 1, 4, 8)),
    ):
        dot = _dot_ins((*batch, 64, 32), (*batch, 32, 64))
        acc = dot_layout(dot, 4, 128, sm80)
        assert dot_atom(sm80, dot, acc) is atom
        unit = [1] * len(batch)  # the atom's fragments, padded to the dot's rank
        assert divide(acc, reshape(atom.c, [*unit, 16, 8])) == quotient
        a, b = dot_operand_layouts(acc, 32, atom)
        assert a.shape == (*batch, 64, 32) and b.shape == (*batch, 32, 64)
        assert divide(a, reshape(atom.a, [*unit, 16, 16])).num_threads == 4
        assert divide(b, reshape(atom.b, [*unit, 16, 8])).num_threads == 4
    f32 = _dot_ins((2, 5, 3), (2, 3, 7), "f32")
    assert dot_atom(sm80, f32, dot_layout(f32, 4, 128, sm80)) is SIMT_FMA


@tv.kernel
def misshapen_dot(a: tv.Tensor, b: tv.Tensor, c: tv.Tensor, MISTAKE: tv.constexpr):
    x = tv.load(a, [0, 0, 0], [2, 16, 8])
    if MISTAKE == "rank":
        tv.dot(tv.sum(x, axis=[0, 1]), tv.load(b, [0, 0, 0], [2, 8, 4]))  # <- error
    elif MISTAKE == "batch":
        tv.dot(x, tv.load(b, [0, 0, 0], [3, 8, 4]))  # <- error
    elif MISTAKE == "inner":
        tv.dot(x, tv.load(b, [0, 0, 0], [2, 4, 8]))  # <- error
    else:
        tv.dot(x, tv.load(b, [0, 0, 0], [2, 8, 4]), tv.load(c, [0, 0], [16, 4]))  # <- error


@pytest.mark.parametrize(
    ("mistake", "words"),
    [
        ("rank", ("rank 2 or more", "[8]", "[1, K]")),
        ("batch", ("batch", "[2, 16, 8] and [3, 8, 4]", "not broadcast")),
        ("inner", ("last dimension, 8", "[2, 16, 8] and [2, 4, 8]", "contracts")),
        ("acc", ("[2, 16, 4]", "[16, 4]", "[*B, M, N]")),
    ],
)
def test_misshapen_operands_are_shape_errors(mistake: str, words: tuple[str, ...]) -> None:
    f16, f32 = np.zeros((3, 16, 8), np.float16), np.zeros((16, 4), np.float32)
    with pytest.raises(tv.ShapeError) as info:
        misshapen_dot[1,](f16, f16, f32, MISTAKE=mistake, device="interp")
    err = info.value
    assert err.code == "shape" and isinstance(err, ValueError)
    text = " ".join(str(part) for part in (err.message, err.expected, err.found, err.hint))
    assert all(w in text for w in words), text
    assert "# <- error" in str(err).splitlines()[1]
