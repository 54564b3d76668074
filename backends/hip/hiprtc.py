"""HIP C++ to a code object with hipRTC, through hip-python (no GPU needed to compile).

hipRTC supplies the HIP runtime's definitions itself (the renderer's source includes no
header) and links ROCm's device libraries. hip-python is imported on first use, so
``import tilevm`` works without it; ``libs.prepare`` makes Debian's ROCm 5 libraries loadable
without ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import functools
import os
import re
from types import ModuleType

from tilevm.backends.hip import libs
from tilevm.errors import CompileError, DeviceError

INSTALL_HINT = "pip install hip-python; apt-get install libamdhip64-5 libhiprtc-builtins5 (or ROCm)"
OPTIONS = ("-O3", "-std=c++17")
# The first ROCm whose hipRTC targets each arch family (older ones abort the process on it).
ARCH_SINCE = {"gfx94": (5, 5), "gfx11": (5, 5)}


class HipUnavailable(DeviceError):
    """hip-python or the hipRTC library is missing, so HIP code cannot be compiled here."""

    code = "no-hip-runtime"


@functools.cache
def _load() -> tuple[ModuleType | None, str | None]:
    """``(hiprtc module, None)`` once its library answers, else ``(None, reason)``."""
    try:
        from hip import hiprtc
    except ImportError:
        return None, "no HIP runtime: hip-python is not installed (pip install hip-python)"
    reason = libs.prepare()
    if reason is not None:
        return None, reason
    try:
        err, major, minor = hiprtc.hiprtcVersion()
    except (RuntimeError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, f"no HIP runtime: libhiprtc.so cannot be loaded ({first})"
    if int(err) != 0:
        return None, f"no HIP runtime: hiprtcVersion failed ({err})"
    return hiprtc, None


def unavailable() -> str | None:
    """None when hipRTC can be loaded here, else a one-line reason."""
    return _load()[1]


def _hiprtc() -> ModuleType:
    module, reason = _load()
    if module is None:
        raise HipUnavailable(reason, hint=INSTALL_HINT)
    return module


@functools.cache
def compiler_fingerprint() -> str:
    """hipRTC's version and library, for compile-cache keys."""
    hiprtc = _hiprtc()
    _, major, minor = hiprtc.hiprtcVersion()
    runtime = libs.find_runtime()
    name = os.path.realpath(runtime) if runtime else "?"
    return f"hiprtc {major}.{minor} ({os.path.basename(name)})"


def _check(hiprtc: ModuleType, err, what: str) -> None:
    if int(err) != 0:
        raise CompileError(
            f"hipRTC failed: {what}",
            expected="HIPRTC_SUCCESS",
            found=str(err),
            code="hip-compile",
        )


def _log(hiprtc: ModuleType, prog) -> str:
    err, size = hiprtc.hiprtcGetProgramLogSize(prog)
    if int(err) != 0 or size <= 1:
        return ""
    buf = bytearray(size)
    hiprtc.hiprtcGetProgramLog(prog, buf)
    return bytes(buf).rstrip(b"\0").decode(errors="replace")


@functools.cache
def runtime_version() -> tuple[int, ...]:
    """The ROCm release of the loaded HIP runtime from its file name (``libamdhip64.so.5.2.x``
    -> ``(5, 2)``); ``()`` when the name does not say."""
    runtime = libs.find_runtime()
    match = re.search(r"\.so\.(\d+)\.(\d+)", os.path.realpath(runtime)) if runtime else None
    return (int(match.group(1)), int(match.group(2))) if match else ()


def knows(arch: str) -> bool:
    """Whether this hipRTC can build ``arch`` (gfx940-942 and gfx11 only from ROCm 5.5 on)."""
    found = runtime_version()
    since = next((v for prefix, v in ARCH_SINCE.items() if arch.startswith(prefix)), ())
    return not (found and since and found < since)


def _check_arch(arch: str) -> None:
    if not knows(arch):
        found = ".".join(map(str, runtime_version()))
        since = next(v for prefix, v in ARCH_SINCE.items() if arch.startswith(prefix))
        raise CompileError(
            f"this hipRTC (ROCm {found}) cannot compile for {arch}",
            expected=f"ROCm {'.'.join(map(str, since))} or newer for {arch}",
            found=f"ROCm {found}",
            hint="install a newer ROCm, or compile offline with clang (backends.hip.clang)",
            code="hip-compile",
        )


def compile_code_object(source: str, arch: str, name: str = "kernel") -> bytes:
    """The code object (an ELF) of HIP ``source`` for ``arch`` (e.g. ``gfx90a``)."""
    hiprtc = _hiprtc()
    _check_arch(arch)
    err, prog = hiprtc.hiprtcCreateProgram(source.encode(), f"{name}.hip".encode(), 0, [], [])
    _check(hiprtc, err, "hiprtcCreateProgram")
    try:
        options = [f"--offload-arch={arch}".encode(), *(o.encode() for o in OPTIONS)]
        (err,) = hiprtc.hiprtcCompileProgram(prog, len(options), options)
        if int(err) != 0:
            raise CompileError(
                f"hipRTC could not compile the HIP source of {name} for {arch}",
                expected="HIP C++ that hipRTC compiles",
                found=_log(hiprtc, prog).strip()[-4000:] or str(err),
                hint="the log names the generated line; report it with the kernel (a tilevm bug)",
                code="hip-compile",
            )
        err, size = hiprtc.hiprtcGetCodeSize(prog)
        _check(hiprtc, err, "hiprtcGetCodeSize")
        code = bytearray(size)
        (err,) = hiprtc.hiprtcGetCode(prog, code)
        _check(hiprtc, err, "hiprtcGetCode")
        return bytes(code)
    finally:
        hiprtc.hiprtcDestroyProgram(prog.createRef())  # takes a hiprtcProgram*
