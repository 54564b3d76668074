"""Catalogue entries: launching kernels, devices, autotuning and the check harness."""

from __future__ import annotations

from tilevm.error_catalog.entry import Entry

# The kernel most examples launch wrongly: out = x + 1 over one block of 32.
_K = """
@tv.kernel
def k(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    tv.store(out, tv.load(x, [0], [32]) + 1.0, [0])

x = np.ones(32, np.float32)
"""
_T = """
@tv.autotune(configs=[tv.Config(BLOCK=32), tv.Config(BLOCK=64)], key=["x"])
@tv.kernel
def k(x: tv.Tensor[tv.f32], BLOCK: tv.constexpr):
    tv.store(x, tv.load(x, [0], [BLOCK]) + 1.0, [0])

x = np.ones(64, np.float32)
"""
_NO_GPU = "needs a GPU or vendor toolchain state this machine cannot set up on purpose"
_INTERNAL = "an internal error: a bug in tilevm, not in the kernel (no correct program raises it)"
_DEFAULT = (
    "the default code of its error class: every place that raises one names a more "
    "precise code, which explain also lists"
)

ENTRIES = [
    Entry(
        "launch",
        "a launch's arguments, grid or options are wrong",
        "The general launch error: on CUDA, a block asking for more shared memory than "
        "the device has, or launch sizes the driver refuses.",
        "Read expected / found in the message; use smaller shared tiles.",
        why_no_example="raised by the CUDA driver layer, so only on a machine with a GPU",
    ),
    Entry(
        "launch-type",
        "a launch argument of the wrong type or dtype",
        "Each parameter's annotation says what it takes: a tensor of a dtype, a scalar, a "
        "compile-time value.",
        "Pass the right kind of value; convert arrays to the annotated dtype.",
        example=_K + 'k[1,](x, np.ones(32, np.float64), device="interp")',
    ),
    Entry(
        "no-grid",
        "a kernel called without a grid",
        "Kernels launch as kernel[grid](args).",
        "Add the grid: k[tv.cdiv(n, BLOCK),](...).",
        example=_K + "k(x, x)",
    ),
    Entry(
        "grid",
        "a bad or too large grid",
        "A grid is 1 to 3 non-negative ints within the target's limits.",
        "Pass a tuple of ints; give each block more work if the grid is too large.",
        example=_K + 'k[-1,](x, x, device="interp")',
    ),
    Entry(
        "warps",
        "a bad warps= value",
        "warps is an int from 1 to 32.",
        "Pass warps=1..32.",
        example=_K + 'k[1,](x, x, warps=0, device="interp")',
    ),
    Entry(
        "read-only",
        "a read-only array passed where the kernel writes",
        "numpy arrays with flags.writeable == False cannot be written through.",
        "Pass a writable copy.",
        example=_K + "out = np.ones(32, np.float32)\nout.flags.writeable = False\n"
        'k[1,](x, out, device="interp")',
    ),
    Entry(
        "scalar-range",
        "a scalar argument that does not fit its dtype",
        "A scalar parameter annotated tv.i8 takes -128..127, and so on.",
        "Pass a value in range or widen the parameter's type.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32], n: tv.i8):
    tv.store(x, tv.full([32], n, tv.i8).to(tv.f32), [0])

k[1,](np.ones(32, np.float32), 1000, device="interp")
""",
    ),
    Entry(
        "scalar-type",
        "a scalar argument of the wrong kind for its int, float or bool parameter",
        "A parameter annotated int takes a Python int (bool is not one), float a number, bool "
        "True or False.",
        "Pass a value of the parameter's kind, e.g. int(value), or change the annotation.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32], n: int):
    tv.store(x, tv.full([32], n, tv.i32).to(tv.f32), [0])

k[1,](np.ones(32, np.float32), 2.5, device="interp")
""",
    ),
    Entry(
        "byte-order",
        "a big-endian array",
        "Kernels read arrays in this machine's order.",
        "Convert it: arr.astype(arr.dtype.newbyteorder('=')).",
        example=_K + 'k[1,](x.astype(">f4"), x, device="interp")',
    ),
    Entry(
        "device",
        "the requested device is not available",
        "The base of the device codes.",
        "See the more precise code in the message.",
        why_no_example=_DEFAULT,
    ),
    Entry(
        "no-device",
        "a device name that is not available here",
        "tv.devices() lists the devices of this machine.",
        "Use one of tv.devices(), or run where that device is.",
        example=_K + 'k[1,](x, x, device="nonesuch:0")',
    ),
    Entry(
        "unsupported-target",
        "a compile target or emulated target tilevm does not know",
        "Targets are cpu, cpu:<vendor>, cuda:sm_XX, hip:gfxXXX, sycl:<arch>.",
        "Use a target listed in the README's targets table.",
        example=_K + 'k.emit("tpu:v5", x, x)',
    ),
    Entry(
        "runtime",
        "a run-time check of the interpreter failed",
        "device='interp' checks tv.assume facts and shared-memory bounds while running.",
        "Fix the assumption or the index the message names.",
        example="""
@tv.kernel
def k(x: tv.Tensor[tv.f32], n: tv.i32):
    tv.assume(n % 16 == 0)
    tv.store(x, tv.zeros([16], tv.f32), [0])

k[1,](np.ones(16, np.float32), 3, device="interp")
""",
    ),
    Entry(
        "trap",
        "a compiled kernel stopped itself (a zero loop step at run time)",
        "A loop whose step is zero when it runs would never end; compiled kernels stop.",
        "Make the step non-zero.",
        example="""
@tv.kernel
def k(out: tv.Tensor[tv.i32], step: tv.i32):
    total = 0
    for i in range(0, 10, step):
        total += i
    tv.store(out, tv.full([32], total, tv.i32), [0])

k[1,](np.zeros(32, np.int32), 0, device="cpu")
""",
    ),
    Entry(
        "block-size",
        "more threads per block than the target allows",
        "warps * warp_size must stay within the target's block limit (1024 threads; AMD's "
        "warps have 64 threads).",
        "Launch with fewer warps.",
        example=_K + 'k[1,](x, x, warps=32, device="cpu:amd")',
    ),
    Entry(
        "layout-conflict",
        "a layout conversion needs more shared memory than the target has",
        "Two uses of a value want different layouts; converting goes through shared memory.",
        "Use smaller tiles, or annotate the value with the layout both uses accept.",
        why_no_example="only targets with very little shared memory hit it; the tests make "
        "one with tilevm.lowering.Target",
    ),
    Entry(
        "unsupported-instruction",
        "an instruction with no GPU lowering yet",
        "The interpreter runs it; lowering for GPUs and the CPU does not exist yet.",
        "Run on device='interp', or express the computation with other instructions.",
        why_no_example="every instruction of the language has a lowering today",
    ),
    Entry(
        "internal-lowering",
        "the lowering could not map a layout (a tilevm bug)",
        "The lowering met a case it should handle.",
        "Report it with TILEVM_DUMP=dir output.",
        why_no_example=_INTERNAL,
    ),
    Entry(
        "internal-verify",
        "the VM IR failed verification (a tilevm bug)",
        "The frontend built IR that breaks an invariant.",
        "Report it with TILEVM_DUMP=dir output.",
        why_no_example=_INTERNAL,
    ),
    Entry(
        "cache-key",
        "a program-cache key that is not one",
        "An internal API misuse.",
        "Build keys with DiskCache.key(...).",
        why_no_example=_INTERNAL,
    ),
    Entry(
        "autotune-config",
        "a bad tv.Config or config list",
        "Configs set tv.constexpr parameters and warps (1..32), with hashable values.",
        "Fix the config's values.",
        example="tv.Config(BLOCK=[1, 2])",
    ),
    Entry(
        "autotune-not-kernel",
        "@tv.autotune above something that is not a @tv.kernel",
        "autotune wraps a kernel.",
        "Put @tv.kernel directly under @tv.autotune.",
        example="tv.autotune(configs=[tv.Config(BLOCK=32)], key=[])(lambda x: x)",
    ),
    Entry(
        "autotune-key",
        "a key that is not a list of argument names",
        "The key names arguments whose values (shapes for tensors) select a tuning.",
        "Pass key=['x', 'n'] with names of non-tuned parameters.",
        example=_T.replace('key=["x"]', 'key="x"'),
    ),
    Entry(
        "autotune-no-grid",
        "best_config() before the key was tuned and without a grid",
        "The best config is known only after a launch with that key, or tuning with a grid.",
        "Pass grid= to best_config, or launch first.",
        example=_T + "k.best_config(x)",
    ),
    Entry(
        "autotune-arguments",
        "wrong arguments for an autotuned kernel",
        "The launch must give every parameter the configs do not set.",
        "Pass the missing arguments.",
        example=_T + 'k[1,](device="interp")',
    ),
    Entry(
        "autotune-explicit",
        "a tuned parameter passed explicitly",
        "Configs set their constexprs and warps; the caller may not.",
        "Drop them, or launch k.kernel[grid](...) with your own values.",
        example=_T + 'k[1,](x, BLOCK=32, device="interp")',
    ),
    Entry(
        "autotune-heuristic",
        "a heuristic that does not return a tv.Config",
        "heuristic(*args) must return one of tv.Config.",
        "Return a tv.Config.",
        example=_T.replace('key=["x"]', 'key=["x"], heuristic=lambda x: 32')
        + 'k[1,](x, device="interp")',
    ),
    Entry(
        "autotune-prune",
        "a prune function that drops every config or returns others",
        "prune(configs, *args) returns a non-empty sub-list of tv.Config.",
        "Keep at least one config.",
        example=_T.replace('key=["x"]', 'key=["x"], prune=lambda configs, x: []')
        + 'k[1,](x, device="cpu")',
    ),
    Entry(
        "autotune-clone",
        "a tensor type autotuning cannot copy",
        "Candidates are timed on copies of the tensor arguments.",
        "Pass numpy arrays or torch tensors, or set TILEVM_AUTOTUNE=0.",
        why_no_example="every tensor type a launch accepts can be copied where torch is installed",
    ),
    Entry(
        "problem-module",
        "a problem module that does not follow the harness's contract",
        "python -m tilevm check|bench reads SHAPES, make_inputs, solution, reference (and "
        "optional names) from the problem file.",
        "See docs/harness.md.",
        example="from tilevm.harness.problem import load\nload('no_such_problem.py')",
    ),
    Entry(
        "problem-inputs",
        "make_inputs returned something other than arrays and scalars",
        "Inputs must be numpy arrays, torch tensors (exact types) or Python scalars.",
        "Return a tuple of plain arrays.",
        why_no_example="raised inside the harness, which "
        "reports it as a case's problem-error; tests/harness covers it",
    ),
    Entry(
        "problem-contract",
        "a solution or outputs() that breaks the output contract",
        "With outputs() the solution writes in place and returns None; outputs() returns "
        "(shape, dtype) pairs.",
        "See docs/harness.md.",
        why_no_example="raised inside the harness and reported in its case; tests/harness "
        "covers it",
    ),
    Entry(
        "reference-called",
        "a solution called the problem's reference",
        "Only the harness calls reference(); a solution must compute with kernels.",
        "Compute the outputs with tilevm kernels.",
        why_no_example="raised inside the harness and reported in its case; tests/harness "
        "covers it",
    ),
]
