#!/usr/bin/env bash
# What a CUDA GPU must confirm, step by step, each under its own time limit, its output in
# $OUT/<step>.log (default ./gpu-logs) and one summary line per step on stdout.
#
#   bash benchmarks/gpu_checks.sh                    every step (about 15 minutes on an H200)
#   bash benchmarks/gpu_checks.sh tests launch       only these steps
#
# Steps: tests (CUDA-parametrized and gpu-marked tests), agents (the problem set's bench
# against torch eager, one problem at a time), rows (softmax and RMSNorm against Triton),
# scan (scans against torch), launch (host launch overhead and its profile), cold (a kernel's
# first launch in a new process).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-logs}
mkdir -p "$OUT"
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1

step() {  # step NAME LIMIT_S COMMAND...: run it, keep its output, say how it ended
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" >>"$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name: rc=$rc in $((SECONDS - start)) s$([ $rc -eq 124 ] && echo ' (time limit)')"
}

tests() {
    step tests 420 python3 -m pytest -q -n 16 tests -k "cuda or gpu or Cuda" \
        -p no:cacheprovider -rfE
    grep -E "^(FAILED|ERROR)| passed| failed" "$OUT/tests.log" | tail -30
}

agents() {
    local problem
    for problem in benchmarks/agents/problems/[a-z]*.py; do
        problem=$(basename "$problem" .py)
        step "agents-$problem" 90 python3 benchmarks/agents/run.py --bench --device cuda:0 \
            --problems "$problem" --runs 5 --warmup 2
        grep -E "^\| $problem " "$OUT/agents-$problem.log"
    done
}

rows() { step rows 240 python3 benchmarks/rows_vs_triton.py; grep -E "^\|" "$OUT/rows.log"; }
scan() { step scan 120 python3 benchmarks/scan.py; tail -17 "$OUT/scan.log"; }

launch() {
    step launch 240 python3 benchmarks/memory_bound.py --overheads
    step launch-profile 120 python3 benchmarks/launch_profile.py
    tail -4 "$OUT/launch.log"
    head -12 "$OUT/launch-profile.log"
}

cold() { step cold 300 python3 benchmarks/cold_start.py --devices cuda --runs 5; tail -12 "$OUT/cold.log"; }

for name in "${@:-tests agents rows scan launch cold}"; do
    for each in $name; do
        "$each"
    done
done
