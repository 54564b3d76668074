"""A kernel's shared library (its object code linked by ``build.link``) loaded with ctypes:
how a kernel from the program cache starts without LLVM. Loading llvmlite costs about 20 ms per
process; opening a small library, well under one.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import tempfile
from pathlib import Path

from tilevm.backends.cpu.runner import BLOCKS


class Linked:
    """A kernel's shared library opened in this process (libraries are never closed)."""

    def __init__(self, library: bytes, name: str, folder: Path) -> None:
        path = _materialize(library, folder)
        # RTLD_NOW: a symbol that does not resolve fails here, not in the middle of a launch
        self.library = ctypes.CDLL(str(path), mode=os.RTLD_NOW | os.RTLD_LOCAL)
        address = ctypes.cast(getattr(self.library, name), ctypes.c_void_p).value
        self.function = BLOCKS(address)
        self.workspaces: list = []  # reused across launches, one per range in flight


def _materialize(library: bytes, folder: Path) -> Path:
    """The library as a file named by its digest. dlopen identifies libraries by path, so one
    path must always hold the same bytes: a file that differs is replaced (atomically)."""
    path = folder / f"{hashlib.sha256(library).hexdigest()}.so"
    with contextlib.suppress(OSError):
        if path.read_bytes() == library:
            return path
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".lib.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(library)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


__all__ = ["Linked"]
