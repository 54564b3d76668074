"""A persistent on-disk cache of compiled kernels (cubins, code objects, objects).

Why: compiling takes 50 ms (NVRTC) to seconds (SYCL JIT) per kernel; a process that starts again
should not pay that again. Entries are addressed by a hash of everything that determines the
output (source, target, options, compiler fingerprint), so a hit never needs validation beyond
an integrity check, and processes sharing the folder can never disagree about a key's value.

The cache only ever speeds things up: an unreadable or corrupt entry is a miss, and a folder that
cannot be written warns once and compiles on. ``TILEVM_CACHE=0`` turns it off;
``TILEVM_CACHE_DIR`` moves it (default ``$XDG_CACHE_HOME/tilevm`` or ``~/.cache/tilevm``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import struct
import tempfile
import warnings
from pathlib import Path

from tilevm.errors import TilevmValueError

# An entry file: magic, payload length, sha256 of the payload, payload. The digest catches
# truncated or damaged files (disk errors, foreign files) that an atomic rename cannot.
_MAGIC = b"TVC1"
_HEADER = struct.Struct(f"<{len(_MAGIC)}sQ32s")
_KEY = re.compile(r"[0-9a-f]{64}")

_warned_roots: set[str] = set()  # warn once per process and folder, not once per kernel


class CacheWarning(UserWarning):
    """The compile cache cannot be used; compilation goes on without it."""


def default_root() -> Path:
    """``$TILEVM_CACHE_DIR``, else ``$XDG_CACHE_HOME/tilevm``, else ``~/.cache/tilevm``."""
    explicit = os.environ.get("TILEVM_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "tilevm"


def enabled() -> bool:
    """False when ``TILEVM_CACHE=0`` (read on every call, so tests and tools can toggle it)."""
    return os.environ.get("TILEVM_CACHE", "1").strip().lower() not in ("0", "false", "off", "no")


class DiskCache:
    """Bytes by key in files ``<root>/<key[:2]>/<key>``, written atomically.

    Safe across processes: a writer fills a temporary file in the entry's folder, fsyncs it and
    renames it over the entry (``os.replace`` is atomic), so readers see the old file, the new
    one or none, never a partial one, and concurrent writers of one key both succeed.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    @staticmethod
    def key(*parts: str | bytes) -> str:
        """The sha256 hex digest of ``parts``; each part is typed and length-prefixed, so
        ``("ab", "c")``, ``("a", "bc")`` and ``(b"ab", "c")`` all differ."""
        digest = hashlib.sha256()
        for part in parts:
            if isinstance(part, str):
                tag, data = b"s", part.encode()
            elif isinstance(part, (bytes, bytearray, memoryview)):
                tag, data = b"b", bytes(part)
            else:
                raise TilevmValueError(
                    "cache key parts must be str or bytes",
                    found=type(part).__name__,
                    code="cache-key",
                )
            digest.update(tag + struct.pack("<Q", len(data)) + data)
        return digest.hexdigest()

    def path(self, key: str) -> Path:
        """Where the entry for ``key`` lives (sharded by its first two hex digits)."""
        if not _KEY.fullmatch(key):
            raise TilevmValueError(
                "not a cache key", expected="DiskCache.key(...)", found=repr(key), code="cache-key"
            )
        return self.root / key[:2] / key

    def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None (missing, unreadable, corrupt, disabled)."""
        if not enabled():
            return None
        try:
            blob = self.path(key).read_bytes()
        except OSError:
            return None
        if len(blob) < _HEADER.size:
            return None
        magic, length, digest = _HEADER.unpack_from(blob)
        data = blob[_HEADER.size :]
        if magic != _MAGIC or length != len(data) or hashlib.sha256(data).digest() != digest:
            return None  # left in place: the next put replaces it atomically
        return data

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``; on any file system error warn once and go on."""
        if not enabled():
            return
        final = self.path(key)
        data = bytes(data)
        header = _HEADER.pack(_MAGIC, len(data), hashlib.sha256(data).digest())
        tmp: str | None = None
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=final.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(header)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
            tmp = None
        except OSError as exc:
            self._warn(exc)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _warn(self, exc: OSError) -> None:
        root = str(self.root)
        if root in _warned_roots:
            return
        _warned_roots.add(root)
        warnings.warn(
            f"tilevm's compile cache at {root} cannot be written ({exc}); kernels are compiled "
            "without it. Set TILEVM_CACHE_DIR to a writable folder or TILEVM_CACHE=0.",
            CacheWarning,
            stacklevel=3,
        )


__all__ = ["CacheWarning", "DiskCache", "default_root", "enabled"]
