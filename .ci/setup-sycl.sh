#!/usr/bin/env bash
# Installs what the SYCL backend's CI tests need (called by .ci/setup). Safe to run again.
#   pip (from .ci/setup's sycl extra): dpctl==0.22.1, intel-opencl-rt (the OpenCL CPU device,
#                                      libsycl and libsycl-jit, the run-time SYCL compiler)
#   apt: g++, libstdc++-dev            build the host-only kernel-compiler shim
# Then it builds the shim once (cached under ~/.cache/tilevm/sycl-shim) and checks that the
# OpenCL CPU device compiles SYCL source, so a broken toolchain fails here with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if ! command -v g++ >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ >/dev/null
fi

# The runtime points OCL_ICD_FILENAMES at the environment's libintelocl.so by itself (the
# wheel's ICD file names a placeholder path); nothing to write to /etc/OpenCL/vendors.
"$PYTHON" - <<'EOF'
import sys

from tilevm.backends.sycl import runtime

why = runtime.unavailable()
if why is not None:
    sys.exit(f"setup-sycl: the SYCL backend is not usable: {why}")
print("setup-sycl: SYCL devices:", ", ".join(runtime.device_names()))
EOF
