#!/usr/bin/env bash
# Installs what the SYCL backend's CI tests need (called by .ci/setup). Safe to run again.
set -euo pipefail
