"""Catalogue entries: vendor toolchains, drivers and code generators. Most need a GPU, a
toolchain missing or broken on purpose, or a bug in tilevm to appear, so they have no example
that runs everywhere; each says why."""

from __future__ import annotations

from tilevm.error_catalog.entry import Entry

_GPU = "needs a GPU (or its driver) that misbehaves; no program raises it on a machine without one"
_ABSENT = "appears only where that vendor's toolchain or device is absent, so not everywhere"
_INTERNAL = (
    "an internal error: a bug in tilevm's code generation, not in the kernel (no "
    "correct program raises it)"
)


def _toolchain(code: str, title: str, fix: str, why: str) -> Entry:
    return Entry(code, title, f"{title[0].upper()}{title[1:]}.", fix, why_no_example=why)


ENTRIES = [
    _toolchain(
        "no-cuda-device",
        "no CUDA driver or NVIDIA GPU here",
        "Run on a machine with an NVIDIA GPU and driver, or use device='cpu:cuda' to "
        "execute the CUDA lowering on the CPU.",
        _ABSENT,
    ),
    _toolchain(
        "no-cuda-toolkit",
        "NVRTC (cuda-python) is not installed",
        "pip install 'tilevm[cuda]'.",
        _ABSENT,
    ),
    _toolchain(
        "cuda-compile",
        "NVRTC rejected the generated CUDA source",
        "Report it with kernel.emit('cuda', ...) output.",
        _INTERNAL,
    ),
    _toolchain(
        "cuda-runtime",
        "a CUDA driver call failed",
        "Read the CUresult in the message (an illegal address is usually an index past "
        "a tensor; run the kernel on device='interp' to find it).",
        _GPU,
    ),
    _toolchain(
        "cuda-disasm",
        "nvdisasm / cuobjdump failed on a cubin",
        "Check the CUDA tools' installation (pip install nvidia-cuda-nvdisasm).",
        _ABSENT,
    ),
    _toolchain(
        "no-disassembler",
        "no CUDA disassembler installed",
        "pip install nvidia-cuda-nvdisasm nvidia-cuda-cuobjdump.",
        _ABSENT,
    ),
    _toolchain(
        "no-hip-device",
        "no AMD GPU or ROCm driver here",
        "Run on an AMD GPU with ROCm, or use device='cpu:amd' to execute the AMD "
        "lowering on the CPU.",
        _ABSENT,
    ),
    _toolchain(
        "no-hip-runtime",
        "hipRTC (hip-python) is not installed",
        "pip install 'tilevm[hip]'.",
        _ABSENT,
    ),
    _toolchain(
        "hip-runtime",
        "a HIP runtime call failed",
        "Read the hipError in the message; run on device='interp' to find bad indices.",
        _GPU,
    ),
    _toolchain(
        "hip-compile",
        "hipRTC or clang rejected the generated HIP source",
        "Report it with kernel.emit('hip:gfx942', ...) output; the hint names missing "
        "device libraries where that is the cause.",
        _INTERNAL,
    ),
    _toolchain(
        "hip-toolchain",
        "clang for offline AMD builds is missing or too old",
        "Install clang-19 with the AMDGPU target, or use a ROCm whose hipRTC builds the arch.",
        _ABSENT,
    ),
    _toolchain(
        "hip-disassemble",
        "the AMD code object could not be disassembled",
        "Install llvm-objdump with the AMDGPU target.",
        _ABSENT,
    ),
    _toolchain(
        "sycl-compile",
        "the SYCL kernel compiler rejected the generated source",
        "Report it with kernel.emit('sycl:xe', ...) output.",
        _INTERNAL,
    ),
    _toolchain(
        "sycl-xpu",
        "a torch XPU tensor passed to the SYCL backend",
        "Pass host arrays (x.cpu()) or USM tensors; torch XPU tensors are not read directly yet.",
        "needs torch built with Intel XPU support and an Intel GPU",
    ),
    _toolchain(
        "cfunction-name",
        "a C helper of the CPU backend with a bad name",
        "Internal to the CPU backend's C-subset translator.",
        _INTERNAL,
    ),
    _toolchain(
        "cfunction-subset",
        "a C helper outside the subset the CPU backend translates",
        "Internal to the CPU backend's C-subset translator.",
        _INTERNAL,
    ),
    _toolchain(
        "codec-range",
        "a float codec asked for a type it cannot encode exactly",
        "Internal to the generated float conversions.",
        _INTERNAL,
    ),
    _toolchain(
        "codec-unsupported",
        "a float codec for a type without one",
        "Internal to the generated float conversions.",
        _INTERNAL,
    ),
    _toolchain(
        "codec-f16-inexact",
        "a conversion through f16 that would round twice",
        "Internal to the generated float conversions.",
        _INTERNAL,
    ),
]
