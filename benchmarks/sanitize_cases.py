"""The kernel zoo (``tests/kernel_zoo.py``) as launchable cases for the sanitizer run: each call
with its launch grid, which tensors it writes, and fresh random inputs.

The zoo gives arguments of the right shapes for compiling (zeros); a case fills every all-zero
placeholder with random data, keeps the zoo's real data (quantized weights, scales), and
poisons the tensors the kernel only writes, so a run can check that every output element was
written (a kernel cut short by a sanitizer, or a grid too small, leaves poison behind).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the zoo lives in the repository's tests/
    sys.path.insert(0, str(ROOT))

import tilevm as tv  # noqa: E402
from tilevm.ir.nodes import Instr, Var, walk  # noqa: E402


def _cdiv(a: int, b: int) -> int:
    return -(-int(a) // int(b))


# The grid of each kernel of the zoo, from its bound arguments: the same formulas as the
# examples' run() and the stdlib's launchers (stdlib/matmul.py, stdlib/quant/dispatch.py).
GRIDS: dict[str, Callable[[dict[str, Any]], tuple[int, ...]]] = {
    "vector_add": lambda a: (_cdiv(a["out"].shape[0], a["BLOCK"]),),
    "scaled_add": lambda a: (_cdiv(a["out"].shape[0], a["BLOCK"]),),
    "softmax": lambda a: (a["x"].shape[0],),
    "row_cumsum": lambda a: (_cdiv(a["x"].shape[0], a["BLOCK_M"]),),
    "row_running_max": lambda a: (a["x"].shape[0],),
    "matmul": lambda a: (_cdiv(a["c"].shape[0], a["BM"]), _cdiv(a["c"].shape[1], a["BN"])),
    "quantized_matmul": lambda a: (
        _cdiv(a["y"].shape[0], a["BM"]),
        _cdiv(a["y"].shape[1], a["BN"]),
    ),
    "gemm_kernel": lambda a: (_cdiv(a["c"].shape[0], a["BM"]) * _cdiv(a["c"].shape[1], a["BN"]),),
    "decode_kernel": lambda a: (_cdiv(a["w"].shape[0], a["RN"]), _cdiv(a["x"].shape[0], a["BM"])),
    "prefill_kernel": lambda a: (
        _cdiv(a["y"].shape[0], a["BM"]) * _cdiv(a["y"].shape[1], 16 * a["RN"]),
        a["SPLIT"],
    ),
    "splitk_sum": lambda a: (_cdiv(a["y"].shape[1], a["BN"]), _cdiv(a["y"].shape[0], a["BM"])),
}

SHAPE_QUERIES = ("dim", "stride")  # instructions that read a tensor's shape, not its memory


@dataclass
class Case:
    """One zoo call made launchable."""

    index: int
    name: str
    kernel: tv.Kernel
    args: tuple[Any, ...]
    kwargs: dict[str, Any]  # constexprs, without warps
    warps: int
    grid: tuple[int, ...]
    # positions of the tensors the kernel writes and never reads (one it also reads, as an
    # atomic update does, is an input: it gets data, not poison)
    outputs: tuple[int, ...]

    @property
    def kernel_name(self) -> str:
        """The name the compiled kernel has (and sanitizer reports show)."""
        return self.kernel.__name__

    def describe(self) -> str:
        params = list(self.kernel.signature.parameters)
        outs = ", ".join(params[i] for i in self.outputs) or "-"
        return (
            f"{self.index:2d} {self.name:<30} {self.kernel_name:<16} grid={self.grid} "
            f"warps={self.warps} writes={outs}"
        )


class UnknownKernel(LookupError):
    """A zoo kernel without a grid rule here: the sanitizer run cannot launch it."""


def cases() -> list[Case]:
    """Every zoo call as a case, in the zoo's order."""
    from tests.kernel_zoo import zoo_calls

    return [_case(i, *call) for i, call in enumerate(zoo_calls())]


def _case(index: int, name: str, kernel: tv.Kernel, args: tuple, kwargs: dict) -> Case:
    consts = dict(kwargs)
    warps = int(consts.pop("warps", kernel.default_warps))
    rule = GRIDS.get(kernel.__name__)
    if rule is None:
        raise UnknownKernel(
            f"zoo call {name!r} launches kernel {kernel.__name__!r}, which has no grid rule in "
            f"benchmarks/sanitize_cases.py: add one to GRIDS (the formula its launcher uses)"
        )
    bound = kernel.signature.bind(*args, **consts)
    bound.apply_defaults()
    written, read = _tensor_uses(kernel, args, consts, warps)
    params = list(kernel.signature.parameters)
    outputs = tuple(i for i, p in enumerate(params[: len(args)]) if p in written and p not in read)
    grid = tuple(rule(bound.arguments))
    return Case(index, name, kernel, tuple(args), consts, warps, grid, outputs)


def _tensor_uses(kernel: tv.Kernel, args: tuple, consts: dict, warps: int) -> tuple[set, set]:
    """The tensor parameters the kernel's VM IR stores to, and those it reads (any other use
    than a store or a shape query)."""
    specs, _, _ = kernel.specialize(args, consts)
    ir = kernel.compile_ir(specs, warps)
    tensors = {p.var: p.var.name for p in ir.params if p.kind == "tensor"}
    written, read = set(), set()
    for ins in walk(ir.body):
        if not isinstance(ins, Instr):
            continue
        for position, arg in enumerate(ins.args):
            if not isinstance(arg, Var) or arg not in tensors:
                continue
            if ins.op in ("store", "atomic_add", "atomic_fetch_add") and position == 0:
                written.add(tensors[arg])
                if ins.op != "store":  # atomics read what they update
                    read.add(tensors[arg])
            elif ins.op not in SHAPE_QUERIES:
                read.add(tensors[arg])
    return written, read


# --- data ------------------------------------------------------------------------------------


def host_arguments(case: Case, rng: np.random.Generator) -> tuple[Any, ...]:
    """The case's arguments as fresh host arrays: random data for the zoo's all-zero
    placeholders, copies of its real data, poison (NaN) in the outputs. An array the zoo passes
    twice (a stand-in argument the kernel does not read) stays one array."""
    made: dict[int, np.ndarray] = {}
    out: list[Any] = []
    for position, arg in enumerate(case.args):
        if not isinstance(arg, np.ndarray):
            out.append(arg)
            continue
        if id(arg) not in made:
            if position in case.outputs:
                made[id(arg)] = poisoned(arg)
            elif not arg.any():
                made[id(arg)] = random_like(arg, rng)
            else:
                made[id(arg)] = arg.copy()
        out.append(made[id(arg)])
    return tuple(out)


def random_like(arg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random values of ``arg``'s shape and dtype: normal for floats, every bit pattern for
    integers (packed weights and bytes are valid whatever their bits)."""
    if arg.dtype.kind == "f" or arg.dtype.name in ("bfloat16",):
        return rng.standard_normal(arg.shape).astype(arg.dtype)
    if arg.dtype.kind in "iu":
        return rng.integers(0, 256, arg.nbytes, dtype=np.uint8).view(arg.dtype).reshape(arg.shape)
    raise TypeError(f"no random data for dtype {arg.dtype} (argument of shape {arg.shape})")


def poisoned(arg: np.ndarray) -> np.ndarray:
    """An array of ``arg``'s shape filled with NaN: no kernel output of the zoo is NaN on
    random inputs, so a NaN left after the launch is an element that was not written."""
    if not (arg.dtype.kind == "f" or arg.dtype.name == "bfloat16"):
        raise TypeError(
            f"output of dtype {arg.dtype} cannot be poisoned with NaN: the written-element check "
            f"needs a float output"
        )
    return np.full(arg.shape, np.nan, arg.dtype)


def unwritten(case: Case, host: tuple[Any, ...]) -> dict[str, int]:
    """The number of output elements still NaN, per output name (only the non-zero ones)."""
    params = list(case.kernel.signature.parameters)
    left = {params[i]: int(np.isnan(host[i].astype(np.float32)).sum()) for i in case.outputs}
    return {name: n for name, n in left.items() if n}


# --- running one case --------------------------------------------------------------------------


@dataclass
class Outcome:
    seconds: float
    unwritten: dict[str, int]


def run_on_host(case: Case, device: str, rng: np.random.Generator) -> Outcome:
    """Launch the case on a host executor (``cpu``, ``cpu:cuda``, ``interp``)."""
    host = host_arguments(case, rng)
    start = time.perf_counter()
    case.kernel[case.grid](*host, warps=case.warps, device=device, **case.kwargs)
    return Outcome(time.perf_counter() - start, unwritten(case, host))


def run_on_gpu(case: Case, rng: np.random.Generator, uninitialized_outputs: bool) -> Outcome:
    """Launch the case on the CUDA GPU from torch tensors, wait, and read the outputs back.

    ``uninitialized_outputs``: the outputs are allocated and never filled (for initcheck, which
    then reports any read of an output before it is written, and the read-back of an element
    the kernel never wrote); the NaN check is skipped then."""
    from tilevm.backends.cuda import driver

    host = host_arguments(case, rng)
    skip = case.outputs if uninitialized_outputs else ()
    gpu = to_gpu(host, skip)
    start = time.perf_counter()
    case.kernel[case.grid](*gpu, warps=case.warps, **case.kwargs)
    driver.synchronize()
    seconds = time.perf_counter() - start
    back = list(host)
    for i in case.outputs:
        back[i] = from_gpu(gpu[i], host[i])
    return Outcome(seconds, {} if uninitialized_outputs else unwritten(case, tuple(back)))


def to_gpu(host: tuple[Any, ...], uninitialized: tuple[int, ...] = ()) -> list[Any]:
    """Each host array as a torch CUDA tensor of its own allocation (one per distinct array);
    the positions in ``uninitialized`` get an allocation that nothing writes."""
    import torch

    from tilevm.dtypes.interop import torch_dtype

    made: dict[int, Any] = {}
    out: list[Any] = []
    for position, arg in enumerate(host):
        if not isinstance(arg, np.ndarray):
            out.append(arg)
            continue
        if id(arg) not in made:
            twin = torch_dtype(tv.dtype(arg.dtype))
            if twin is None:
                raise TypeError(f"no torch dtype for {arg.dtype}: cannot place it on the GPU")
            if position in uninitialized:
                made[id(arg)] = torch.empty(arg.shape, dtype=twin, device="cuda")
            else:
                raw = np.ascontiguousarray(arg).reshape(-1).view(np.uint8)
                gpu = torch.from_numpy(raw.copy()).to("cuda").view(twin)
                made[id(arg)] = gpu.reshape(arg.shape)
        out.append(made[id(arg)])
    return out


def from_gpu(gpu: Any, like: np.ndarray) -> np.ndarray:
    """A host copy of a CUDA tensor, as an array of ``like``'s dtype and shape."""
    import torch

    raw = gpu.reshape(-1).view(torch.uint8).cpu().numpy()
    return raw.view(like.dtype).reshape(like.shape)
