"""Autotuning results on disk: one JSON file per (device fingerprint, kernel).

A file holds, for each key (the argument values and shapes the tuner keys on), the best config
and the time of every candidate. It lives in ``<cache root>/autotune/`` (``TILEVM_CACHE_DIR``;
nothing is read or written with ``TILEVM_CACHE=0``), its name hashes the kernel's name and
source and the device's fingerprint, and its contents repeat them: a file written for other
hardware, another tilevm version, an edited kernel or another list of configs is ignored and
replaced, as is a corrupt one. Writes go to a temporary file renamed over the old one, after
merging what other processes stored meanwhile.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tilevm.runtime import cache

FORMAT = "tilevm-autotune-1"

_warned: set[str] = set()


@dataclass(frozen=True)
class Identity:
    """Whose results a file holds: a kernel (its name and source) tuned over a list of configs
    on a device."""

    kernel: str
    source: str  # sha256 of the kernel's source text
    configs: str  # sha256 of the configs' printed forms, in order
    fingerprint: str

    def path(self, root: Path | None = None) -> Path:
        digest = hashlib.sha256(f"{self.source}\n{self.fingerprint}".encode()).hexdigest()
        folder = (root or cache.default_root()) / "autotune"
        return folder / f"{self.kernel}-{digest[:24]}.json"

    def header(self) -> dict[str, str]:
        return {
            "format": FORMAT,
            "kernel": self.kernel,
            "source": self.source,
            "configs": self.configs,
            "fingerprint": self.fingerprint,
        }


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load(identity: Identity) -> dict[str, dict[str, Any]]:
    """The entries stored for ``identity`` by key; empty when there is no file, it is
    unreadable or corrupt, or it was written for another kernel, device or config list."""
    if not cache.enabled():
        return {}
    try:
        data = json.loads(identity.path().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or any(data.get(k) != v for k, v in identity.header().items()):
        return {}
    entries = data.get("entries")
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(v, dict) and isinstance(k, str)}


def store(identity: Identity, key: str, entry: dict[str, Any]) -> None:
    """Add ``entry`` under ``key`` to the file, keeping the entries already there."""
    if not cache.enabled():
        return
    entries = load(identity)
    entries[key] = entry
    text = json.dumps({**identity.header(), "entries": entries}, indent=1, sort_keys=True)
    _write_atomic(identity.path(), text)


def _write_atomic(path: Path, text: str) -> None:
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        _warn(path.parent, exc)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _warn(folder: Path, exc: OSError) -> None:
    if str(folder) in _warned:
        return
    _warned.add(str(folder))
    warnings.warn(
        f"tilevm cannot store autotuning results in {folder} ({exc}); configs are tuned again "
        "in each process. Set TILEVM_CACHE_DIR to a writable folder or TILEVM_CACHE=0.",
        cache.CacheWarning,
        stacklevel=4,
    )


__all__ = ["Identity", "load", "sha256", "store"]
