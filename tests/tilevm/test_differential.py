"""Differential tests: random small kernels run on the interpreter (the semantics) and on the CPU
backend -- natively and, for a subset, through the CUDA and AMD lowerings -- must agree.

Each case generates one program (``program_gen.py``) from ``TILEVM_TEST_SEED`` and its family
and index, writes its source to a file (the frontend reads kernels from files), imports it and
launches it on every executor with copies of the same inputs and outputs poisoned with NaN or
0x5A patterns. Integer and elementwise programs must agree bit for bit; sums and dots, whose
order of addition is free, must each lie within a bound of a float64 reference and near each
other. Outputs are often windows of larger poisoned buffers, so stray writes show; inputs must
come back unchanged.

The interpreter runs in the test's process, the compiled executors in a worker process, so
that a compiler abort or a wild write fails one case instead of the session. A failure prints
the seed, the command that replays it, the program's source and the first differing elements
with their inputs.

Mismatches found so far are kept at the end, minimized, as regression tests (each was fixed where
it arose: one rule for every executor, see docs/language.md); the generators produce those cases
again.
"""

from __future__ import annotations

import multiprocessing
import random
import traceback
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest

import tilevm as tv
from tests.conftest import SEED
from tests.tilevm import program_gen as pg
from tests.tilevm.program_gen import Arg, Program

COUNTS = {"elementwise": 24, "reduction": 12, "cast": 12, "view": 8, "dot": 10}
EMULATED = ("cpu:cuda", "cpu:amd")
# NaN and infinities are fed on purpose: the interpreter's numpy says so
pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning", "ignore:overflow encountered:RuntimeWarning"
)
CASES = [pytest.param(f, i, id=f"{f}-{i}") for f, count in COUNTS.items() for i in range(count)]


class Worker:
    """Runs the compiled executors in a process of their own: a compiler abort or a wild write
    then fails one case, with its source, instead of ending the session."""

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None

    def __call__(self, program: Program, path, device: str) -> dict[str, np.ndarray]:
        if self.pool is None:
            context = multiprocessing.get_context("spawn")
            self.pool = ProcessPoolExecutor(1, mp_context=context)
        try:
            return self.pool.submit(execute_reporting, program, str(path), device).result()
        except BrokenProcessPool:
            self.pool = None
            raise RuntimeError(f"{device} killed the process running it") from None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def execute_reporting(program: Program, path: str, device: str) -> dict[str, np.ndarray]:
    """``pg.execute`` in the worker, any error sent back as text (with its traceback)."""
    try:
        return pg.execute(program, path, device)
    except Exception as err:
        raise RuntimeError(f"{type(err).__name__}: {err}\n{traceback.format_exc()}") from None


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Compile every program afresh, into a cache of this run's own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TILEVM_CACHE_DIR", str(tmp_path_factory.mktemp("kernel-cache")))
        yield


@pytest.fixture(scope="module")
def worker(private_cache):
    """The worker process (started on first use, with the private cache in its environment)."""
    runner = Worker()
    yield runner
    runner.close()


def devices_for(program: Program, index: int) -> tuple[str, ...]:
    """Interpreter and CPU always; the CUDA and AMD lowerings for every dot and a third of the
    rest."""
    if program.family == "dot" or index % 3 == 0:
        return (*program.devices, *EMULATED)
    return program.devices


# ----- comparing --------------------------------------------------------------------------------


def agree(arg: Arg, a: np.ndarray, b: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Where two outputs (bit patterns) agree under ``arg``'s check."""
    check, dt = arg.check, arg.dtype
    if dt.is_integer:
        return a == b
    x, y = pg.values_of(dt, a), pg.values_of(dt, b)
    both_nan = np.isnan(x) & np.isnan(y)
    if check.mode == "exact":
        same = (a == b) if check.signed_zero else (x == y)
        return same | both_nan
    if check.mode == "close":
        bound = check.rtol * np.maximum(np.abs(x), np.abs(y)) + check.atol
        limit = float(dt.max)
        saturated = (np.abs(x) >= limit) & (np.abs(y) >= limit) & (np.sign(x) == np.sign(y))
    else:
        bound = scale * check.tol.reshape(-1)
        saturated = np.zeros(x.shape, bool)
    with np.errstate(invalid="ignore"):
        return both_nan | (x == y) | (np.abs(x - y) <= bound) | saturated


def against_reference(arg: Arg, codes: np.ndarray) -> np.ndarray:
    check, dt = arg.check, arg.dtype
    ref = check.reference.reshape(-1)
    x = pg.values_of(dt, codes)
    with np.errstate(invalid="ignore"):
        if check.mode == "exact":
            return (x == ref) | (np.isnan(x) & np.isnan(ref))
        return (np.isnan(x) & np.isnan(ref)) | (np.abs(x - ref) <= check.tol.reshape(-1))


def report(program: Program, path, arg: Arg, results: dict, bad: np.ndarray, what: str) -> str:
    lines = [
        f"{what}: {bad.size} of {results['interp'].size} elements of '{arg.name}' ({arg.dtype})",
        f"program {program.family}-{program.name}: {program.summary}",
        f"replay: TILEVM_TEST_SEED={SEED} python3 -m pytest "
        f"'{__file__}::test_random_programs_agree_on_every_executor"
        f"[{program.name.replace('_', '-')}]'",
        f"launch: {program.name}[{program.grid}](...) warps={program.warps}; source: {path}",
    ]
    inputs = [a for a in program.args if not a.is_output]
    for flat in bad[:8]:
        index = np.unravel_index(flat, arg.shape)
        parts = [f"  [{', '.join(map(str, index))}]"]
        for a in inputs:
            if a.shape == arg.shape:
                value = pg.values_of(a.dtype, a.codes[flat : flat + 1])[0]
                parts.append(f"{a.name}={value!r}")
        for device, codes in results.items():
            value = pg.values_of(arg.dtype, codes[flat : flat + 1])[0]
            parts.append(f"{device}={value!r} (0x{int(codes[flat]):x})")
        if arg.check.reference is not None:
            parts.append(f"reference={arg.check.reference.reshape(-1)[flat]!r}")
        lines.append(" ".join(parts))
    lines += ["", program.source]
    return "\n".join(lines)


def check(program: Program, path, arg: Arg, results: dict[str, np.ndarray]) -> None:
    """Every executor against the reference where there is one, and against the interpreter."""
    if arg.check.reference is not None:
        for device, codes in results.items():
            bad = np.flatnonzero(~against_reference(arg, codes))
            if bad.size:
                pytest.fail(
                    report(program, path, arg, results, bad, f"{device} misses the reference"),
                    pytrace=False,
                )
    base = results["interp"]
    for device, codes in results.items():
        bad = np.flatnonzero(~agree(arg, base, codes, scale=2.0))
        if bad.size:
            pytest.fail(
                report(program, path, arg, results, bad, f"interp and {device} differ"),
                pytrace=False,
            )


def differential(program: Program, devices: tuple[str, ...], folder, worker: Worker) -> None:
    """Run ``program`` on ``devices`` (the interpreter here, the rest in the worker) and compare
    every output with the interpreter's."""
    path = folder / f"{program.name}.py"
    path.write_text(program.source)
    results: dict[str, dict[str, np.ndarray]] = {}
    for device in devices:
        try:
            if device == "interp":
                results[device] = pg.execute(program, str(path), device)
            else:
                results[device] = worker(program, path, device)
        except Exception as err:
            raise AssertionError(
                f"{device} failed: {err}\n"
                f"program {program.name}: {program.summary}\nseed {SEED}, source {path}\n\n"
                f"{program.source}"
            ) from err
    for arg in program.args:
        if arg.is_output:
            check(program, path, arg, {d: r[arg.name].reshape(-1) for d, r in results.items()})


@pytest.mark.parametrize(("family", "index"), CASES)
def test_random_programs_agree_on_every_executor(
    family: str, index: int, tmp_path, worker: Worker
) -> None:
    program = pg.generate(family, index, SEED)
    differential(program, devices_for(program, index), tmp_path, worker)


def test_generators_are_deterministic() -> None:
    """A seed, family and index always give the same program: failures replay."""
    for family in COUNTS:
        first, again = pg.generate(family, 0, SEED), pg.generate(family, 0, SEED)
        assert first.source == again.source
        for a, b in zip(first.args, again.args):
            assert (a.codes is None) == (b.codes is None)
            if a.codes is not None:
                np.testing.assert_array_equal(a.codes, b.codes)


# ----- mismatches found before, now one rule on every executor -----------------------------------
# Conversions to floats round once; shift counts read as unsigned (docs/language.md, Semantics).
# Each kept minimized to a kernel of a line or two, and the conversions also as generated programs
# (fixed seeds). The corners across widths, against exact references: test_round_once.py.

ROUNDED_TWICE = [
    (tv.i32, tv.bf16),  # the cpu backend rounded through f32
    (tv.u32, tv.f8e8m0fnu),
    (tv.i64, tv.bf16),
    (tv.i64, tv.f32),  # the interpreter rounded through float64
    (tv.u64, tv.f32),
    (tv.f64, tv.dtype("f7e3m3")),  # the cpu backend rounded through f32
    (tv.f64, tv.bf16),
    (tv.f64, tv.f16),
    (tv.f64, tv.f8e4m3fn),
    (tv.i64, tv.f16),  # f16's range ends long before float64's ties
    (tv.f64, tv.f32),
]


@pytest.mark.parametrize(("src", "dst"), ROUNDED_TWICE, ids=lambda dt: str(dt))
def test_generated_casts_that_rounded_twice(src, dst, tmp_path, worker: Worker) -> None:
    r = random.Random(f"tilevm-differential/known/{src}/{dst}")
    g = np.random.default_rng(r.getrandbits(64))
    program = pg.cast(r, g, f"rounded_twice_{src}_{dst}", (src, dst))
    differential(program, ("interp", "cpu"), tmp_path, worker)


@tv.kernel
def convert(x: tv.Tensor, out: tv.Tensor, N: tv.constexpr):
    tv.store(out, tv.load(x, [0], [N]).to(out.dtype), [0])


@tv.kernel
def shift_left(x: tv.Tensor, count: tv.Tensor, out: tv.Tensor, N: tv.constexpr):
    tv.store(out, tv.load(x, [0], [N]) << tv.load(count, [0], [N]), [0])


def on_both(launch) -> tuple[np.ndarray, np.ndarray]:
    return launch("interp"), launch("cpu")


@pytest.mark.parametrize("dst", [tv.bf16, tv.f8e8m0fnu], ids=str)
def test_wide_integers_round_once_to_narrow_floats(dst) -> None:
    # 2**24 + 3 * 2**16 - 1 lies below a bf16 tie, 1.5 * 2**30 - 1 below an f8e8m0fnu one; both
    # round to the tie in f32
    x = np.asarray([(1 << 24) + 3 * (1 << 16) - 1, 3 * (1 << 29) - 1] * 16, np.int32)

    def launch(device: str) -> np.ndarray:
        out = np.full(32, 0x5A, np.uint8 if dst.bits == 8 else np.uint16)
        convert[1,](x, out.view(pg.native(dst)), N=32, device=device)
        return dst.decode(out)

    interp, cpu = on_both(launch)
    np.testing.assert_array_equal(cpu, interp)
    nearest = [(1 << 24) + (1 << 17), 3 << 29] if dst == tv.bf16 else [1 << 24, 1 << 30]
    np.testing.assert_array_equal(interp, nearest * 16)


def test_64_bit_integers_round_once_to_f32() -> None:
    tie = (1 << 60) + (1 << 36)  # halfway between two f32 values
    x = np.asarray([tie + 1, -(tie + 1)] * 16, np.int64)

    def launch(device: str) -> np.ndarray:
        out = np.full(32, np.nan, np.float32)
        convert[1,](x, out, N=32, device=device)
        return out

    interp, cpu = on_both(launch)
    np.testing.assert_array_equal(interp, cpu)
    np.testing.assert_array_equal(interp, [2.0**60 + 2.0**37, -(2.0**60 + 2.0**37)] * 16)


@pytest.mark.parametrize("dst", [tv.bf16, tv.f16], ids=str)
def test_f64_rounds_once_to_narrow_floats(dst) -> None:
    # just above a tie of dst between 1 and its successor; f32 rounds it onto the tie
    x = np.asarray([1 + 2.0 ** -(dst.mantissa + 1) + 2.0**-40] * 32)

    def launch(device: str) -> np.ndarray:
        out = np.full(32, np.nan, pg.native(dst))
        convert[1,](x, out, N=32, device=device)
        return out.astype(np.float64)

    interp, cpu = on_both(launch)
    np.testing.assert_array_equal(cpu, interp)
    np.testing.assert_array_equal(interp, np.full(32, 1 + 2.0**-dst.mantissa))


def test_left_shift_by_a_negative_count() -> None:
    x = np.full(32, 7, np.int32)
    count = np.full(32, -1, np.int32)

    def launch(device: str) -> np.ndarray:
        out = np.full(32, 0x5A5A5A5A, np.int32)
        shift_left[1,](x, count, out, N=32, device=device)
        return out

    interp, cpu = on_both(launch)
    np.testing.assert_array_equal(cpu, interp)
    np.testing.assert_array_equal(interp, np.zeros(32))  # -1 read as unsigned: every bit out


@tv.kernel
def shift_right(x: tv.Tensor, count: tv.Tensor, out: tv.Tensor, N: tv.constexpr):
    tv.store(out, tv.load(x, [0], [N]) >> tv.load(count, [0], [N]), [0])


@tv.kernel
def floor_chain(x: tv.Tensor, f: tv.Tensor[tv.f16], out: tv.Tensor, N: tv.constexpr):
    v = tv.load(x, [0], [N]) % tv.load(f, [0], [N]).to(x.dtype)  # f = 0.1: x % 0 is x
    tv.store(out, ((-7) // (v - 6)) % v, [0])


# Once wrong on the CPU: SLP-vectorized O3 code on odd-width signed integers (i12), and packed
# elements of more than 17 bits read from three bytes instead of up to five (i25).
@pytest.mark.parametrize("dt", [tv.i12, tv.i25], ids=str)
def test_floor_division_chains_on_odd_width_integers(dt) -> None:
    x = np.asarray([1447, 8, 5, 1004, -3, 3, 7, -301] * 4)
    f = np.full(32, 0.1, np.float16)

    def launch(device: str) -> np.ndarray:
        out = tv.PackedArray.from_values(np.full(32, 7), dt)
        floor_chain[1,](tv.PackedArray.from_values(x, dt), f, out, N=32, device=device)
        return out.values()

    interp, cpu = on_both(launch)
    np.testing.assert_array_equal(cpu, interp)


def test_unsigned_right_shift_by_the_width() -> None:
    x = np.full(32, 0xFFFFFFFC, np.uint32)
    count = np.asarray([32, 41] * 16, np.uint32)

    def launch(device: str) -> np.ndarray:
        out = np.full(32, 0x5A5A5A5A, np.uint32)
        shift_right[1,](x, count, out, N=32, device=device)
        return out

    interp, cpu = on_both(launch)
    np.testing.assert_array_equal(cpu, interp)
    np.testing.assert_array_equal(interp, np.zeros(32))


# Once aborted LLVM's instruction selection (with both of its vectorizers on).
SIX_BIT_ROUND_TRIP = """\
import tilevm as tv


@tv.kernel
def six_bit_round_trip(x: tv.Tensor[tv.f6e2m3fn], out: tv.Tensor[tv.i32], BLOCK: tv.constexpr):
    v = tv.load(x, [0], [BLOCK])
    i = v.to(tv.i32)
    tv.store(out, tv.where(v > i.to(tv.f6e2m3fn), i, 0), [0])
"""


def test_six_bit_float_round_trip_compiles(tmp_path, worker: Worker) -> None:
    block = 512  # 16 elements for each of 32 threads
    source = SIX_BIT_ROUND_TRIP.replace("BLOCK: tv.constexpr", f"BLOCK: tv.constexpr = {block}")
    codes = pg.codes_of(tv.f6e2m3fn, np.linspace(-7, 7, block))
    args = [
        pg.Arg("x", tv.f6e2m3fn, (block,), codes=codes),
        pg.Arg("out", tv.i32, (block,), check=pg.Check()),
    ]
    summary = "f6e2m3fn > its round trip through i32, 16 elements per thread"
    program = Program("minimized", "six_bit_round_trip", source, (1,), 1, args, summary)
    differential(program, ("interp", "cpu"), tmp_path, worker)


def test_generated_six_bit_round_trip_compiles(tmp_path, worker: Worker) -> None:
    program = pg.generate("elementwise", 16, 42)  # as found
    assert "f6e2m3fn" in program.source and "BLOCK: tv.constexpr = 1024" in program.source
    differential(program, ("interp", "cpu"), tmp_path, worker)
