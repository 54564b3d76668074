"""SASS listings of cubins, from ``cuobjdump -sass`` (pip package ``nvidia-cuda-cuobjdump``).

Why: tests and developers check the machine code NVRTC made (128-bit loads are ``LDG.E.128``,
tensor-core matmuls have ``HMMA``/``HGMMA``) on machines with no GPU; cuobjdump needs none.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
import tempfile

from tilevm.errors import TilevmError

_INSTALL_HINT = (
    "pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm  (or put a CUDA toolkit's bin/ on PATH)"
)


class DisassemblerError(TilevmError, RuntimeError):
    """cuobjdump or nvdisasm is missing, or could not disassemble a cubin."""

    code = "cuda-disasm"


@functools.cache
def find_tool(name: str) -> str | None:
    """Where the CUDA binary utility ``name`` is: NVIDIA wheels, a CUDA toolkit, then ``PATH``.

    ``cuda.pathfinder`` finds wheels installed as distributions; the glob over ``sys.path`` also
    finds wheels installed with ``pip --target`` (and serves a pathfinder too old to search).
    """
    try:
        from cuda.pathfinder import find_nvidia_binary_utility

        found = find_nvidia_binary_utility(name)
        if found:
            return found
    except Exception:  # an older cuda-pathfinder without binary lookup: search by hand
        pass
    for entry in sys.path:
        for candidate in sorted(glob.glob(os.path.join(entry or ".", "nvidia", "*", "bin", name))):
            if os.access(candidate, os.X_OK):
                return candidate
    return shutil.which(name)


def sass(cubin: bytes) -> str:
    """The SASS listing of ``cubin``, as ``cuobjdump -sass`` prints it."""
    # cuobjdump -sass runs nvdisasm, found through NVDISASM_PATH (a folder) or PATH.
    tool, nvdisasm = find_tool("cuobjdump"), find_tool("nvdisasm")
    missing = [n for n, p in (("cuobjdump", tool), ("nvdisasm", nvdisasm)) if p is None]
    if tool is None or nvdisasm is None:
        raise DisassemblerError(
            f"{' and '.join(missing)} not found, so cubins cannot be disassembled here",
            hint=_INSTALL_HINT,
            code="no-disassembler",
        )
    env = dict(os.environ, NVDISASM_PATH=os.path.dirname(nvdisasm))
    with tempfile.TemporaryDirectory(prefix="tilevm-sass-") as tmp:
        path = os.path.join(tmp, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        try:
            done = subprocess.run(
                [tool, "-sass", path],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
                env=env,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DisassemblerError(f"running {tool} failed: {exc}") from None
    if done.returncode != 0:
        raise DisassemblerError(
            f"cuobjdump -sass failed (exit {done.returncode}): {done.stderr.strip()}",
            found=f"{len(cubin)} bytes starting {cubin[:4]!r}",
            expected="a cubin (ELF) from compile_cubin",
        )
    return done.stdout


__all__ = ["DisassemblerError", "find_tool", "sass"]
