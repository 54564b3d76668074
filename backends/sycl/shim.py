"""Building and loading ``shim.cpp``: the host-only bridge to SYCL's run-time kernel compiler.

The shim is compiled on first use with the system C++ compiler (``$CXX``, else ``g++``, else
``c++``) against the headers and ``libsycl`` of the Python environment's intel-sycl-rt wheel,
and cached as ``<cache root>/sycl-shim/<hash>/libtvsycl.so``. The hash covers the shim's source,
the compiler's version and the SYCL runtime's version, so an upgrade of any of them builds a new
one; a build is written to a temporary file and renamed, so concurrent processes never load a
partial library.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tilevm.runtime.cache import default_root

SOURCE = Path(__file__).with_name("shim.cpp")
LIBRARY = "libtvsycl.so"

_P = ctypes.c_void_p
_PP = ctypes.POINTER(ctypes.c_void_p)
_S = ctypes.c_char_p


class ShimError(RuntimeError):
    """The shim cannot be built or loaded (the message says why, in one line first)."""


def environment_prefixes() -> list[Path]:
    """Where pip may have put the SYCL and OpenCL wheels' files: this environment, the one a
    virtual environment is based on, and the one dpctl was installed in."""
    found = [Path(sys.prefix), Path(sys.base_prefix)]
    spec = importlib.util.find_spec("dpctl")
    if spec is not None and spec.origin:  # <prefix>/lib/pythonX.Y/site-packages/dpctl/...
        found.append(Path(spec.origin).resolve().parents[4])
    return list(dict.fromkeys(found))


def sycl_prefix() -> Path:
    """The environment prefix whose ``include/sycl`` and ``lib/libsycl.so`` the shim uses."""
    for prefix in environment_prefixes():
        if (prefix / "include" / "sycl" / "sycl.hpp").exists():
            return prefix
    return Path(sys.prefix)


def runtime_version() -> str:
    """The installed intel-sycl-rt wheel's version ("unknown" outside a wheel install)."""
    try:
        return importlib.metadata.version("intel-sycl-rt")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def compiler() -> str | None:
    """The host C++ compiler the shim is built with, or None."""
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return name
    return None


def _compiler_version(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        why = f"no C++ compiler for the SYCL shim: {cxx} --version failed: {exc}"
        raise ShimError(why) from exc
    return out.stdout.splitlines()[0] if out.stdout else cxx


def library_path(cxx: str) -> Path:
    digest = hashlib.sha256()
    for part in (SOURCE.read_bytes(), _compiler_version(cxx).encode(), runtime_version().encode(),
                 str(sycl_prefix()).encode()):  # fmt: skip
        digest.update(len(part).to_bytes(8, "little") + part)
    return default_root() / "sycl-shim" / digest.hexdigest()[:24] / LIBRARY


def build(cxx: str, target: Path) -> None:
    """Compile the shim to ``target`` (atomically)."""
    prefix = sycl_prefix()
    if not (prefix / "include" / "sycl" / "sycl.hpp").exists():
        raise ShimError(f"no SYCL headers under {prefix / 'include'} (pip install intel-sycl-rt)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".libtvsycl.", suffix=".so", dir=target.parent)
    os.close(fd)
    lib = prefix / "lib"
    command = [cxx, "-std=c++17", "-O2", "-fPIC", "-shared", str(SOURCE), f"-I{prefix / 'include'}",
               f"-L{lib}", f"-Wl,-rpath,{lib}", "-lsycl", "-o", tmp]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            first = next((line for line in lines if "error" in line), lines[-1] if lines else "")
            raise ShimError(f"the SYCL shim does not compile: {first}\n" + "\n".join(lines[-20:]))
        os.replace(tmp, target)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ShimError(f"the SYCL shim does not compile: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@dataclass
class Shim:
    """The loaded shim's entry points (see shim.cpp for their contracts)."""

    lib: ctypes.CDLL
    path: Path

    def __post_init__(self) -> None:
        lib = self.lib
        lib.tv_sycl_version.restype = _S
        lib.tv_sycl_version.argtypes = []
        lib.tv_sycl_can_compile.restype = ctypes.c_int
        lib.tv_sycl_can_compile.argtypes = [_P]
        lib.tv_sycl_build.restype = ctypes.c_int
        lib.tv_sycl_build.argtypes = [_P, _P, _S, _S, _S, _PP, _PP,
                                      ctypes.POINTER(ctypes.c_size_t), _PP]  # fmt: skip
        lib.tv_sycl_load.restype = ctypes.c_int
        lib.tv_sycl_load.argtypes = [_P, _P, _S, ctypes.c_size_t, _S, _PP, _PP]
        lib.tv_sycl_free.restype = None
        lib.tv_sycl_free.argtypes = [_P]

    def version(self) -> str:
        return self.lib.tv_sycl_version().decode()

    def can_compile(self, device_ref: int) -> bool:
        return bool(self.lib.tv_sycl_can_compile(device_ref))

    def build(
        self, context_ref: int, device_ref: int, source: str, options: list[str], name: str
    ) -> tuple[int, bytes, str]:
        """(a new ``sycl::kernel*``, the SYCLBIN bundle, the build log); raises BuildFailed."""
        kernel, bundle, log = _P(), _P(), _P()
        size = ctypes.c_size_t()
        rc = self.lib.tv_sycl_build(
            context_ref, device_ref, source.encode(), "\n".join(options).encode(), name.encode(),
            ctypes.byref(kernel), ctypes.byref(bundle), ctypes.byref(size), ctypes.byref(log),
        )  # fmt: skip
        text = self._take_text(log)
        if rc != 0:
            raise BuildFailed(text)
        data = ctypes.string_at(bundle.value, size.value) if size.value else b""
        self.lib.tv_sycl_free(bundle)
        return kernel.value, data, text

    def load(self, context_ref: int, device_ref: int, bundle: bytes, name: str) -> int:
        """A new ``sycl::kernel*`` from a SYCLBIN bundle; raises BuildFailed."""
        kernel, log = _P(), _P()
        rc = self.lib.tv_sycl_load(context_ref, device_ref, bundle, len(bundle), name.encode(),
                                   ctypes.byref(kernel), ctypes.byref(log))  # fmt: skip
        text = self._take_text(log)
        if rc != 0:
            raise BuildFailed(text)
        return kernel.value

    def _take_text(self, pointer: ctypes.c_void_p) -> str:
        if not pointer.value:
            return ""
        text = ctypes.string_at(pointer.value).decode(errors="replace")
        self.lib.tv_sycl_free(pointer)
        return text


class BuildFailed(RuntimeError):
    """The SYCL kernel compiler rejected a source (the message is its log)."""


_loaded: Shim | None = None


def load() -> Shim:
    """The shim, built on first use (cached on disk) and loaded once per process."""
    global _loaded
    if _loaded is None:
        cxx = compiler()
        if cxx is None:
            raise ShimError("no C++ compiler for the SYCL shim: g++ not found (set CXX)")
        path = library_path(cxx)
        if not path.exists():
            build(cxx, path)
        try:
            _loaded = Shim(ctypes.CDLL(str(path)), path)
        except OSError as exc:
            raise ShimError(f"the SYCL shim does not load: {exc}") from exc
    return _loaded


__all__ = ["BuildFailed", "Shim", "ShimError", "compiler", "load", "runtime_version"]
