"""CUDA code generation without a GPU: every example and stdlib kernel lowers and compiles to
cubins for sm_80 and sm_90a; the disassembly shows 128-bit global accesses where the analysis
promises them and none where it cannot; generated source is readable; resource limits give clear
errors."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re

import numpy as np
import pytest

import tilevm as tv
from tests.kernel_zoo import zoo_calls
from tilevm.backends.cuda import disasm

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
ARCHS = ["sm_80", "sm_90a"]


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"codegen_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _f32(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


CALLS = zoo_calls()  # every example and stdlib kernel


def _need_disassembler() -> None:
    if disasm.find_tool("nvdisasm") is None:
        if os.environ.get("CI"):
            pytest.fail("nvdisasm is missing in CI (pip install nvidia-cuda-nvdisasm)")
        pytest.skip("nvdisasm not found (pip install nvidia-cuda-nvdisasm)")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(("name", "kernel", "args", "kwargs"), CALLS, ids=[c[0] for c in CALLS])
def test_every_example_compiles_to_a_cubin(name, kernel, args, kwargs, arch: str) -> None:
    compiled = kernel.compile(f"cuda:{arch}", *args, **kwargs)
    assert compiled.binary[:4] == b"\x7fELF"
    assert compiled.arch == arch
    assert f"void __launch_bounds__({compiled.num_threads}) {kernel.__name__}(" in compiled.source


def _vector_add_sass(*arrays) -> str:
    compiled = _example("vector_add").vector_add.compile("cuda:sm_90a", *arrays)
    return compiled.sass()


def test_aligned_contiguous_tiles_use_128_bit_global_accesses() -> None:
    _need_disassembler()
    sass = _vector_add_sass(_f32(4096), _f32(4096), _f32(4096))
    assert re.search(r"LDG\.E\.128", sass), sass
    assert re.search(r"STG\.E\.128", sass), sass


def test_rows_with_aligned_strides_use_128_bit_accesses() -> None:
    _need_disassembler()
    softmax = _example("softmax").softmax
    sass = softmax.compile("cuda:sm_90a", _f32(33, 512), _f32(33, 512), BLOCK=512).sass()
    assert re.search(r"LDG\.E\.128", sass)


def test_unaligned_or_strided_tensors_get_no_vector_accesses() -> None:
    _need_disassembler()
    misaligned = np.zeros(4097, np.float32)[1:]  # 4 bytes past a 16-byte boundary
    sass = _vector_add_sass(misaligned, _f32(4096), _f32(4096))
    assert "LDG.E.128" in sass  # y still qualifies
    assert len(re.findall(r"LDG\.E\.128", sass)) < len(
        re.findall(r"LDG\.E\.128", _vector_add_sass(_f32(4096), _f32(4096), _f32(4096)))
    )
    odd_rows = _f32(33, 301)[:, :300]  # a row stride of 301 floats: rows are not aligned
    softmax = _example("softmax").softmax
    sass = softmax.compile("cuda:sm_90a", odd_rows, _f32(33, 300), BLOCK=512).sass()
    assert "LDG.E.128" not in sass


def test_generated_source_is_readable() -> None:
    softmax = _example("softmax").softmax
    source = softmax.emit("cuda:sm_90a", _f32(33, 300), _f32(33, 300), BLOCK=512)
    body = source[source.index('extern "C"') :]
    assert "// line " in body and "tv.exp(shifted)" in body  # the Python line, as a comment
    for name in ("row", "shifted", "e[", "x_shape0", "out_stride0"):  # the kernel's own names
        assert name in body
    assert "\n        " in body  # nested blocks are indented


@tv.kernel
def too_much_shared(x: tv.Tensor[tv.f32]):
    big = tv.shared([256, 256], tv.f32)
    tv.store_shared(big, tv.load(x, [0, 0], [256, 256]))
    tv.store(x, tv.load_shared(big), [0, 0])


def test_shared_memory_beyond_the_targets_limit_is_a_clear_error() -> None:
    with pytest.raises(tv.CompileError) as info:
        too_much_shared.emit("cuda:sm_80", _f32(256, 256))
    assert info.value.code == "shared-memory"
    assert "big" in info.value.found and "166912" in str(info.value)


def test_unknown_arch_is_a_clear_error() -> None:
    with pytest.raises(tv.CompileError):
        too_much_shared.emit("cuda:sm_12", _f32(4, 4))


@pytest.mark.parametrize("wtype", [tv.i3, tv.f6e3m2fn], ids=str)
def test_views_of_packed_bytes_become_bit_instructions_in_registers(wtype: tv.DataType) -> None:
    """view + cast of sub-byte weights: funnel shifts, byte permutes and 3-input logic ops, and
    no register array spilled to local memory."""
    _need_disassembler()
    qm = _example("quantized_matmul")
    packed = np.zeros((64, 256 * wtype.bits // 8), np.uint8)
    args = (_f32(20, 256), packed, _f32(64, 4), _f32(20, 64))
    sass = qm.quantized_matmul.compile("cuda:sm_90a", *args, WTYPE=wtype).sass()
    assert re.search(r"\bLOP3\b", sass) and re.search(r"\bPRMT\b", sass)
    assert not re.search(r"\b(LDL|STL)\b", sass)


def test_every_instruction_of_the_printing_kernel_compiles() -> None:
    from tests.tilevm import kernels

    printing = tv.kernel(kernels.printing.fn)  # a fresh compile cache: static_print prints

    x = np.zeros(4, np.int32)
    source = printing.emit("cuda:sm_80", x, x)
    assert 'printf("[block (%d, %d, %d)] value %%v=<tile, below>\\n"' in source


@tv.kernel
def user_names(out: tv.Tensor[tv.i32]):
    acc = tv.zeros([4], tv.i32)
    for i in range(3):  # the same names generated loops would like to use
        tv_i = acc + i
        acc = tv_i
    tv.store(out, acc, [0])


def test_user_names_never_capture_generated_names() -> None:
    source = user_names.emit("cuda:sm_80", np.zeros(4, np.int32))
    body = source[source.index('extern "C"') :]
    assert "for (int i = 0; i < 3; ++i)" in body  # the user's loop keeps its name
    assert "(uint32_t)(i)" in body  # inside, `i` is the user's loop counter
