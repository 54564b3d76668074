#!/usr/bin/env bash
# Installs what the HIP backend's CI tests need (called by .ci/setup). Safe to run again.
#   clang-19, lld-19, llvm-19       offline HIP compiles for gfx90a/gfx942, llvm-objdump-19
#   libamdhip64-5, libhiprtc-builtins5
#                                   Debian's ROCm 5.2 hipRTC (in libamdhip64.so.5), loaded by
#                                   hip-python; tilevm links libhiprtc.so to it by itself
set -euo pipefail
PACKAGES=(clang-19 lld-19 llvm-19 libamdhip64-5 libhiprtc-builtins5)
missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi
