"""LLVM IR -> host object code -> a callable function, through llvmlite (MCJIT).

Object code is what the disk cache keeps: a new process loads it without parsing or optimizing
again. The target machine is this host's CPU with all its features, so the key includes them.
"""

from __future__ import annotations

import functools
import threading

import llvmlite
import llvmlite.binding as llvm

from tilevm.backends.cpu.runner import BLOCKS

_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _init() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


@functools.lru_cache(maxsize=1)
def target_machine() -> llvm.TargetMachine:
    """The shared target machine for optimizing and emitting code."""
    return _new_target_machine()


def _new_target_machine() -> llvm.TargetMachine:
    _init()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=3,
        reloc="pic",
        codemodel="jitdefault",
    )


def fingerprint() -> str:
    """What else decides the object code besides the IR: LLVM, the host CPU and its features."""
    _init()
    return " ".join(
        (
            llvmlite.__version__,
            llvm.get_default_triple(),
            llvm.get_host_cpu_name(),
            llvm.get_host_cpu_features().flatten(),
        )
    )


def compile_object(llvm_ir: str) -> bytes:
    """Parse, verify, optimize (O3) and emit object code for this host."""
    tm = target_machine()
    with _lock:  # the LLVM context is shared; keep passes on one thread at a time
        module = llvm.parse_assembly(llvm_ir)
        module.triple = tm.triple
        module.data_layout = str(tm.target_data)
        module.verify()
        builder = llvm.create_pass_builder(tm, _tuning())
        builder.getModulePassManager().run(module, builder)
        return tm.emit_object(module)


def _tuning() -> llvm.PipelineTuningOptions:
    options = llvm.create_pipeline_tuning_options(speed_level=3)
    # No vectorizer passes: each thread's runs are already explicit vector accesses. Across
    # threads the loop vectorizer measured slower here; with it and SLP on, LLVM 22 aborted in
    # instruction selection (a 6-bit float compared with its own round trip), and SLP alone
    # miscompiled floor division chains on odd-width signed integers on this host (znver5).
    options.loop_vectorization = False
    options.slp_vectorization = False
    return options


def optimized_ir(llvm_ir: str) -> str:
    """The optimized module as text (for people reading what the CPU runs)."""
    tm = target_machine()
    with _lock:
        module = llvm.parse_assembly(llvm_ir)
        module.triple = tm.triple
        module.data_layout = str(tm.target_data)
        builder = llvm.create_pass_builder(tm, _tuning())
        builder.getModulePassManager().run(module, builder)
        return str(module)


class Loaded:
    """Object code linked into this process; keeps its engine alive while referenced."""

    def __init__(self, obj: bytes, name: str) -> None:
        tm = _new_target_machine()  # an engine owns (and frees) its target machine
        with _lock:
            empty = llvm.parse_assembly("")
            empty.triple = tm.triple
            self.engine = llvm.create_mcjit_compiler(empty, tm)
            self.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
            self.engine.finalize_object()
            self.address = self.engine.get_function_address(name)
        if not self.address:
            raise RuntimeError(f"{name} is not in the compiled object")  # a generator bug
        self.function = BLOCKS(self.address)
        self.workspaces: list = []  # reused across launches, one per range in flight
