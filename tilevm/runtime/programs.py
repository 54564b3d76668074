"""The program cache: a kernel launched in a new process is looked up on disk before it is
translated, so a cached kernel starts without the frontend, the lowering or a compiler.

Two kinds of entries, both in the ``DiskCache``:

* **program** (key: the kernel's source, its specialization (argument kinds, dtypes, ranks,
  contiguity, alignment, constexprs), warps, the target's capabilities, the backend's
  toolchain and the generator, i.e. tilevm's version and its files): the names the kernel read
  outside itself while translating, each with the value it had (its fingerprint), for each of
  the few variants compiled under different values.
* **build** (key: the program key and one such list of reads): the thread program's signature
  (parameters, block size, shared memory), the tensors the kernel writes, and what the backend
  needs to launch it (``Backend.export``: the binary and a few facts).

A lookup reads the names again, compares them with a variant's, and the backend restores the
build. Anything that does not match or cannot be read is a miss: the kernel is compiled as if
nothing were cached (a compile error is raised by the compile, never stored). Kernels whose
source or values have no stable text (``fingerprint.Unkeyable``) are not kept.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import struct
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import tilevm.dtypes as dts
from tilevm.frontend.expressions import Func
from tilevm.frontend.scope import (
    ABSENT,
    Guard,
    Reads,
    attribute_getter,
    getter,
    snapshot,
)
from tilevm.lowering.target import Target
from tilevm.lowering.thread_ir import Param, ThreadKernel
from tilevm.runtime.backend import Backend
from tilevm.runtime.build import version
from tilevm.runtime.cache import DiskCache, enabled
from tilevm.runtime.fingerprint import Unkeyable, fingerprint, owners, source_text

FORMAT = "tilevm program 1"
MAX_VARIANTS = 8  # values of the globals remembered per program, newest first
# The packages whose files generate code: any change to them is a new key.
GENERATOR = ("tilevm", "tilevm.dtypes", "tilevm.layouts", "tilevm.lowering", "tilevm.backends",
             "tilevm.stdlib")  # fmt: skip
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Ready:
    """A specialization ready to launch: the backend's build, the tensor arguments the kernel
    writes (for the read-only check) and the guards under which it is still the kernel's
    program. A ``restored`` build came from the program cache: it launches, but has no source,
    lowering or thread program body."""

    built: Any
    writes: frozenset[str]
    guards: tuple[Guard, ...]
    restored: bool = False


def load(
    kernel: Any, backend: Backend, caps: Target, specs: Sequence[Any], warps: int, spec: str
) -> Ready | None:
    """The specialization's build from the program cache, or None (a miss)."""
    if not enabled():
        return None
    fn = kernel.fn
    key = program_key(kernel, backend, caps, specs, warps, spec)
    if key is None:
        return None
    cache = DiskCache()
    for reads in _variants(cache.get(key)):
        guards = _recheck(fn, specs, reads)
        if guards is None:
            continue
        build = _build_key(key, reads)
        data = cache.get(build)
        if data is None:
            continue
        try:
            return _restore(data, build, backend, caps, specs, warps, spec, guards)
        except Exception:  # a stale or foreign entry: compile instead (and replace it)
            continue
    return None


def store(
    kernel: Any,
    backend: Backend,
    caps: Target,
    specs: Sequence[Any],
    warps: int,
    spec: str,
    ready: Ready,
    reads: Reads,
) -> None:
    """Keep a freshly compiled specialization for the next process."""
    if not enabled():
        return
    key = program_key(kernel, backend, caps, specs, warps, spec)
    if key is None:
        return
    try:
        recorded = _recorded(kernel.fn, reads)
    except Unkeyable:
        return
    exported = backend.export(ready.built)
    if exported is None:
        return
    facts, binary = exported
    build = _build_key(key, recorded)
    header = {
        "format": FORMAT,
        "build": build,  # an entry found under another key is never used
        "name": ready.built.name,
        "thread": _signature(ready.built.thread),
        "writes": sorted(ready.writes),
        "facts": facts,
    }
    cache = DiskCache()
    cache.put(build, _pack(header, binary))
    variants = [v for v in _variants(cache.get(key)) if v != recorded]
    cache.put(key, json.dumps([recorded, *variants][:MAX_VARIANTS]).encode())


def program_key(
    kernel: Any, backend: Backend, caps: Target, specs: Sequence[Any], warps: int, spec: str
) -> str | None:
    """The key of everything but the globals' values (``kernel``: a ``tv.Kernel``); None when
    there is none."""
    try:
        toolchain = backend.toolchain(caps, spec)
        if toolchain is None:
            return None
        source = source_text(kernel.fn, kernel.read_source)
        parts = [FORMAT, generator_stamp(), source, fingerprint(tuple(specs)),
                 str(warps), backend.name, fingerprint(caps), toolchain]  # fmt: skip
    except Exception:  # no stable text, or no toolchain: compiling reports what is wrong
        return None
    return DiskCache.key(*parts)


@functools.cache
def generator_stamp() -> str:
    """tilevm's version and the name, size and modification time of every file of the code
    generator (cheap: a checkout whose files change gets new keys without hashing them)."""
    digest = hashlib.sha256(version().encode())
    roots: list[str] = []
    for package in GENERATOR:
        found = importlib.util.find_spec(package)
        if found is not None and found.submodule_search_locations:
            roots += found.submodule_search_locations
    real = sorted({os.path.realpath(r) for r in roots})
    for root in real:
        if not any(root.startswith(other + os.sep) for other in real):
            _stamp_folder(root, digest)
    return digest.hexdigest()


def _stamp_folder(folder: str, digest: Any) -> None:
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_dir():
            if entry.name != "__pycache__":
                _stamp_folder(entry.path, digest)
        elif not entry.name.endswith((".pyc", ".so")):
            stat = entry.stat()
            digest.update(f"{entry.path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())


# ----- the names a translation read ------------------------------------------------------------
def _recorded(fn: Any, reads: Reads) -> dict[str, list]:
    """Each read as (owner, name, value), all as text; the @tv.funcs inlined."""
    return {
        "reads": [[_owner_id(fn, r.owner), r.name, fingerprint(r.value)] for r in reads.items],
        "inlined": sorted({fingerprint(func) for func in reads.inlined}),
    }


def _owner_id(fn: Any, owner: Any) -> str:
    return "kernel" if owner is fn else fingerprint(owner)


def _recheck(fn: Any, specs: Sequence[Any], recorded: Any) -> tuple[Guard, ...] | None:
    """Read a variant's names again in this process: the guards when every value is the one
    recorded, else None. Owners (helpers, modules) are found through the values read before
    them, as the translation found them."""
    try:
        known: dict[str, Any] = {"kernel": fn}
        for s in specs:
            if s.kind == "constexpr":
                _learn(known, s.value)
        guards: list[Guard] = []
        for owner_id, name, text in recorded["reads"]:
            owner = known.get(owner_id)
            if owner is None:
                return None
            get = _getter(owner, name)
            value = get(name, ABSENT)
            kept = value if value is ABSENT else snapshot(value, name, None)
            if fingerprint(kept) != text:
                return None
            guards.append((get, name, kept))
            _learn(known, kept)
        if not all(func in known for func in recorded["inlined"]):
            return None
        return tuple(guards)
    except Exception:  # a value that cannot be kept or named any more: compile again
        return None


def _learn(known: dict[str, Any], value: Any) -> None:
    for owner in owners(value):
        known.setdefault(fingerprint(owner), owner)


def _getter(owner: Any, name: str) -> Any:
    if isinstance(owner, Func):
        return getter(owner.fn, name)
    if isinstance(owner, (types.ModuleType, type)):
        return attribute_getter(owner, name)
    return getter(owner, name)


def _variants(data: bytes | None) -> list[Any]:
    if data is None:
        return []
    try:
        found = json.loads(data)
    except ValueError:
        return []
    return found if isinstance(found, list) else []


def _build_key(key: str, recorded: Any) -> str:
    return DiskCache.key(key, json.dumps(recorded, sort_keys=True))


# ----- build entries ----------------------------------------------------------------------------
def _pack(header: dict[str, Any], binary: bytes) -> bytes:
    text = json.dumps(header).encode()
    return _LENGTH.pack(len(text)) + text + bytes(binary)


def _restore(
    data: bytes,
    build: str,
    backend: Backend,
    caps: Target,
    specs: Sequence[Any],
    warps: int,
    spec: str,
    guards: tuple[Guard, ...],
) -> Ready:
    (length,) = _LENGTH.unpack_from(data)
    header = json.loads(data[_LENGTH.size : _LENGTH.size + length])
    binary = data[_LENGTH.size + length :]
    if header["format"] != FORMAT or header["build"] != build:
        raise ValueError("an entry of another program")
    thread = _thread(header["thread"])
    writes = frozenset(header["writes"])
    _check(thread, writes, specs, warps, caps)
    built = backend.restore(header["name"], thread, binary, header["facts"], caps, spec)
    return Ready(built, writes, guards, restored=True)


def _signature(thread: ThreadKernel) -> dict[str, Any]:
    params = [[p.name, p.kind, p.dtype.name, p.arg, p.axis] for p in thread.params]
    return {"name": thread.name, "params": params, "threads": thread.num_threads,
            "shared": thread.shared_bytes, "target": thread.target}  # fmt: skip


def _thread(found: dict[str, Any]) -> ThreadKernel:
    """The thread program's signature: its parameters and launch shape, no body."""
    params = tuple(
        Param(str(name), str(kind), dts.dtype(dtype), str(arg), int(axis))
        for name, kind, dtype, arg, axis in found["params"]
    )
    return ThreadKernel(str(found["name"]), params, (), int(found["threads"]),
                        int(found["shared"]), str(found["target"]))  # fmt: skip


def _check(
    thread: ThreadKernel, writes: frozenset[str], specs: Sequence[Any], warps: int, caps: Target
) -> None:
    """An entry must fit the launch it is used for: every parameter names an argument of its
    kind (and an axis it has), the block is ``warps`` warps of this target."""
    by_name = {s.name: s for s in specs}
    for p in thread.params:
        s = by_name[p.arg]
        expected = "scalar" if p.kind == "scalar" else "tensor"
        if p.kind not in ("tensor", "dim", "stride", "scalar") or s.kind != expected:
            raise ValueError(f"parameter {p.name} does not fit argument {p.arg}")
        if p.kind in ("dim", "stride") and not 0 <= p.axis < s.rank:
            raise ValueError(f"parameter {p.name}: no axis {p.axis}")
        if p.kind == "scalar" and p.dtype != s.dtype:
            raise ValueError(f"parameter {p.name} is {p.dtype}, not {s.dtype}")
    if thread.num_threads != warps * caps.warp_size or thread.target != caps.name:
        raise ValueError("an entry for another block size or target")
    if not writes <= {s.name for s in specs if s.kind == "tensor"}:
        raise ValueError("writes a tensor the kernel does not take")


generator_stamp()  # now, before any file of the generator can change under this process


__all__ = ["Ready", "generator_stamp", "load", "program_key", "store"]
