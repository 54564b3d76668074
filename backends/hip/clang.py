"""Offline HIP compiles with clang (no ROCm install, no GPU): code objects for CI to check.

``clang++ -x hip --offload-arch=<arch> --cuda-device-only --no-gpu-bundle-output -nogpulib
-nogpuinc -O3 -std=c++17`` builds one arch's code object from the renderer's source (its prelude
defines what the missing HIP headers would); ``llvm-objdump -d`` disassembles it. Without
ROCm's device libraries (``-nogpulib``) an f64 transcendental or a ``printf`` is an undefined
``__ocml_*``/``__ockl_*`` symbol: the error says so (hipRTC links them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from tilevm.errors import CompileError

VERSIONS = ("19", "20", "18")  # the Debian/LLVM apt packages' suffixes, preferred first
ARCHS = ("gfx90a", "gfx940", "gfx941", "gfx942", "gfx1100")
FLAGS = (
    "-x", "hip", "--cuda-device-only", "--no-gpu-bundle-output", "-nogpulib", "-nogpuinc",
    "-O3", "-std=c++17",
)  # fmt: skip


def _find(tool: str) -> str | None:
    for suffix in VERSIONS:
        path = shutil.which(f"{tool}-{suffix}")
        if path:
            return path
    return shutil.which(tool)


def find_clang() -> str | None:
    """The clang++ that compiles HIP offline (``clang++-19`` first), or None."""
    return os.environ.get("TILEVM_HIP_CLANG") or _find("clang++")


def find_objdump() -> str | None:
    """``llvm-objdump`` of the same LLVM (``llvm-objdump-19`` first), or None."""
    return _find("llvm-objdump")


def unavailable() -> str | None:
    """None when offline compiles work here, else why not (one line)."""
    if find_clang() is None:
        return "no clang++ for offline HIP compiles (apt-get install clang-19 lld-19)"
    return None


def compile_offline(source: str, arch: str, name: str = "kernel") -> bytes:
    """The code object (an ELF) of HIP ``source`` for ``arch`` (``gfx90a``, ``gfx942``...)."""
    clang = find_clang()
    if clang is None:
        raise CompileError(
            "no clang++ to compile HIP offline",
            expected="clang++-19 (or newer) with the AMDGPU target and lld",
            found="none on PATH",
            hint="apt-get install clang-19 lld-19 llvm-19, or set TILEVM_HIP_CLANG",
            code="hip-toolchain",
        )
    arch = arch.split(":")[0]  # feature suffixes (gfx90a:xnack-) are not offload archs
    with tempfile.TemporaryDirectory(prefix="tilevm-hip-") as tmp:
        src, out = os.path.join(tmp, f"{name}.hip"), os.path.join(tmp, f"{name}.hsaco")
        with open(src, "w") as f:
            f.write(source)
        cmd = [clang, *FLAGS, f"--offload-arch={arch}", src, "-o", out]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise _compile_error(done.stderr, arch, name)
        with open(out, "rb") as f:
            return f.read()


def _compile_error(log: str, arch: str, name: str) -> CompileError:
    missing = sorted(set(re.findall(r"undefined (?:hidden )?symbol: (__o(?:cml|ckl)_\w+)", log)))
    hint = "the log names the generated line; report it with the kernel (a tilevm bug)"
    if missing:
        hint = (
            f"{', '.join(missing)} live in ROCm's device libraries, which offline compiles do "
            "not link: compile with hipRTC (a HIP device) for f64 transcendentals, tan, atan, erf, "
            "log1p, expm1 and printf"
        )
    return CompileError(
        f"clang could not compile the HIP source of {name} for {arch}",
        expected="HIP C++ that clang compiles",
        found=log.strip()[-4000:],
        hint=hint,
        code="hip-compile",
    )


def disassemble(code_object: bytes) -> str:
    """``llvm-objdump -d`` of a code object: the kernel's GCN/CDNA instructions."""
    objdump = find_objdump()
    if objdump is None:
        raise CompileError(
            "no llvm-objdump to disassemble a HIP code object",
            expected="llvm-objdump-19 (apt-get install llvm-19)",
            found="none on PATH",
            code="hip-toolchain",
        )
    with tempfile.NamedTemporaryFile(suffix=".hsaco") as f:
        f.write(code_object)
        f.flush()
        done = subprocess.run([objdump, "-d", f.name], capture_output=True, text=True)
    if done.returncode != 0:
        raise CompileError(
            "llvm-objdump could not read the code object",
            expected="an AMDGPU ELF code object",
            found=done.stderr.strip()[-2000:],
            code="hip-disassemble",
        )
    return done.stdout
