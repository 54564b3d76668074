"""The repeat-launch path: parameters packed in one buffer, scalars range-checked as the full
path checks them, and (on a GPU) repeat launches that give the same results as first ones."""

from __future__ import annotations

import ctypes
import struct
import sys

import numpy as np
import pytest
import torch

import tilevm as tv
from tilevm.backends.cuda import driver
from tilevm.runtime.fast_launch import _MISS as FAST_MISS
from tilevm.runtime.fast_launch import FastPath, ParamPacker, scalar_arg


def gpu(test):
    """A test that needs a CUDA GPU: marked ``gpu`` (``-m gpu`` or ``-k gpu`` selects it) and
    skipped without one."""
    needs = pytest.mark.skipif(not driver.available(), reason="needs a CUDA GPU")
    return pytest.mark.gpu(needs(test))


def _slots(packer: ParamPacker, count: int) -> list[bytes]:
    raw = bytes(packer.buffer)
    pointers = [packer.pointers[i] for i in range(count)]
    base = ctypes.addressof(packer.buffer)
    assert pointers == [base + 8 * i for i in range(count)]
    return [raw[8 * i : 8 * i + 8] for i in range(count)]


def test_parameters_pack_into_8_byte_slots(rng: np.random.Generator) -> None:
    x = torch.from_numpy(rng.random((6, 10)).astype(np.float32))[:, ::2]
    plan = [("tensor", 0, -1, 64), ("dim", 0, 0, 32), ("stride", 0, 0, 32),
            ("stride", 0, 1, 64), ("scalar", 1, -1, 32), ("scalar", 2, -1, 16),
            ("scalar", 3, -1, 64)]  # fmt: skip
    packer = ParamPacker(plan, {1: tv.f32, 2: tv.bf16, 3: tv.u64})
    reads = [(x.data_ptr(), x.shape, x.stride()), None, None, None]
    assert packer.pack([x, 0.1, 1.5, 2**64 - 3], reads)
    slots = _slots(packer, len(plan))
    assert struct.unpack("<Q", slots[0])[0] == x.data_ptr()
    assert struct.unpack("<i", slots[1][:4])[0] == 6
    assert struct.unpack("<i", slots[2][:4])[0] == 10
    assert struct.unpack("<q", slots[3])[0] == 2
    assert slots[4][:4] == bytes(ctypes.c_float(0.1))  # rounded as the full path rounds
    assert slots[5][:2] == bytes(scalar_arg(tv.bf16, 1.5))
    assert struct.unpack("<Q", slots[6])[0] == 2**64 - 3


@pytest.mark.parametrize(
    ("dtype", "value"),
    [(tv.f32, 1e40), (tv.i32, 2**31), (tv.u32, -1), (tv.i64, 2**63), (tv.f16, 1e6),
     (tv.i8, 200), (tv.i32, 2.5)],  # fmt: skip
)
def test_a_scalar_that_does_not_fit_sends_the_launch_to_the_full_path(dtype, value) -> None:
    packer = ParamPacker([("scalar", 0, -1, dtype.bits)], {0: dtype})
    assert scalar_arg(dtype, value) is None  # the full path's verdict
    assert not packer.pack([value], [None])


@pytest.mark.parametrize(("dtype", "value"), [(tv.f32, float("inf")), (tv.f32, float("nan")),
                                              (tv.i32, -(2**31)), (tv.u8, 255), (tv.i32, True)])
def test_values_the_full_path_accepts_pack(dtype, value) -> None:  # fmt: skip
    packer = ParamPacker([("scalar", 0, -1, dtype.bits)], {0: dtype})
    assert packer.pack([value], [None])
    assert bytes(packer.buffer)[: ctypes.sizeof(scalar_arg(dtype, value))] == bytes(
        scalar_arg(dtype, value)
    )


@tv.kernel
def axpy(x: tv.Tensor, y: tv.Tensor, out: tv.Tensor, a: tv.f32, n: tv.i32, BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK
    v = tv.load(x, [start], [BLOCK]).to(tv.f32) * a + tv.load(y, [start], [BLOCK]).to(tv.f32)
    v = tv.where(tv.arange(0, BLOCK) + start < n, v, -1.0)
    tv.store(out, v.to(out.dtype), [start])


@gpu
def test_repeat_launches_on_the_gpu_match_first_ones(rng: np.random.Generator) -> None:
    axpy._fast.clear()
    n = 1000
    for _ in range(4):  # the first launch takes the full path, the rest the repeat path
        x, y = (torch.from_numpy(rng.random(n).astype(np.float32)).cuda() for _ in range(2))
        out = torch.full((n,), float("nan"), device="cuda")
        a = float(rng.random())
        axpy[tv.cdiv(n, 256),](x, y, out, a, n, BLOCK=256)
        want = a * x.double() + y.double()
        torch.testing.assert_close(out.double(), want, rtol=1e-6, atol=1e-6)
    assert len(axpy._fast.entries) == 1
    with pytest.raises(tv.TilevmError, match="f32"):  # out of range on the repeat path
        axpy[tv.cdiv(n, 256),](x, y, out, 1e40, n, BLOCK=256)


@gpu
def test_repeat_launches_run_on_the_current_stream(rng: np.random.Generator) -> None:
    n = 1 << 20
    x, y = (torch.from_numpy(rng.random(n).astype(np.float32)).cuda() for _ in range(2))
    out = torch.full((n,), float("nan"), device="cuda")
    axpy[n // 256,](x, y, out, 2.0, n, BLOCK=256)  # the full path: records an entry
    out.fill_(float("nan"))
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(100_000_000)  # the side stream is busy for a while
        axpy[n // 256,](x, y, out, 2.0, n, BLOCK=256)  # queued behind the sleep
    snapshot = out.clone()  # on the default stream: before the queued launch has run
    torch.cuda.default_stream().synchronize()
    assert torch.isnan(snapshot).all(), "the repeat launch did not go to the current stream"
    side.synchronize()
    torch.testing.assert_close(out, 2 * x + y)


class _DeviceTensor:
    """Stands in for a torch tensor on a GPU: what the probes read."""

    def __init__(self, shape, strides, ptr, device=0, dtype="float32"):
        self.shape, self._strides, self._ptr = torch.Size(shape), tuple(strides), ptr
        self._device, self.dtype, self.is_cuda = device, dtype, True

    def get_device(self):
        return self._device

    def data_ptr(self):
        return self._ptr

    def stride(self):
        return self._strides


@pytest.mark.parametrize("seed", range(20))
def test_the_generated_probe_makes_the_general_probes_key(monkeypatch, seed: int) -> None:
    import random
    import types

    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(Tensor=_DeviceTensor))
    r = random.Random(seed)
    kinds = [r.choice(["tensor", "scalar", "constexpr"]) for _ in range(r.randint(1, 6))]
    values: list = []
    for kind in kinds:
        if kind == "tensor":
            n = r.randint(1, 3)
            values.append(_DeviceTensor([r.randint(1, 9) for _ in range(n)],
                                        [r.randint(1, 99) for _ in range(n)],
                                        r.choice([4096, 4100]), r.randint(0, 1),
                                        r.choice(["float32", "float16"])))  # fmt: skip
        elif kind == "scalar":
            values.append(r.choice([3, 2.5, True, 2**40, -(2**31) - 1]))  # wide ints key apart
        else:
            values.append(r.choice([64, "name", (1, 2), None]))
    fast = FastPath([f"p{i}" for i in range(len(kinds))], kinds, [None] * len(kinds))
    assert fast.probe(values, 4, "auto") == fast.probe_any(values, 4, "auto") is not None
    odd = list(values)
    odd[r.randrange(len(odd))] = np.zeros(3)  # anything else: both answer alike
    assert _hashable(fast.probe(odd, 4, "auto")) == fast.probe_any(odd, 4, "auto")
    if "constexpr" in kinds:
        unhashable = list(values)
        unhashable[kinds.index("constexpr")] = [1, 2]
        assert fast.probe_any(unhashable, 4, "auto") is None
        # the generated probe leaves the key unhashed; the lookup refuses it, and the full
        # path records nothing for it
        assert fast.repeat(tuple(unhashable), {}, 4, "auto", (1, 1, 1)) == (unhashable, None)


def _hashable(probe):
    """A generated probe's answer as the general probe gives it: None for an unhashable key
    (the generated one leaves that to the lookup)."""
    try:
        hash(probe[0] if probe is not None else None)
    except TypeError:
        return None
    return probe


@gpu
def test_threads_launching_one_kernel_each_get_their_own_parameters(rng) -> None:
    import threading

    n = 4096
    axpy[n // 256,](*(torch.ones(n, device="cuda") for _ in range(3)), 1.0, n, BLOCK=256)
    inputs = [(torch.from_numpy(rng.random(n).astype(np.float32)).cuda(), float(a))
              for a in range(1, 9)]  # fmt: skip
    outs = [torch.full((n,), float("nan"), device="cuda") for _ in inputs]
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            x, a = inputs[k]
            for _ in range(200):  # the repeat path, from eight threads at once
                axpy[n // 256,](x, x, outs[k], a, n, BLOCK=256)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    torch.cuda.synchronize()
    assert not errors
    for (x, a), out in zip(inputs, outs):
        torch.testing.assert_close(out, (a + 1) * x)


def test_bind_matches_python_argument_binding() -> None:
    """The generated binders put each value where Python's own binding would, and refuse
    the calls Python refuses (which the full path then reports)."""
    import inspect

    def f(a, b, c=3, d=None):
        pass

    signature = inspect.signature(f)
    fast = FastPath(["a", "b", "c", "d"], ["tensor"] * 4, [FAST_MISS, FAST_MISS, 3, None])
    calls = [((1, 2), {}), ((1, 2, 5), {}), ((1,), {"b": 2}), ((1, 2), {"d": 7}),
             ((), {"b": 2, "a": 1}), ((1, 2, 3, 4), {}), ((1,), {"d": 4, "b": 9}),
             ((1,), {}), ((1, 2, 3, 4, 5), {}), ((1, 2), {"e": 1}), ((1,), {"a": 2}),
             ((), {})]  # fmt: skip
    for _ in range(2):  # the second time through, each binder is reused
        for args, kwargs in calls:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                expected = None
            else:
                bound.apply_defaults()
                expected = list(bound.arguments.values())
            assert fast.bind(args, kwargs) == expected, (args, kwargs)
