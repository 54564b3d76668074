"""The backend registry: the runtime names no backend, every backend answers its own device
names, and a backend added to the registry is used by launches, compiles and tv.devices()
without any change to the runtime."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest

import tilevm as tv
from tilevm.runtime import registry
from tilevm.runtime.backend import Backend

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNTIME_FILES = [ROOT / "tilevm" / "kernel.py", *sorted((ROOT / "tilevm" / "runtime").glob("*.py"))]


# Words that are not backend names where they appear: PackedArray.to("cpu") follows torch's
# Tensor.to, where "cpu" means host memory.
NOT_BACKENDS = {("arrays.py", "cpu")}


def _names_a_backend(text: str) -> bool:
    names = registry.names()
    return text in names or any(text.startswith(n + ":") for n in names)


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            found.add(id(first.value))
    return found


@pytest.mark.parametrize("path", RUNTIME_FILES, ids=lambda p: p.name)
def test_the_runtime_names_no_backend(path: pathlib.Path) -> None:
    tree = ast.parse(path.read_text())
    docstrings = _docstrings(tree)
    # torch names host memory "cpu" (tensor.device.type): that is torch's word, not a backend's
    torch_types = {id(c.comparators[0]) for c in ast.walk(tree) if isinstance(c, ast.Compare)
                   and isinstance(c.left, ast.Attribute) and c.left.attr == "type"}  # fmt: skip
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            modules += [a.name for a in node.names]
            for module in modules:
                if path.name == "registry.py" and module == "tilevm.backends":
                    continue  # the package it finds backends in, not one of them
                assert not module.startswith(("tilevm.backends", "tilevm.interp")), (
                    f"{path.name}:{node.lineno} imports {module}"
                )
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings or id(node) in torch_types:
                continue
            if (path.name, node.value) in NOT_BACKENDS:
                continue
            assert not _names_a_backend(node.value), f"{path.name}:{node.lineno} {node.value!r}"


def test_every_backend_answers_its_own_names() -> None:
    names = registry.names()
    assert len(set(names)) == len(names)
    assert {"interp", "cpu", "cuda"} <= set(names)
    for backend in registry.backends():
        assert registry.backend_for(backend.name) is backend
        assert registry.backend_for(backend.name + ":x") is backend
        for device in backend.devices():
            assert registry.backend_for(device) is backend
    assert tv.devices() == [d for b in registry.backends() for d in b.devices()]
    assert tv.devices()[:2] == ["interp", "cpu"]


def test_an_unknown_device_is_a_clear_error() -> None:
    with pytest.raises(tv.DeviceError) as info:
        registry.backend_for("metal:0")
    assert info.value.code == "no-device" and "'cpu'" in info.value.expected


class _Recording(Backend):
    """A backend that runs kernels through the CPU backend's build, counting what it does."""

    name = "toy"
    order = 99

    def __init__(self) -> None:
        self.cpu = registry.backend_for("cpu")
        self.calls: list[str] = []

    def devices(self) -> list[str]:
        return ["toy:0"]

    def resolve(self, device: str) -> str:
        return "toy:0"

    def target(self, spec: str):
        return self.cpu.target("cpu:amd")  # wave64 lowering: not the CPU's own

    def render(self, lowered, target) -> str:
        self.calls.append("render")
        return self.cpu.render(lowered, target)

    def build(self, ir, lowered, target, spec):
        self.calls.append("build")
        return self.cpu.build(ir, lowered, target, "cpu:amd")

    def accepts(self, value) -> bool:
        return isinstance(value, np.ndarray)

    def tensor(self, value, name):
        return self.cpu.tensor(value, name)

    def launch(self, built, grid, tensors, scalars, device) -> None:
        self.calls.append(f"launch {device}")
        self.cpu.launch(built, grid, tensors, scalars, "cpu:amd")


@tv.kernel
def _twice(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    start = tv.block_id(0) * 256
    tv.store(out, tv.load(x, [start], [256]) * 2.0, [start])


def test_a_registered_backend_is_used_without_runtime_changes(monkeypatch, rng) -> None:
    toy = _Recording()
    known = registry.backends()
    monkeypatch.setattr(registry, "backends", lambda: (*known, toy))
    assert "toy:0" in tv.devices()
    x = rng.standard_normal(1024).astype(np.float32)
    out = np.full_like(x, np.nan)
    _twice[4,](x, out, device="toy")
    np.testing.assert_array_equal(out, x * 2)
    assert toy.calls == ["build", "launch toy:0"]
    assert _twice.emit("toy", x, out) == _twice.emit("cpu:amd", x, out)
    assert toy.calls[-1] == "render"
    with pytest.raises(tv.LaunchTypeError) as info:
        _twice[4,](x.tolist(), out, device="toy")
    assert "must be a tensor" in str(info.value)


def test_device_properties_of_a_name_or_a_tensor() -> None:
    by_name = tv.device_properties("cpu")
    assert by_name == tv.device_properties(np.zeros(4, np.float32))
    assert by_name.multiprocessors >= 1 and by_name.shared_bytes_per_block >= 48 * 1024
    with pytest.raises(tv.DeviceError):
        tv.device_properties("metal:0")


@pytest.mark.parametrize("target", ["cuda:sm_90a", "hip:gfx942", "hip:gfx1100", "sycl:xe"])
def test_every_example_and_stdlib_kernel_emits_without_a_toolchain(target, monkeypatch) -> None:
    """Rendering reads no compiler, driver or device: every backend's availability check is
    made to fail, and every zoo kernel still renders."""
    from tests.kernel_zoo import zoo_calls

    for backend in registry.backends():
        monkeypatch.setattr(type(backend), "unavailable", lambda self: "not on this machine")
    for name, kernel, args, kwargs in zoo_calls():
        assert f" {kernel.__name__}(\n" in kernel.emit(target, *args, **kwargs), name


def test_the_emulated_gpus_are_listed_as_devices() -> None:
    found = tv.devices()
    assert {"cpu:amd", "cpu:cuda", "cpu:intel"} <= set(found)
    x = np.arange(256, dtype=np.float32)
    for device in [d for d in found if d.startswith("cpu:")]:
        out = np.full_like(x, np.nan)
        _twice[1,](x, out, device=device)
        np.testing.assert_array_equal(out, x * 2)
