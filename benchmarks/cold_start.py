"""Cold start: how long a kernel takes to be ready in a new process (its first launch returns),
beyond ``import tilevm``. Every measurement is a fresh Python process.

    python3 benchmarks/cold_start.py                    (cpu, and SYCL's OpenCL CPU device here)
    python3 benchmarks/cold_start.py --devices cpu --runs 21
    python3 benchmarks/cold_start.py --no-bytecode      (modules compiled from source each time)
    python3 benchmarks/cold_start.py --devices cuda     (on a machine with a CUDA GPU)

Three cases per example kernel and device, each launch checked against a float64 numpy
reference on fresh random data:

* ``compile``: nothing cached (an empty cache folder): translate, lower, generate code, compile.
* ``binary cached``: the kernel's program is not in the program cache (a comment appended to
  its file changes its key) but its binary is: translate, lower, render, load the binary. This is
  what every new process did before the program cache.
* ``program cached``: found in the program cache before translating: load the binary (the CPU:
  open a shared library) and launch.

Times are the first launch's wall time in milliseconds (on a GPU: until the launch returns),
median (min-max) of ``--runs`` processes; ``import tilevm`` is shown beside them (torch is
imported before it, for a GPU). By default the processes keep Python's
bytecode in a folder of their own, as an installed package has it; ``--no-bytecode`` compiles
every module from source in each process (PYTHONDONTWRITEBYTECODE, as in some development
setups), which adds to the import and to the first launch (backend modules import then).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("vector_add", "softmax", "matmul")

# Runs in each new process: imports tilevm, then the example, builds arguments, and times the
# first launch; prints the times and the error against a float64 reference.
CHILD = """
import json, os, sys, time
import numpy as np
name, device = os.environ["EXAMPLE"], os.environ["DEVICE"]
if device.startswith("cuda"):  # torch tensors on the GPU, imported before tilevm as a user would
    import torch
    gpu = lambda a: torch.from_numpy(a).to(device)
    host = lambda t: (torch.cuda.synchronize(), t.cpu().numpy())[1]
else:
    gpu = host = lambda a: a
start = time.perf_counter()
import tilevm as tv
imported = time.perf_counter()
example = __import__(name)
rng = np.random.default_rng()
if name == "vector_add":
    x, y = (rng.standard_normal(10_000).astype(np.float32) for _ in range(2))
    args = [gpu(x), gpu(y), gpu(np.full_like(x, np.nan))]
    launch = lambda: example.vector_add[tv.cdiv(x.size, 1024),](*args, device=device)
    reference = lambda: x.astype(np.float64) + y
elif name == "softmax":
    x = (rng.standard_normal((33, 300)) * 4).astype(np.float32)
    args = [gpu(x), gpu(np.full_like(x, np.nan))]
    launch = lambda: example.softmax[33,](*args, BLOCK=512, device=device)
    def reference():
        e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
else:
    a = rng.standard_normal((70, 90)).astype(np.float16)
    b = rng.standard_normal((90, 50)).astype(np.float16)
    args = [gpu(a), gpu(b), gpu(np.full((70, 50), np.nan, np.float32))]
    launch = lambda: example.matmul[3, 2](*args, device=device)
    reference = lambda: a.astype(np.float64) @ b.astype(np.float64)
before = time.perf_counter()
launch()
after = time.perf_counter()
ref, out = reference(), host(args[-1])
print(json.dumps({"import": 1e3 * (imported - start), "launch": 1e3 * (after - before),
                  "error": float(np.abs(out - ref).max() / np.abs(ref).max())}))
"""


def child(folder: Path, cache: Path, example: str, device: str, bytecode: Path | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILEVM_CACHE")}
    env.update(TILEVM_CACHE_DIR=str(cache), EXAMPLE=example, DEVICE=device,
               PYTHONPATH=os.pathsep.join([str(folder), env.get("PYTHONPATH", "")]))  # fmt: skip
    if bytecode is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          env=env, cwd=folder, timeout=900)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{example} on {device}:\n{done.stderr[-3000:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    if not found["error"] < 1e-3:
        raise RuntimeError(f"{example} on {device}: relative error {found['error']:.1e}")
    return found


def measure(example: str, device: str, runs: int, work: Path, bytecode: Path | None) -> dict:
    folder = work / f"{example}-{device.replace(':', '_')}"
    folder.mkdir()
    source = folder / f"{example}.py"
    shutil.copy(ROOT / "examples" / f"{example}.py", source)
    cache = folder / "cache"
    rows = {"compile": [child(folder, folder / f"empty{i}", example, device, bytecode)
                        for i in range(max(1, runs // 5))]}  # fmt: skip
    child(folder, cache, example, device, bytecode)  # fills the cache
    rows["binary cached"] = []
    for i in range(runs):
        with source.open("a") as f:
            f.write(f"# run {i}: a new file digest, the same generated code\n")
        rows["binary cached"].append(child(folder, cache, example, device, bytecode))
    rows["program cached"] = [child(folder, cache, example, device, bytecode) for _ in range(runs)]
    return rows


def summary(results: list[dict], key: str) -> str:
    values = [r[key] for r in results]
    return f"{statistics.median(values):7.1f} ({min(values):.1f}-{max(values):.1f})"


def devices(asked: str | None) -> list[str]:
    if asked:
        return asked.split(",")
    found = ["cpu"]
    probe = "from tilevm.runtime import registry; print(registry.backend_for('sycl').unavailable())"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    if done.returncode == 0 and done.stdout.strip() == "None":
        found.append("sycl:opencl:cpu")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", help="comma-separated (default: cpu, and SYCL if here)")
    parser.add_argument("--examples", default=",".join(EXAMPLES))
    parser.add_argument("--runs", type=int, default=11, help="processes per cached case")
    parser.add_argument("--no-bytecode", action="store_true")
    args = parser.parse_args()
    host = f"{platform.node()}, {os.cpu_count()} cores, python {platform.python_version()}"
    print(f"# cold start, {datetime.date.today()}, {host}, load {os.getloadavg()[0]:.2f}, "
          f"bytecode {'off' if args.no_bytecode else 'cached'}")  # fmt: skip
    print("| device | kernel | case | first launch ms | import tilevm ms |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="tilevm-cold-") as tmp:
        work = Path(tmp)
        bytecode = None if args.no_bytecode else work / "bytecode"
        for device in devices(args.devices):
            for example in args.examples.split(","):
                rows = measure(example, device, args.runs, work, bytecode)
                for case, results in rows.items():
                    print(f"| {device} | {example} | {case} | {summary(results, 'launch')} |"
                          f" {summary(results, 'import')} |", flush=True)  # fmt: skip
    print(f"# load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
