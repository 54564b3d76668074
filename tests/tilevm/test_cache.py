"""The on-disk compile cache: keys, round trips, corruption, switching off, concurrency, and
folders that cannot be written (which must never break compilation); and the program cache
built on it: kernels found in new processes without translating them, and compiled again when
their source, a helper's source or a global changed, or an entry is damaged or foreign."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tilevm.runtime.cache import CacheWarning, DiskCache, default_root


@pytest.fixture(autouse=True)
def _cache_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TILEVM_CACHE", raising=False)


def test_round_trip_and_sharding(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path)
    key = cache.key("source", b"\x00\x01", "sm_90a")
    assert cache.get(key) is None
    cache.put(key, b"cubin bytes")
    assert cache.get(key) == b"cubin bytes"
    assert cache.path(key) == tmp_path / key[:2] / key and cache.path(key).is_file()
    cache.put(key, b"")  # empty payloads are values too, not misses
    assert cache.get(key) == b""
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_keys_are_sha256_and_separate_parts() -> None:
    key = DiskCache.key("ab", "c")
    assert len(key) == 64 and int(key, 16) >= 0
    assert key == DiskCache.key("ab", "c")
    others = [
        DiskCache.key("a", "bc"),
        DiskCache.key("abc"),
        DiskCache.key("ab", "c", ""),
        DiskCache.key(b"ab", "c"),
        DiskCache.key("c", "ab"),
    ]
    assert len({key, *others}) == len(others) + 1


def test_bad_keys_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cache key"):
        DiskCache(tmp_path).get("../../etc/passwd")
    with pytest.raises(ValueError, match="str or bytes"):
        DiskCache.key(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[:-1],  # truncated payload
        lambda blob: blob[:10],  # truncated header
        lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]),  # flipped bit
        lambda blob: b"",  # empty file
        lambda blob: b"not a cache entry at all, just some text " * 3,
    ],
)
def test_a_corrupt_entry_is_a_miss_and_is_replaced(tmp_path: Path, damage) -> None:
    cache = DiskCache(tmp_path)
    key = cache.key("k")
    cache.put(key, b"payload" * 10)
    path = cache.path(key)
    path.write_bytes(damage(path.read_bytes()))
    assert cache.get(key) is None
    cache.put(key, b"fresh")
    assert cache.get(key) == b"fresh"


def test_an_unreadable_entry_is_a_miss(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path)
    key = cache.key("k")
    cache.path(key).mkdir(parents=True)  # a folder where the file should be
    assert cache.get(key) is None


def test_tilevm_cache_0_disables_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = DiskCache(tmp_path)
    key = cache.key("k")
    cache.put(key, b"before")
    monkeypatch.setenv("TILEVM_CACHE", "0")
    assert cache.get(key) is None
    cache.put(cache.key("other"), b"x")
    assert not cache.path(cache.key("other")).exists()
    monkeypatch.setenv("TILEVM_CACHE", "1")
    assert cache.get(key) == b"before"


def test_default_root_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TILEVM_CACHE_DIR", str(tmp_path / "explicit"))
    assert DiskCache().root == tmp_path / "explicit"
    monkeypatch.delenv("TILEVM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_root() == tmp_path / "xdg" / "tilevm"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home" / ".cache" / "tilevm"


def test_an_unwritable_folder_warns_once_and_does_not_raise(tmp_path: Path) -> None:
    # A regular file where the cache folder should be: unwritable even for root (CI runs as root,
    # which ignores permission bits).
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")
    cache = DiskCache(blocker / "tilevm")
    with pytest.warns(CacheWarning, match="cannot be written"):
        cache.put(cache.key("a"), b"data")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second failure stays silent
        cache.put(cache.key("b"), b"data")
        assert cache.get(cache.key("a")) is None


# Concurrency: processes that write one shared key (each its own value) and their own keys while
# reading the shared key, started together; every read must be None or a complete value.
_WRITERS = 4
_ROUNDS = 15


def _value(writer: int) -> bytes:
    return bytes([writer]) * (256 * 1024 + writer)  # large enough for a write to be seen halfway


def _writer(root: str, writer: int, barrier, results) -> None:
    cache = DiskCache(Path(root))
    shared = cache.key("shared")
    valid = {_value(w) for w in range(_WRITERS)}
    problems: list[str] = []
    barrier.wait()
    for round_ in range(_ROUNDS):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a failed write would warn: count it as a problem
            try:
                cache.put(shared, _value(writer))
                cache.put(cache.key("own", str(writer), str(round_)), _value(writer))
            except Exception as exc:  # reported to the parent
                problems.append(f"put raised {exc!r}")
        got = cache.get(shared)
        if got is None or got not in valid:
            problems.append(f"round {round_}: read {None if got is None else len(got)} bytes")
    results.put((writer, problems))


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")  # fork is unsafe once torch or others have started threads
    barrier = ctx.Barrier(_WRITERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(str(tmp_path), w, barrier, results))
        for w in range(_WRITERS)
    ]
    for p in procs:
        p.start()
    reports = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert reports == {w: [] for w in range(_WRITERS)}
    cache = DiskCache(tmp_path)
    assert cache.get(cache.key("shared")) in {_value(w) for w in range(_WRITERS)}
    for w in range(_WRITERS):
        for r in range(_ROUNDS):
            assert cache.get(cache.key("own", str(w), str(r))) == _value(w)
    assert not [p for p in tmp_path.rglob("*.tmp")]


# ----- the program cache: a kernel launched in a new process is found before it is translated --
_KERNELS = """
import os

import tilevm as tv
from helpers import shift

SCALE = float(os.environ.get("SCALE", "2.0"))


@tv.kernel
def scaled(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32], BLOCK: tv.constexpr):
    start = tv.block_id(0) * BLOCK
    tv.store(out, shift(tv.load(x, [start], [BLOCK]) * SCALE), [start])


@tv.kernel
def broken(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    tv.store(out, tv.load(x, [0], [32]) * not_defined, [0])
"""
_HELPERS = """
import tilevm as tv


@tv.func
def shift(v):
    return v + 1.0
"""
# Runs in a new process: launches ``kernels.scaled`` on fresh random data and reports whether
# the result is right, whether the frontend ran, and whether LLVM was loaded. With FORBID set,
# translating or lowering any kernel raises.
_CHILD = """
import json, os, sys
import numpy as np
import tilevm as tv

K = sys.modules["tilevm.kernel"]  # (tv.kernel is the decorator)
translated = []
original = K.Translator.__init__


def counting(self, *args, **kwargs):
    if os.environ.get("FORBID"):
        raise RuntimeError("the frontend ran")
    translated.append(1)
    original(self, *args, **kwargs)


def no_lowering(*args, **kwargs):
    raise RuntimeError("the lowering ran")


K.Translator.__init__ = counting
if os.environ.get("FORBID"):
    K.lower_kernel = no_lowering
import kernels

rng = np.random.default_rng(int(os.environ["SEED"]))
x = rng.standard_normal(1000).astype(np.float32)
out = np.full_like(x, np.nan)
block = int(os.environ.get("BLOCK", "256"))
kernels.scaled[-(-x.size // block),](x, out, BLOCK=block, device=os.environ.get("DEVICE", "cpu"))
product = x.astype(np.float64) * float(os.environ.get("SCALE", "2.0"))
error = np.abs(out - (product + 1.0))  # two f32 roundings
right = bool(np.all(error <= 2 * np.finfo(np.float32).eps * (np.abs(product) + 1.0)))
print(json.dumps({"right": right,
                  "translated": len(translated),
                  "llvm": "llvmlite.binding" in sys.modules}))
"""


class _Project:
    """A folder with a kernel module and a helper module, run in new processes that share one
    cache folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache = root / "cache"
        (root / "kernels.py").write_text(_KERNELS)
        (root / "helpers.py").write_text(_HELPERS)

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.root / name
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))

    def run(self, code: str = _CHILD, **env: str) -> subprocess.CompletedProcess:
        base = {k: v for k, v in os.environ.items() if k not in ("TILEVM_CACHE", "TILEVM_DUMP")}
        paths = [str(self.root), str(ROOT), base.get("PYTHONPATH", "")]
        full = {**base, "TILEVM_CACHE_DIR": str(self.cache), "PYTHONPATH": os.pathsep.join(paths),
                "SEED": str(np.random.SeedSequence().entropy % (1 << 32)), **env}  # fmt: skip
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=full, cwd=self.root, timeout=600)  # fmt: skip

    def launch(self, **env: str) -> dict:
        done = self.run(**env)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> _Project:
    return _Project(tmp_path)


def test_a_new_process_launches_a_cached_kernel_without_the_frontend(project) -> None:
    first = project.launch()
    assert first == {"right": True, "translated": 2, "llvm": True}  # the kernel and shift
    again = project.launch(FORBID="1")  # translating or lowering would raise
    assert again["right"] and again["translated"] == 0
    if shutil.which("cc") or shutil.which("gcc"):  # kept as a shared library: no LLVM at all
        assert not again["llvm"]


def test_a_changed_kernel_helper_or_global_is_compiled_again(project) -> None:
    assert project.launch()["translated"] == 2
    project.edit("kernels.py", "* SCALE), [start])", "* SCALE * 2.0), [start])")
    found = project.launch(SCALE="1.5")  # kernel source and global changed
    assert found == {"right": False, "translated": 2, "llvm": True}  # (scaled twice)
    project.edit("kernels.py", "* SCALE * 2.0), [start])", "* SCALE), [start])")
    assert project.launch(SCALE="1.5") == {"right": True, "translated": 2, "llvm": True}
    project.edit("helpers.py", "v + 1.0", "v + 1.0 + 0.0 * v")  # same values, new source
    assert project.launch(SCALE="1.5")["translated"] == 2
    project.edit("helpers.py", "v + 1.0 + 0.0 * v", "v + 2.0")
    assert project.launch(SCALE="1.5")["right"] is False  # the helper's new body runs
    project.edit("helpers.py", "v + 2.0", "v + 1.0")
    for scale in ("1.5", "-3.0", "1.5"):  # both values' programs are kept
        assert project.launch(SCALE=scale)["right"]
    assert project.launch(SCALE="-3.0", FORBID="1")["right"]
    assert project.launch(SCALE="1.5", FORBID="1")["right"]


def test_a_file_edited_under_a_running_process_does_not_mislead_the_next(project) -> None:
    """A process translates what it read first; what it compiles after its kernel's file was
    edited is kept under the file as it read it, not as it is now."""
    code = """
import numpy as np
from pathlib import Path
import kernels
x = np.ones(512, np.float32)
out = np.zeros_like(x)
kernels.scaled[2,](x, out, BLOCK=256)
path = Path("kernels.py")
path.write_text(path.read_text().replace("* SCALE), [start])", "* SCALE * 2.0), [start])"))
kernels.scaled[4,](x, out, BLOCK=128)  # a new specialization, of the source read before
"""
    done = project.run(code)
    assert done.returncode == 0, done.stderr
    # the edited file's kernel (it scales twice), not the one compiled from the first source
    assert project.launch(BLOCK="128")["right"] is False
    project.edit("kernels.py", "* SCALE * 2.0), [start])", "* SCALE), [start])")
    assert project.launch(BLOCK="128", FORBID="1")["right"]  # the file as that process read it


def test_corrupt_and_stale_entries_are_compiled_again(project) -> None:
    assert project.launch()["translated"] == 2
    entries = [p for p in project.cache.rglob("*") if p.is_file() and len(p.name) == 64]
    libraries = list((project.cache / "libraries").glob("*.so"))
    for path in entries:  # flipped bits: every entry fails its digest
        blob = bytearray(path.read_bytes())
        blob[-1] ^= 0xFF
        path.write_bytes(bytes(blob))
    assert project.launch() == {"right": True, "translated": 2, "llvm": True}
    for path in libraries:  # a damaged library file is replaced from the entry
        path.write_bytes(b"\x7fELF not a library")
    assert project.launch(FORBID="1")["right"]
    # Entries that pass their digest but belong to another program or variant: every program
    # cache entry (the two variants' builds, their list) swapped for another's. Reading one
    # must never run the wrong program.
    cache = DiskCache(project.cache)
    assert project.launch(SCALE="3.0")["translated"] == 2
    keys = sorted(p.name for p in project.cache.rglob("*") if len(p.name) == 64)
    ours = [k for k in keys if b"tilevm program" in cache.get(k) or cache.get(k)[:1] == b"["]
    assert len(ours) == 3
    payloads = [cache.get(k) for k in ours]
    for key, payload in zip(ours, payloads[1:] + payloads[:1]):
        cache.put(key, payload)
    for scale in ("2.0", "3.0"):
        assert project.launch(SCALE=scale) == {"right": True, "translated": 2, "llvm": True}


def test_a_kernel_that_fails_to_compile_fails_the_same_way_in_every_process(project) -> None:
    code = """
import numpy as np
import tilevm as tv
import kernels
for _ in range(2):
    try:
        kernels.broken[1,](np.ones(32, np.float32), np.ones(32, np.float32))
    except tv.CompileError as err:
        print(type(err).__name__, err.code, err.location.line, err.location.source_line.strip())
"""
    runs = [project.run(code) for _ in range(2)]
    lines = [line for run in runs for line in run.stdout.splitlines()]
    assert len(lines) == 4 and len(set(lines)) == 1, [r.stderr for r in runs]
    line = next(i for i, text in enumerate(_KERNELS.split("\n"), 1) if "not_defined" in text)
    assert lines[0].startswith(f"CompileError undefined-name {line} tv.store(out,")
    assert not [p for p in project.cache.rglob("*") if len(p.name) == 64]  # nothing kept


def test_emit_only_renders(project) -> None:
    code = """
import numpy as np
import kernels
x = np.ones(256, np.float32)
assert "scaled" in kernels.scaled.emit("cpu", x, x, BLOCK=256)
assert "scaled" in kernels.scaled.emit("cuda:sm_90a", x, x, BLOCK=256)
"""
    done = project.run(code)
    assert done.returncode == 0, done.stderr
    assert not project.cache.exists() or not [p for p in project.cache.rglob("*") if p.is_file()]


def test_a_sycl_kernel_is_loaded_from_the_cache_in_a_new_process(project) -> None:
    from tilevm.runtime import registry

    if registry.backend_for("sycl").unavailable() is not None:
        pytest.skip("no SYCL runtime")
    device = "sycl:opencl:cpu"
    assert project.launch(DEVICE=device) == {"right": True, "translated": 2, "llvm": False}
    assert project.launch(DEVICE=device, FORBID="1")["right"]


@pytest.mark.parametrize(("target", "other"), [("cuda:sm_90a", "cuda:sm_80"),
                                               ("hip:gfx90a", "hip:gfx942")])  # fmt: skip
def test_gpu_programs_are_kept_and_restored(target, other, tmp_path, monkeypatch) -> None:
    """A CUDA or HIP build (their compilers run here, no GPU needed) restores with its binary
    and launch facts, and only under the same values and target."""
    from tests.tilevm.test_globals import _global_scale
    from tilevm.runtime import programs, registry

    monkeypatch.setenv("TILEVM_CACHE_DIR", str(tmp_path))
    backend = registry.backend_for(target)
    try:
        backend.toolchain(backend.target(target), target)
    except Exception as exc:  # noqa: BLE001 - whatever stops the compiler here
        pytest.skip(f"no compiler for {target}: {exc}")
    x = np.ones(256, np.float32)
    _global_scale._binaries.clear()  # (built by another test) compiled here, so kept on disk
    built = _global_scale.compile(target, x, x)
    specs, _, _ = _global_scale.specialize((x, x), {})

    def load(where: str) -> Any:
        caps = backend.target(where)
        return programs.load(_global_scale, backend, caps, specs, 4, where)

    assert load(other) is None
    ready = load(target)
    assert ready.restored and ready.built.binary == built.binary
    assert ready.built.thread.params == built.thread.params
    assert ready.built.num_threads == built.num_threads
    assert ready.built.shared_bytes == built.shared_bytes
    assert ready.writes == {"out"}
    monkeypatch.setattr("tests.tilevm.test_globals.SCALE", 5.0)
    assert load(target) is None
