"""The on-disk compile cache: keys, round trips, corruption, switching off, concurrency, and
folders that cannot be written (which must never break compilation)."""

from __future__ import annotations

import multiprocessing as mp
import warnings
from pathlib import Path

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
