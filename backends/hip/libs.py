"""Where hip-python finds the HIP runtime and hipRTC.

hip-python opens ``$ROCM_PATH/lib/libamdhip64.so`` and ``.../libhiprtc.so`` (``/opt/rocm`` by
default), else the bare names through the system loader. Debian's ROCm packages ship neither
name: only ``libamdhip64.so.5`` (which holds hipRTC as well, up to ROCm 5). So where hip-python
would find nothing, ``prepare()`` links both names to that library in a cache folder and points
``ROCM_PATH`` there, before hip-python's first call. An installed ROCm, or a ``ROCM_PATH`` the
user set, is left alone.
"""

from __future__ import annotations

import ctypes.util
import functools
import os
import pathlib

SYSTEM_DIRS = ("/opt/rocm/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib")
RUNTIME_NAMES = ("libamdhip64.so", "libamdhip64.so.6", "libamdhip64.so.5")


def _cache_dir() -> pathlib.Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "tilevm" / "rocm"


def find_runtime() -> pathlib.Path | None:
    """The HIP runtime library (``libamdhip64.so*``) of an installed ROCm, or None."""
    roots = [os.environ.get("ROCM_PATH"), os.environ.get("ROCM_HOME")]
    dirs = [os.path.join(r, "lib") for r in roots if r] + list(SYSTEM_DIRS)
    for name in RUNTIME_NAMES:
        for d in dirs:
            path = pathlib.Path(d) / name
            if path.exists():
                return path
    found = ctypes.util.find_library("amdhip64")  # a soname in the loader's cache
    if found:
        for d in SYSTEM_DIRS:
            if (pathlib.Path(d) / found).exists():
                return pathlib.Path(d) / found
    return None


def _resolves(lib: str) -> bool:
    root = os.environ.get("ROCM_PATH") or os.environ.get("ROCM_HOME") or "/opt/rocm"
    return (pathlib.Path(root) / "lib" / lib).exists()


@functools.cache
def prepare() -> str | None:
    """Make hip-python's library lookup find ``libamdhip64.so`` and ``libhiprtc.so``; None
    when it will, else why not (one line)."""
    if _resolves("libamdhip64.so") and _resolves("libhiprtc.so"):
        return None
    if os.environ.get("ROCM_PATH") or os.environ.get("ROCM_HOME"):
        return None  # the user's choice: hip-python reports what is missing there
    runtime = find_runtime()
    if runtime is None:
        return "no HIP runtime: libamdhip64.so not found (apt-get install libamdhip64-5, or ROCm)"
    lib = _cache_dir() / runtime.name.replace(".", "_") / "lib"
    try:
        lib.mkdir(parents=True, exist_ok=True)
        for name in ("libamdhip64.so", "libhiprtc.so"):
            link = lib / name
            if not link.exists():
                tmp = lib / f".{name}.{os.getpid()}"
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(runtime.resolve())
                os.replace(tmp, link)  # atomic: concurrent processes agree
    except OSError as exc:
        return f"no HIP runtime: cannot link libhiprtc.so to {runtime} in {lib} ({exc})"
    os.environ["ROCM_PATH"] = str(lib.parent)
    return None
