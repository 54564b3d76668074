"""CUDA C++ to cubin with NVRTC, with errors that show the offending source lines.

Why a cubin and never PTX: the GPU machines' driver (CUDA 13.0) rejects PTX written by a newer
NVRTC, while a cubin is machine code the driver only loads. NVRTC needs no GPU and no driver, so
this module also works on the development and CI machines, which have neither.

cuda-python is imported on first use, so ``import tilevm`` works without it; using this module
without it raises ``CudaUnavailable`` with the install hint.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import re
from collections.abc import Sequence
from types import ModuleType

from tilevm.dtypes.errors import SourceLocation
from tilevm.errors import CompileError, DeviceError

_INSTALL_HINT = "pip install tilevm[cuda]  (cuda-python, nvidia-cuda-nvrtc, nvidia-cuda-runtime)"
_ARCH = re.compile(r"sm_(\d+)([af]?)")
_MAX_SHOWN_LINES = 20


class CudaUnavailable(DeviceError):
    """cuda-python or the NVRTC library is missing, so CUDA code cannot be compiled here."""

    code = "no-cuda-toolkit"


class CudaCompileError(CompileError):
    """NVRTC rejected the source: ``log`` is NVRTC's log, the message also shows the bad lines."""

    code = "cuda-compile"

    def __init__(self, message: str, *, log: str = "", source: str = "", **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.log = log
        self.source = source


@functools.cache
def _nvrtc() -> ModuleType:
    """``cuda.bindings.nvrtc`` with its library loaded, or ``CudaUnavailable``."""
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        raise CudaUnavailable(
            "cuda-python is not installed, so CUDA kernels cannot be compiled",
            hint=_INSTALL_HINT,
        ) from None
    try:
        # The first call loads libnvrtc; a missing library surfaces here as RuntimeError/OSError.
        nvrtc.nvrtcVersion()
    except (RuntimeError, OSError) as exc:
        raise CudaUnavailable(
            f"the NVRTC library cannot be loaded: {exc}",
            hint=_INSTALL_HINT,
        ) from None
    return nvrtc


def _check(result: tuple, call: str) -> tuple:
    """Split a cuda-python ``(nvrtcResult, *values)`` tuple; a failure is a compile error."""
    nvrtc = _nvrtc()
    err, *values = result
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise CudaCompileError(f"{call} failed: {_error_name(err)}")
    return tuple(values)


def _error_name(err: object) -> str:
    nvrtc = _nvrtc()
    ok, text = nvrtc.nvrtcGetErrorString(err)
    return text.decode() if ok == nvrtc.nvrtcResult.NVRTC_SUCCESS else str(err)


@functools.cache
def nvrtc_version() -> tuple[int, int]:
    """The (major, minor) version of the NVRTC library in use, e.g. ``(13, 0)``."""
    major, minor = _check(_nvrtc().nvrtcVersion(), "nvrtcVersion")
    return int(major), int(minor)


@functools.cache
def supported_archs() -> tuple[int, ...]:
    """The compute capabilities (as ``80``, ``90``, ...) this NVRTC can compile for."""
    nvrtc = _nvrtc()
    (archs,) = _check(nvrtc.nvrtcGetSupportedArchs(), "nvrtcGetSupportedArchs")
    return tuple(int(a) for a in archs)


@functools.cache
def compiler_fingerprint() -> str:
    """What identifies the compiler in cache keys: the NVRTC version and its library file.

    ``nvrtcVersion`` has no patch level, so the library's name and size are added (best effort):
    two NVRTC builds that generate different code do not share cache entries.
    """
    major, minor = nvrtc_version()
    text = f"nvrtc {major}.{minor}"
    try:
        from cuda.pathfinder import load_nvidia_dynamic_lib

        path = load_nvidia_dynamic_lib("nvrtc").abs_path
        if path:
            text += f" ({os.path.basename(path)}, {os.path.getsize(path)} bytes)"
    except Exception:  # the version alone is still a valid fingerprint
        pass
    return text


@functools.cache
def installed_fingerprint() -> str:
    """``compiler_fingerprint`` without loading NVRTC, for looking up cached programs (loading
    it imports cuda.pathfinder: about 40 ms of a cached kernel's start): the pip-installed
    NVRTC libraries' paths, sizes and modification times, and the variables that point the
    loader elsewhere. Where no NVRTC is pip-installed, ``compiler_fingerprint`` itself."""
    found = []
    package = importlib.util.find_spec("nvidia")
    roots = package.submodule_search_locations if package is not None else None
    for root in roots or []:
        for pattern in ("*/lib/libnvrtc.so*", "*/bin/nvrtc64*.dll"):
            for path in sorted(glob.glob(os.path.join(root, pattern))):
                stat = os.stat(path)
                found.append(f"{path} {stat.st_size} {stat.st_mtime_ns}")
    if not found:
        return compiler_fingerprint()
    places = [os.environ.get(name, "") for name in ("CUDA_HOME", "CUDA_PATH", "CONDA_PREFIX")]
    return "; ".join([*found, *places])


@functools.cache
def _include_dir() -> str | None:
    """The CUDA runtime headers' folder (for ``cuda_fp16.h``, ``cuda_bf16.h``), if installed."""
    try:
        from cuda.pathfinder import find_nvidia_header_directory

        return find_nvidia_header_directory("cudart")
    except Exception:  # no headers: sources that include none still compile
        return None


def _check_arch(arch: str) -> None:
    match = _ARCH.fullmatch(arch)
    supported = supported_archs()
    if match is None or int(match.group(1)) not in supported:
        raise CudaCompileError(
            f"NVRTC {'.'.join(map(str, nvrtc_version()))} cannot compile for {arch!r}",
            expected="sm_<cc> or sm_<cc>a, cc one of " + ", ".join(map(str, supported)),
            found=repr(arch),
        )


def _source_excerpt(source: str, log: str, name: str) -> tuple[str, SourceLocation | None]:
    """The source lines NVRTC's log blames (``name(LINE): error``), numbered, and the first one.

    Each blamed line (marked ``>``) comes with the line before it: C++ compilers often report a
    missing ``;`` on the line after the one that lacks it.
    """
    lines = source.splitlines()
    pattern = re.compile(rf"^{re.escape(name)}\((\d+)\): (?:catastrophic )?error", re.MULTILINE)
    blamed = sorted({int(m.group(1)) for m in pattern.finditer(log)})
    blamed = [n for n in blamed if 1 <= n <= len(lines)]
    if not blamed:
        return "", None
    kept = blamed[:_MAX_SHOWN_LINES]
    numbers = sorted({m for n in kept for m in (n - 1, n) if m >= 1})
    width = len(str(numbers[-1]))
    shown: list[str] = []
    for i, n in enumerate(numbers):
        if i and n != numbers[i - 1] + 1:
            shown.append(f"  {'':>{width}} | ...")
        mark = ">" if n in blamed else " "
        shown.append(f"{mark} {n:>{width}} | {lines[n - 1]}")
    if len(blamed) > len(kept):
        shown.append(f"  ... and {len(blamed) - len(kept)} more lines with errors")
    first = blamed[0]
    location = SourceLocation(name, first, _caret_column(log, name, first), lines[first - 1])
    return "\n".join(shown), location


def _caret_column(log: str, name: str, line: int) -> int:
    """The column of NVRTC's ``^`` under the first error on ``line`` (0 when there is none)."""
    log_lines = log.splitlines()
    for i, text in enumerate(log_lines[:-2]):
        if text.startswith(f"{name}({line}): "):
            caret = log_lines[i + 2]
            # NVRTC echoes the source line indented by two spaces, the caret line likewise.
            if caret.strip() == "^" and caret.startswith("  "):
                return max(caret.index("^") - 2, 0)
            return 0
    return 0


def compile_cubin(
    source: str, arch: str, options: Sequence[str] = (), name: str = "kernel.cu"
) -> bytes:
    """Compile CUDA C++ ``source`` to a cubin for ``arch`` (``"sm_80"``, ``"sm_90a"``, ...).

    The source is C++17 and may include the CUDA runtime headers (``cuda_fp16.h``,
    ``cuda_bf16.h``). ``options`` are extra NVRTC options. Raises ``CudaCompileError`` with
    NVRTC's log and the offending source lines when NVRTC rejects the source.
    """
    nvrtc = _nvrtc()
    _check_arch(arch)
    opts = [f"--gpu-architecture={arch}", "-std=c++17"]
    include = _include_dir()
    if include is not None:
        opts.append(f"-I{include}")
    opts.extend(options)

    (prog,) = _check(
        nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], []), "nvrtcCreateProgram"
    )
    try:
        # NVRTC is thread-safe across programs: compiles may run in parallel threads.
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), [o.encode() for o in opts])
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise _compile_failure(prog, err, source, arch, name, include)
        (size,) = _check(nvrtc.nvrtcGetCUBINSize(prog), "nvrtcGetCUBINSize")
        cubin = bytearray(size)
        _check(nvrtc.nvrtcGetCUBIN(prog, cubin), "nvrtcGetCUBIN")
        return bytes(cubin)
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def _program_log(prog: object) -> str:
    nvrtc = _nvrtc()
    (size,) = _check(nvrtc.nvrtcGetProgramLogSize(prog), "nvrtcGetProgramLogSize")
    buf = bytearray(size)
    _check(nvrtc.nvrtcGetProgramLog(prog, buf), "nvrtcGetProgramLog")
    return bytes(buf).rstrip(b"\0").decode(errors="replace").rstrip()


def _compile_failure(
    prog: object, err: object, source: str, arch: str, name: str, include: str | None
) -> CudaCompileError:
    log = _program_log(prog)
    excerpt, location = _source_excerpt(source, log, name)
    parts = [f"NVRTC could not compile {name} for {arch} ({_error_name(err)})"]
    if log:
        parts.append("NVRTC log:\n" + log)
    if excerpt:
        parts.append(f"offending lines of {name}:\n" + excerpt)
    hint = None
    if include is None and re.search(r"cannot open source file", log):
        hint = "the CUDA runtime headers were not found: " + _INSTALL_HINT
    return CudaCompileError("\n".join(parts), log=log, source=source, location=location, hint=hint)


__all__ = [
    "CudaCompileError",
    "CudaUnavailable",
    "compile_cubin",
    "compiler_fingerprint",
    "nvrtc_version",
    "supported_archs",
]
