"""``@tv.autotune``: the fastest config wins, keys decide when to tune again, results persist on
disk (and stale or damaged files are ignored), candidates never touch the caller's tensors,
failing configs are skipped, and nothing is timed on the interpreter or with
TILEVM_AUTOTUNE=0. The CUDA test checks the event timing and the L2 flush on a GPU."""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tilevm as tv
from tilevm.backends.cuda import driver
from tilevm.backends.cuda import timing as cuda_timing
from tilevm.kernel import Launcher
from tilevm.runtime import autotune_bench, registry

ROOT = Path(__file__).resolve().parents[2]


@tv.kernel
def scale(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], BLOCK: tv.constexpr, REPEAT: tv.constexpr):
    """``out = x * 0.5 + 1``, applied REPEAT times: a large REPEAT makes a config slow."""
    start = tv.block_id(0) * BLOCK
    acc = tv.load(x, [start], [BLOCK])
    for _ in range(REPEAT):
        acc = acc * 0.5 + 1.0
    tv.store(out, acc, [start])


@tv.kernel
def accumulate(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], BLOCK: tv.constexpr):
    """``out += x``: running it twice shows."""
    assert BLOCK % 32 == 0, "BLOCK must be a multiple of 32"
    start = tv.block_id(0) * BLOCK
    total = tv.load(out, [start], [BLOCK]) + tv.load(x, [start], [BLOCK])
    tv.store(out, total, [start])


@tv.kernel
def shift(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], by: tv.f32, BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK
    tv.store(out, tv.load(x, [start], [BLOCK]) + by, [start])


SLOW = tv.Config(BLOCK=256, REPEAT=400)
FAST = tv.Config(BLOCK=256, REPEAT=1, warps=2)
GRID = lambda meta: (tv.cdiv(meta["x"].shape[0], meta["BLOCK"]),)  # noqa: E731
N = 1 << 14


def tuner(**options) -> tv.Autotuner:
    """A new tuner of ``scale`` (its first config, and default heuristic, is the slow one)."""
    return tv.autotune(configs=[SLOW, FAST], key=["x"], **options)(scale)


def expected(x: np.ndarray, config: tv.Config) -> np.ndarray:
    acc = x.astype(np.float64)
    for _ in range(config.REPEAT):
        acc = acc * 0.5 + 1.0
    return acc


def data(rng: np.random.Generator, n: int = N) -> np.ndarray:
    return (rng.random(n) + 0.5).astype(np.float32)


@pytest.fixture(autouse=True)
def _results_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TILEVM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TILEVM_CACHE", raising=False)
    monkeypatch.delenv("TILEVM_AUTOTUNE", raising=False)


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple, dict]]:
    """Every kernel launch, as (arguments, keywords)."""
    calls: list[tuple[tuple, dict]] = []
    original = Launcher.__call__

    def counting(self: Launcher, *args, **kwargs) -> None:
        calls.append((args, kwargs))
        original(self, *args, **kwargs)

    monkeypatch.setattr(Launcher, "__call__", counting)
    return calls


def test_the_fast_config_wins_on_the_cpu(rng, launches) -> None:
    tuned = tuner()
    x = data(rng)
    out = np.full_like(x, np.nan)
    tuned[GRID](x, out)
    assert tuned.best_config(x, out) == FAST
    assert set(tuned.timings) == {SLOW, FAST}
    assert tuned.timings[SLOW] > 3 * tuned.timings[FAST]
    np.testing.assert_allclose(out, expected(x, FAST), rtol=1e-6)
    assert launches[-1][0][1] is out  # the last launch is the one on the caller's arrays
    assert launches[-1][1]["REPEAT"] == 1 and launches[-1][1]["warps"] == 2


def test_a_new_key_tunes_again_and_a_known_one_does_not(rng, launches) -> None:
    tuned = tuner()
    x, out = data(rng), np.empty(N, np.float32)
    tuned[GRID](x, out)
    assert len(launches) > 2 * 3  # at least three timed runs of each config, then the launch
    first = tuned.timings
    launches.clear()
    x2 = data(rng)  # same shape, other values and another array: the key is the same
    tuned[GRID](x2, out)
    assert len(launches) == 1 and tuned.timings is first
    np.testing.assert_allclose(out, expected(x2, FAST), rtol=1e-6)
    launches.clear()
    small = data(rng, 3000)
    out_small = np.empty_like(small)
    tuned[GRID](small, out_small)  # a new shape: tuned again
    assert len(launches) > 2 * 3 and tuned.timings is not first
    np.testing.assert_allclose(out_small, expected(small, FAST), rtol=1e-6)


def test_scalars_key_on_their_value_and_unkeyed_shapes_share_a_config(rng, launches) -> None:
    tuned = tv.autotune(configs=[tv.Config(BLOCK=64), tv.Config(BLOCK=512)], key=["by"])(shift)
    x, out = data(rng, 3000), np.empty(3000, np.float32)
    tuned[GRID](x, out, 1.5)
    assert len(launches) > 2
    launches.clear()
    y = data(rng, 700)
    tuned[GRID](y, out[:700], by=1.5)  # another shape, but only `by` is in the key
    assert len(launches) == 1
    np.testing.assert_array_equal(out[:700], y + np.float32(1.5))
    launches.clear()
    tuned[GRID](x, out, 2.5)
    assert len(launches) > 2
    np.testing.assert_array_equal(out, x + np.float32(2.5))
    keys = json.loads(tuned.cache_file().read_text())["entries"]
    assert sorted(keys) == [
        "by=1.5, x:float32, out:float32, cpu",
        "by=2.5, x:float32, out:float32, cpu",
    ]


def test_results_are_read_back_by_a_new_tuner(rng, launches) -> None:
    x, out = data(rng), np.empty(N, np.float32)
    first = tuner()
    first[GRID](x, out)
    entries = json.loads(first.cache_file().read_text())["entries"]
    (entry,) = entries.values()
    assert entry["best"] == str(FAST) and set(entry["timings"]) == {str(SLOW), str(FAST)}
    # A file that says the slow config is best is believed (so it was read, not re-tuned).
    _edit(first.cache_file(), lambda d: next(iter(d["entries"].values())).update(best=str(SLOW)))
    launches.clear()
    second = tuner()
    second[GRID](x, out)
    assert len(launches) == 1 and launches[0][1]["REPEAT"] == SLOW.REPEAT
    assert second.timings == {}


def test_results_are_read_back_in_a_new_process(rng, tmp_path) -> None:
    x, out = data(rng), np.empty(N, np.float32)
    tuner()[GRID](x, out)
    script = (
        "import numpy as np\n"
        "from tilevm.kernel import Launcher\n"
        "from tests.tilevm import test_autotune as t\n"
        "calls = []\n"
        "run = Launcher.__call__\n"
        "Launcher.__call__ = lambda self, *a, **k: (calls.append(1), run(self, *a, **k))\n"
        "x = np.ones(t.N, np.float32)\n"
        "tuned = t.tuner()\n"
        "tuned[t.GRID](x, np.empty_like(x))\n"
        "print(len(calls), tuned.best_config(x, x))\n"
    )
    env = {**os.environ, "TILEVM_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == f"1 {FAST}"


@pytest.mark.parametrize("field", ["source", "fingerprint", "configs", "format", "kernel"])
def test_results_of_another_kernel_device_or_config_list_are_ignored(rng, launches, field):
    x, out = data(rng), np.empty(N, np.float32)
    first = tuner()
    first[GRID](x, out)

    def stale(d: dict) -> None:
        d[field] = "something else"
        next(iter(d["entries"].values())).update(best=str(SLOW))

    _edit(first.cache_file(), stale)
    launches.clear()
    second = tuner()
    second[GRID](x, out)
    assert len(launches) > 1 and set(second.timings) == {SLOW, FAST}
    assert launches[-1][1]["REPEAT"] == FAST.REPEAT


def test_another_device_fingerprint_tunes_again(rng, launches, monkeypatch) -> None:
    x, out = data(rng), np.empty(N, np.float32)
    first = tuner()
    first[GRID](x, out)
    cpu = registry.backend_for("cpu")
    monkeypatch.setattr(type(cpu), "fingerprint", lambda self, device: "another machine")
    launches.clear()
    second = tuner()
    second[GRID](x, out)
    assert len(launches) > 1 and set(second.timings) == {SLOW, FAST}
    assert second.cache_file() != first.cache_file() and first.cache_file().is_file()


KERNEL_SOURCE = """
import tilevm as tv


@tv.kernel
def twice(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK{edit}
    tv.store(out, tv.load(x, [start], [BLOCK]) * 2.0, [start])
"""


def _kernel_from_file(path: Path, edit: str) -> tv.Kernel:
    path.write_text(KERNEL_SOURCE.format(edit=edit))
    spec = importlib.util.spec_from_file_location(f"autotune_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.twice


def test_an_edited_kernel_tunes_again(rng, launches, tmp_path) -> None:
    configs = [tv.Config(BLOCK=128), tv.Config(BLOCK=512)]
    x, out = data(rng, 5000), np.empty(5000, np.float32)
    grid = lambda meta: (tv.cdiv(5000, meta["BLOCK"]),)  # noqa: E731
    original = _kernel_from_file(tmp_path / "v1.py", "")
    edited = _kernel_from_file(tmp_path / "v2.py", "  # edited")
    tv.autotune(configs, key=["x"])(original)[grid](x, out)
    launches.clear()
    tv.autotune(configs, key=["x"])(original)[grid](x, out)  # a new tuner, the same source
    assert len(launches) == 1
    launches.clear()
    tuned = tv.autotune(configs, key=["x"])(edited)
    tuned[grid](x, out)
    assert len(launches) > 1 and set(tuned.timings) == set(configs)
    np.testing.assert_array_equal(out, x * 2)


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"{not json",
        b"\x00\xff" * 40,
        b"[1, 2, 3]",
        b'{"entries": 5}',
    ],
    ids=["empty", "truncated", "binary", "a-list", "entries-not-a-dict"],
)
def test_a_corrupt_results_file_is_ignored_and_replaced(rng, launches, damage: bytes) -> None:
    x, out = data(rng), np.empty(N, np.float32)
    tuned = tuner()
    path = tuned.cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(damage)
    tuned[GRID](x, out)
    assert set(tuned.timings) == {SLOW, FAST}
    (entry,) = json.loads(path.read_text())["entries"].values()
    assert entry["best"] == str(FAST)


def test_an_entry_naming_an_unknown_config_is_ignored(rng, launches) -> None:
    x, out = data(rng), np.empty(N, np.float32)
    tuner()[GRID](x, out)
    _edit(tuner().cache_file(), lambda d: next(iter(d["entries"].values())).update(best="?"))
    second = tuner()
    second[GRID](x, out)
    assert set(second.timings) == {SLOW, FAST}


def test_autotune_0_launches_the_heuristics_config_only(rng, launches, monkeypatch) -> None:
    monkeypatch.setenv("TILEVM_AUTOTUNE", "0")
    seen = []

    def heuristic(**arguments) -> tv.Config:
        seen.append(arguments)
        return FAST

    x, out = data(rng), np.full(N, np.nan, np.float32)
    tuned = tuner(heuristic=heuristic)
    tuned[GRID](x, out)
    assert len(launches) == 1 and launches[0][1]["REPEAT"] == 1 and launches[0][1]["warps"] == 2
    # a heuristic taking **kwargs also learns the device, to fit its config to it
    assert set(seen[0]) == {"x", "out", "device"} and seen[0]["x"] is x
    assert seen[0]["device"] == "cpu"
    np.testing.assert_allclose(out, expected(x, FAST), rtol=1e-6)
    assert tuned.timings == {} and not tuned.cache_file().exists()
    launches.clear()
    plain = tuner()  # no heuristic: the first config
    plain[GRID](x, out)
    assert len(launches) == 1 and launches[0][1]["REPEAT"] == SLOW.REPEAT
    np.testing.assert_allclose(out, expected(x, SLOW), rtol=1e-6)


def test_the_interpreter_uses_the_heuristic(rng, launches) -> None:
    x = data(rng, 600)
    out = np.full_like(x, np.nan)
    tuned = tuner(heuristic=lambda x, out: FAST)
    tuned[GRID](x, out, device="interp")
    assert len(launches) == 1 and launches[0][1]["device"] == "interp"
    np.testing.assert_allclose(out, expected(x, FAST), rtol=1e-6)
    assert tuned.timings == {} and tuned.best_config(x, out, device="interp") == FAST


def test_failing_configs_are_skipped_and_reported(rng, launches, monkeypatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bad, good = tv.Config(BLOCK=48), tv.Config(BLOCK=64)
    tuned = tv.autotune(configs=[bad, good], key=["x"])(accumulate)
    x, out = data(rng, 1000), data(rng, 1000)
    before = out.copy()
    tuned[GRID](x, out)
    assert set(tuned.timings) == {good}
    np.testing.assert_array_equal(out, before + x)
    (entry,) = json.loads(tuned.cache_file().read_text())["entries"].values()
    assert entry["best"] == str(good) and entry["failed"][str(bad)].startswith("static-assert")
    final = terminal.getvalue().rsplit("\r", 1)[-1]
    assert final.startswith("tuned accumulate [x=[1000]]: 1/2 configs ran, best ")
    assert "1 failed (first: BLOCK=48, warps=4: static-assert: BLOCK must be" in final


def test_when_every_config_fails_the_first_failure_is_raised(rng, launches) -> None:
    tuned = tv.autotune(configs=[tv.Config(BLOCK=40), tv.Config(BLOCK=48)], key=["x"])(accumulate)
    x, out = data(rng, 100), data(rng, 100)
    before = out.copy()
    with pytest.raises(tv.CompileError, match="multiple of 32") as info:
        tuned[GRID](x, out)
    assert info.value.code == "static-assert"
    np.testing.assert_array_equal(out, before)
    assert not tuned.cache_file().exists()


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_candidates_never_write_the_callers_tensors(rng, launches, layout: str) -> None:
    configs = [tv.Config(BLOCK=32, warps=1), tv.Config(BLOCK=128), tv.Config(BLOCK=512)]
    tuned = tv.autotune(configs=configs, key=["x", "out"])(accumulate)
    n = 4000
    x = data(rng, n)
    storage = data(rng, 2 * n)
    out = storage[::2] if layout == "strided" else storage[:n]
    before = storage.copy()
    x_before = x.copy()
    tuned[GRID](x, out)
    assert len(launches) > 3 * len(configs)  # every config ran several times, on copies
    assert sum(1 for args, _ in launches if args[1] is out) == 1
    expected_storage = before.copy()
    if layout == "strided":
        expected_storage[::2] += x
    else:
        expected_storage[:n] += x
    np.testing.assert_array_equal(storage, expected_storage)  # once, and nothing beside
    np.testing.assert_array_equal(x, x_before)


def test_copies_keep_strides_alignment_and_values(rng) -> None:
    base = data(rng, 4 * 60).reshape(4, 60)
    arrays = [base, base.T, base[:, 3:50:2], base[::-1, ::-3], np.asfortranarray(base), base[1:]]
    copies, named = autotune_bench.clone_args(tuple(arrays), {"k": base[:, 1:]})
    for original, copy in zip([*arrays, base[:, 1:]], [*copies, named["k"]]):
        assert copy.strides == original.strides and copy.dtype == original.dtype
        assert copy.ctypes.data % 64 == original.ctypes.data % 64
        assert not np.shares_memory(copy, base)
        np.testing.assert_array_equal(copy, original)
    assert autotune_bench.clone_args((3, "a"), {"s": 2.5}) == ((3, "a"), {"s": 2.5})
    packed = tv.PackedArray.from_values(rng.integers(-4, 4, 50), tv.i3)
    (twin,), _ = autotune_bench.clone_args((packed,), {})
    assert twin.data is not packed.data and np.array_equal(twin.values(), packed.values())


def test_copies_of_torch_tensors_keep_strides_and_offset(rng) -> None:
    torch = pytest.importorskip("torch")
    base = torch.from_numpy(data(rng, 6 * 40).reshape(6, 40))
    views = [base, base.t(), base[1:, 3:], base[:, ::2], base[2:3].expand(5, 40)]
    copies, _ = autotune_bench.clone_args(tuple(views), {})
    for original, copy in zip(views, copies):
        assert copy.stride() == original.stride() and copy.shape == original.shape
        assert copy.data_ptr() % 64 == original.data_ptr() % 64
        assert copy.untyped_storage().data_ptr() != base.untyped_storage().data_ptr()
        assert torch.equal(copy, original)


def test_progress_is_shown_only_on_a_terminal(rng, monkeypatch) -> None:
    x, out = data(rng), np.empty(N, np.float32)
    quiet = io.StringIO()  # isatty() is False, as for a log file or CI output
    monkeypatch.setattr(sys, "stderr", quiet)
    tuner()[GRID](x, out)
    assert quiet.getvalue() == ""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    tuned = tuner()
    tuned.cache_file().unlink()
    tuned[GRID](x, out)
    text = terminal.getvalue()
    head = f"tuning scale [x=[{N}]]"
    assert text.startswith(f"\r{head}: 0/2 configs") and f"\r{head}: 2/2 configs, best " in text
    assert text.endswith(f"({FAST})\n") and text.count("\n") == 1
    assert f"\rtuned scale [x=[{N}]]: 2/2 configs ran, best " in text


def test_grid_callables_receive_the_configs_and_the_arguments(rng) -> None:
    metas = []

    def grid(meta: dict) -> tuple[int]:
        metas.append(meta)
        return (tv.cdiv(meta["x"].shape[0], meta["BLOCK"]),)

    x, out = data(rng, 3000), np.full(3000, np.nan, np.float32)
    tuner()[grid](x, out)
    assert {(m["BLOCK"], m["REPEAT"], m["warps"]) for m in metas} == {(256, 400, 4), (256, 1, 2)}
    assert all(m["x"] is x and m["out"] is out for m in metas)
    np.testing.assert_allclose(out, expected(x, FAST), rtol=1e-6)


def test_best_config_ir_and_compile_follow_what_is_known(rng) -> None:
    x, out = data(rng), np.empty(N, np.float32)
    tuned = tuner()
    with pytest.raises(tv.LaunchError) as info:
        tuned.best_config(x, out)  # not known, and no grid to tune with
    assert info.value.code == "autotune-no-grid"
    assert tuned.ir(x, out) == scale.ir(x, out, BLOCK=256, REPEAT=400, warps=4)  # heuristic
    assert tuned[GRID].best_config(x, out) == FAST
    assert tuned.best_config(x, out) == FAST
    assert tuned.ir(x, out) == scale.ir(x, out, BLOCK=256, REPEAT=1, warps=2)
    assert tuned.compile("cpu", x, out).source == scale.emit("cpu", x, out, BLOCK=256, REPEAT=1,
                                                             warps=2)  # fmt: skip


def test_config_is_a_frozen_hashable_value() -> None:
    config = tv.Config(BM=64, BN=128, dtype=tv.f16, warps=8)
    assert str(config) == "BM=64, BN=128, dtype=f16, warps=8"
    assert repr(config) == "Config(BM=64, BN=128, dtype=f16, warps=8)"
    assert config == tv.Config(BN=128, BM=64, dtype=tv.f16, warps=8)
    assert hash(config) == hash(tv.Config(BN=128, BM=64, dtype=tv.f16, warps=8))
    assert config != tv.Config(BM=64, BN=128, dtype=tv.f16, warps=4)
    assert config.BM == 64 and config.warps == 8
    assert config.constexprs == {"BM": 64, "BN": 128, "dtype": tv.f16}
    assert config.meta() == {"BM": 64, "BN": 128, "dtype": tv.f16, "warps": 8}
    with pytest.raises(AttributeError):
        config.BM = 32
    with pytest.raises(AttributeError):
        config.BK  # noqa: B018
    config.constexprs["BM"] = 1
    assert config.BM == 64
    assert tv.Config().warps == 4


def test_misuse_is_a_clear_error(rng) -> None:
    def code(error: type, call) -> str:
        with pytest.raises(error) as info:
            call()
        return info.value.code

    with_configs = lambda **kw: tv.autotune(**kw)(scale)  # noqa: E731
    assert code(tv.LaunchError, lambda: with_configs(configs=[FAST], key=["y"])) == "autotune-key"
    assert code(tv.LaunchError, lambda: with_configs(configs=[FAST], key=["BLOCK"])) == (
        "autotune-key"
    )
    assert code(tv.LaunchTypeError, lambda: with_configs(configs=[FAST], key="x")) == (
        "autotune-key"
    )
    assert code(tv.LaunchError, lambda: with_configs(configs=[tv.Config(x=1)], key=[])) == (
        "autotune-config"
    )
    assert code(tv.LaunchTypeError, lambda: with_configs(configs=[], key=[])) == "autotune-config"
    assert code(tv.LaunchTypeError, lambda: tv.autotune([FAST], ["x"])(lambda x: x)) == (
        "autotune-not-kernel"
    )
    assert code(tv.LaunchError, lambda: tv.Config(warps=0)) == "autotune-config"
    assert code(tv.LaunchTypeError, lambda: tv.Config(B=[1, 2])) == "autotune-config"
    x, out = data(rng, 100), np.empty(100, np.float32)
    tuned = tuner()
    explicit = lambda **kw: tuned[GRID](x, out, **kw)  # noqa: E731
    assert code(tv.LaunchError, lambda: explicit(BLOCK=64)) == "autotune-explicit"
    assert code(tv.LaunchError, lambda: explicit(warps=8)) == "autotune-explicit"
    assert code(tv.LaunchError, lambda: tuned(x, out)) == "no-grid"
    assert code(tv.LaunchTypeError, lambda: explicit(nope=1)) == "autotune-arguments"
    assert code(tv.LaunchTypeError, lambda: tuned[GRID](x)) == "autotune-arguments"
    wrong = tuner(heuristic=lambda **kw: "fast")
    assert code(tv.LaunchTypeError, lambda: wrong[GRID](x, out, device="interp")) == (
        "autotune-heuristic"
    )
    pruned = tuner(prune=lambda configs, **kw: [])
    assert code(tv.LaunchError, lambda: pruned[GRID](x, out)) == "autotune-prune"


def test_prune_limits_the_candidates(rng) -> None:
    seen = []

    def prune(configs, x, out):
        seen.append((configs, x))
        return [c for c in configs if c.REPEAT < 10]

    tuned = tuner(prune=prune)
    x, out = data(rng, 2000), np.empty(2000, np.float32)
    tuned[GRID](x, out)
    assert seen[0][0] == [SLOW, FAST] and seen[0][1] is x
    assert set(tuned.timings) == {FAST}


@pytest.mark.gpu
@pytest.mark.skipif(not driver.available(), reason="needs a CUDA GPU")
def test_cuda_tuning_times_with_events_after_flushing_l2(rng, monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    from tilevm.runtime import backend

    monkeypatch.setattr(backend, "time_host", _never)  # a GPU is timed with events
    runs: list[int] = []
    timed = cuda_timing._timed_runs

    def counting(torch_, run, flush, repeats, spin=None):
        runs.append(repeats)
        return timed(torch_, run, flush, repeats, spin)

    monkeypatch.setattr(cuda_timing, "_timed_runs", counting)
    n = 1 << 20
    x = torch.from_numpy(data(rng, n)).cuda()
    out = torch.full((n,), float("nan"), device="cuda")
    slow = tv.Config(BLOCK=256, REPEAT=3000)
    tuned = tv.autotune(configs=[slow, FAST], key=["x"])(scale)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):  # the caller's current stream: timed and launched there
        tuned[GRID](x, out)
    torch.cuda.synchronize()
    assert tuned.best_config(x, out) == FAST
    assert set(tuned.timings) == {slow, FAST}
    assert 0 < tuned.timings[FAST] < tuned.timings[slow] / 3 < 0.1
    assert len(runs) == 4 and all(r >= 3 for r in runs[::2]) and all(r >= 5 for r in runs[1::2])
    want = torch.from_numpy(expected(x.cpu().numpy(), FAST).astype(np.float32)).cuda()
    torch.testing.assert_close(out, want, rtol=1e-6, atol=1e-6)
    flush = cuda_timing._flush_buffers[x.device.index or 0]
    assert flush.is_cuda and flush.numel() >= 256 << 20
    assert flush.numel() >= 2 * driver.device_info(x.device.index or 0).l2_bytes
    assert int(flush[:4096].sum()) == 0  # zeroed: it was written before the runs
    info = driver.device_info(x.device.index or 0)
    assert info.name in json.loads(tuned.cache_file("cuda").read_text())["fingerprint"]
    # The caller's tensors are written once: an accumulating kernel adds exactly once.
    acc = tv.autotune(configs=[tv.Config(BLOCK=128), tv.Config(BLOCK=1024)], key=["x"])(accumulate)
    total = torch.from_numpy(data(rng, n)).cuda()
    before = total.clone()
    acc[GRID](x, total)
    torch.cuda.synchronize()
    assert torch.equal(total, before + x)
    assert cuda_timing._flush_buffers[x.device.index or 0] is flush  # allocated once


@pytest.mark.gpu
@pytest.mark.skipif(not driver.available(), reason="needs a CUDA GPU")
def test_cuda_timing_leaves_out_the_hosts_launch_time(rng, monkeypatch) -> None:
    """A kernel of a few microseconds behind a 2 ms launch path on the host (Python dispatch
    can take 20-100 us; slowed here to be unmistakable) is timed as the kernel: the GPU waits
    behind a spin while the host launches, so the start event does not fire early."""
    import time

    torch = pytest.importorskip("torch")
    x = torch.from_numpy(data(rng, 4096)).cuda()
    out = torch.full((4096,), float("nan"), device="cuda")
    launch = scale[(16,)]

    def run() -> None:
        time.sleep(2e-3)
        launch(x, out, BLOCK=256, REPEAT=1, warps=2)

    seconds = cuda_timing.time_cuda(run, x.device.index or 0)
    assert 0 < seconds < 0.3e-3, f"{seconds * 1e6:.0f} us"
    want = expected(x.cpu().numpy(), FAST).astype(np.float32)
    torch.testing.assert_close(out, torch.from_numpy(want).cuda())
    # without the spin the start event fires during the host's 2 ms: the check above would fail
    monkeypatch.setattr(cuda_timing, "gpu_spin", lambda torch_, host_s: None)
    assert cuda_timing.time_cuda(run, x.device.index or 0) > 1.5e-3


def _never(*args, **kwargs) -> float:
    raise AssertionError("CUDA candidates are timed with events, not the host clock")


def _edit(path: Path, change) -> None:
    data_ = json.loads(path.read_text())
    change(data_)
    path.write_text(json.dumps(data_))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True
