#!/usr/bin/env bash
# The quantized linear's GPU tests, one process per test case, all at once (the full matrix
# takes minutes per case; the GPU has room for all of them), then the decode probe.
#
#   bash benchmarks/quant_gpu_checks.sh [log folder]     (on a machine with a CUDA GPU)
#
# Each case's log goes to the folder (default: a temporary one); the script stops with an
# error if any case failed or was skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=${1:-$(mktemp -d)}
mkdir -p "$logs"
mapfile -t cases < <(python3 -m pytest -q --collect-only tests/stdlib/test_quant_linear.py \
    -m gpu -p no:cacheprovider | grep "::")
pids=()
for i in "${!cases[@]}"; do
    python3 -m pytest -q -p no:cacheprovider "${cases[$i]}" > "$logs/case$i.log" 2>&1 &
    pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}"
    # a skip (no GPU here) is not a pass: only "1 passed" with nothing skipped counts
    if grep -q "^1 passed" "$logs/case$i.log"; then status=passed; else status=FAILED; failed=1; fi
    echo "$status ${cases[$i]}"
done
[ "$failed" = 0 ] || { echo "logs: $logs"; exit 1; }
python3 benchmarks/quant_decode_probe.py --dtypes u4,u8,f8e4m3fn --m 1
python3 benchmarks/quant_decode_probe.py --dtypes u4 --m 16
