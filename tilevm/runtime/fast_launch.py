"""The repeat-launch path: a launch whose arguments have the same kinds as an earlier one
(tensor dtypes, ranks, contiguity, alignment, constexpr values) skips specialization and goes
straight to building the kernel's parameters. Only torch tensors on an accelerator and plain
scalars take it there, numpy arrays of byte-sized dtypes and plain scalars on the host, and only
where the backend gives an entry (``Backend.fast_entry``); anything else, and every first launch,
goes through the full path, which checks everything and then records an entry here.
"""

from __future__ import annotations

import ctypes
import math
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import tilevm.dtypes as dts
from tilevm.dtypes import DataType
from tilevm.frontend.builder import python_dtype
from tilevm.frontend.scope import Guard, guards_hold
from tilevm.runtime.arrays import extent_align, needs_wide_index, stride_align

_MISS = object()
INDEX_CTYPE = {32: ctypes.c_int32, 64: ctypes.c_int64}  # a size or stride parameter


@dataclass(frozen=True)
class Entry:
    # (kind, argument position, axis, bits) per parameter: sizes and strides are passed as
    # 32- or 64-bit integers, as the specialization's index width says
    plan: tuple[tuple[str, int, int, int], ...]
    scalars: dict[int, DataType]
    # Host entries: runs the kernel on 8-byte parameter slots read from numpy arrays and the
    # grid. Device entries: launches on the argument values (scalars), the probe's reads of
    # the tensors and the grid; False when a scalar does not fit its dtype (``ParamPacker``).
    run: Callable[[list, tuple[int, int, int]], Any]
    host: bool = False
    guards: tuple[Guard, ...] = ()  # the globals the kernel read still have their values


class FastPath:
    def __init__(self, names: Sequence[str], kinds: Sequence[str], defaults: Sequence[Any]):
        self.names = list(names)
        self.kinds = list(kinds)  # "tensor" | "scalar" | "constexpr" | "any"
        self.defaults = list(defaults)  # _MISS where a parameter has none
        self.entries: dict[tuple, Entry] = {}  # by the facts the specialization depends on
        self._by_raw: dict[tuple, Entry] = {}  # the same entries by probed keys
        self._probe_torch: Callable[[list, int, str], Any] | None = None
        self._binders: dict[tuple, Callable | None] = {}  # by call shape (see ``bind``)

    def repeat(
        self, args: tuple, kwargs: dict, warps: int, device: str, grid: tuple[int, int, int]
    ) -> tuple[list | None, tuple[tuple, list] | None] | None:
        """Launch through the entry recorded for launches like this one: None when it ran,
        else what the full path needs to record one (the bound values and the probe, either
        None when the call cannot take this path). One function for bind, probe, find and
        launch, since each Python call on this path costs a tenth of a microsecond."""
        bound = self.bind(args, kwargs)
        if bound is None:
            return None, None
        probe = self.probe(bound, warps, device)
        if probe is None:
            return bound, None
        try:
            entry = self._by_raw.get(probe[0])
        except TypeError:  # an unhashable constexpr
            return bound, None
        if entry is None:
            entry = self.find(probe[0], bound)
        if entry is None or not grid[0] * grid[1] * grid[2]:
            return bound, probe
        if entry.guards and not guards_hold(entry.guards):
            return bound, probe  # a global changed: the full path compiles again
        if entry.host:
            done = self._launch_host(entry, bound, grid)
        else:
            done = entry.run(bound, probe[1], grid)
        return None if done else (bound, probe)

    def bind(self, args: tuple, kwargs: dict) -> list | None:
        """Argument values in parameter order, or None when the call is not a plain one."""
        if not kwargs and len(args) == len(self.names):
            return list(args)
        shape = (len(args), *kwargs)  # how many positional arguments, which keywords
        binder = self._binders.get(shape, _MISS)
        if binder is _MISS:
            if len(self._binders) > 256:  # calls spelled ever differently: start over
                self._binders.clear()
            binder = self._binders[shape] = self._binder(len(args), tuple(kwargs))
        return binder(args, kwargs) if binder is not None else None

    def _binder(self, count: int, keywords: tuple[str, ...]) -> Callable | None:
        """``bind`` for calls with ``count`` positional arguments and these keywords: a list
        display generated for them, or None where such a call does not bind plainly."""
        rest = self.names[count:]
        if count > len(self.names) or not set(keywords) <= set(rest):
            return None
        items = [f"a[{i}]" for i in range(count)]
        for i, name in enumerate(rest, count):
            if name in keywords:
                items.append(f"k[{name!r}]")
            elif self.defaults[i] is not _MISS:
                items.append(f"d[{i}]")
            else:
                return None
        scope = {"d": tuple(self.defaults)}
        return eval(f"lambda a, k: [{', '.join(items)}]", scope)  # noqa: S307 (names are repr'd)

    def probe(self, values: list, warps: int, device: str) -> tuple[tuple, list] | None:
        """``probe_any`` for a launch whose tensor parameters all get torch tensors on a
        device (the case where microseconds count) by code generated for this signature,
        which reads the same facts in a straight line and makes the same key."""
        torch = sys.modules.get("torch")
        if torch is None:
            return self.probe_any(values, warps, device)
        if self._probe_torch is None:
            self._probe_torch = _torch_probe(self.kinds, torch.Tensor)
        found = self._probe_torch(values, warps, device)
        return self.probe_any(values, warps, device) if found is _MISS else found

    def probe_any(self, values: list, warps: int, device: str) -> tuple[tuple, list] | None:
        """What the launch's entry is looked up by: the raw facts of its arguments (each
        torch tensor's dtype, shape, strides, 16-byte alignment and device; scalar types;
        constexpr values), and what was read from each tensor (address, shape, strides: the
        parameters reuse them). None when the launch must take the full path."""
        torch = sys.modules.get("torch")
        parts: list[Any] = [warps, device]
        reads: list[Any] = [None] * len(values)
        for i, (value, kind) in enumerate(zip(values, self.kinds)):
            if kind == "constexpr":
                parts.append(value)
            elif torch is not None and type(value) is torch.Tensor:
                index = value.get_device()
                if index < 0:  # host memory
                    return None
                ptr, shape, strides = value.data_ptr(), value.shape, value.stride()
                parts += (value.dtype, shape, strides, ptr & 15 == 0, index, value.is_cuda)
                reads[i] = (ptr, shape, strides)
            elif type(value) is np.ndarray and kind != "scalar":
                if not (_byte_sized(value.dtype) and value.flags.writeable):
                    return None  # (a read-only array is checked against what the kernel writes)
                parts.append(_numpy_facts(value))
            elif kind != "tensor" and type(value) in (int, float, bool):
                parts.append(scalar_fact(value))
            else:
                return None
        key = tuple(parts)
        try:
            hash(key)
        except TypeError:  # an unhashable constexpr
            return None
        return key, reads

    def find(self, key: tuple, values: list) -> Entry | None:
        """The entry for a probed launch: by its raw key, else by the specialization facts
        those arguments give (a new shape of a known kind), remembered under the raw key."""
        entry = self._by_raw.get(key)
        if entry is None:
            entry = self.entries.get(self._facts_key(key, values))
            if entry is not None:
                self._remember(key, entry)
        return entry

    def record(self, key: tuple, values: list, entry: Entry) -> None:
        """Keep the full path's entry for launches like this one."""
        self.entries[self._facts_key(key, values)] = entry
        self._remember(key, entry)

    def clear(self) -> None:
        """Forget every entry: the next launch of each kind takes the full path."""
        self.entries.clear()
        self._by_raw.clear()

    def _remember(self, key: tuple, entry: Entry) -> None:
        if len(self._by_raw) > 4096:  # a workload of ever-new shapes: start over
            self._by_raw.clear()
        self._by_raw[key] = entry

    def _facts_key(self, key: tuple, values: list) -> tuple:
        """What the specialization depends on: the raw key with each torch tensor's shape
        and strides replaced by the facts they give (rank, unit last stride, alignments,
        64-bit indexing)."""
        torch = sys.modules.get("torch")
        parts: list[Any] = list(key[:2])
        for value, kind in zip(values, self.kinds):
            if kind == "constexpr":
                parts.append(value)
            elif torch is not None and type(value) is torch.Tensor:
                shape, strides = tuple(value.shape), value.stride()
                bits = value.element_size() * 8
                parts.append((value.dtype, value.get_device(), value.is_cuda,
                              value.data_ptr() & 15 == 0, len(strides),
                              not strides or strides[-1] == 1, stride_align(strides, bits),
                              extent_align(shape, bits),
                              needs_wide_index(shape, strides)))  # fmt: skip
            elif type(value) is np.ndarray and kind != "scalar":
                parts.append(_numpy_facts(value))
            else:
                parts.append(scalar_fact(value))
        return tuple(parts)

    def _launch_host(self, entry: Entry, values: list, grid: tuple[int, int, int]) -> bool:
        slots: list[int] = []
        for kind, position, axis, _ in entry.plan:
            value = values[position]
            if kind == "tensor":
                slots.append(value.ctypes.data)
            elif kind == "dim":
                slots.append(value.shape[axis])
            elif kind == "stride":
                slots.append((value.strides[axis] // value.itemsize) % (1 << 64))
            else:
                arg = scalar_arg(entry.scalars[position], value)
                if arg is None:
                    return False
                word = ctypes.c_uint64(0)
                ctypes.memmove(ctypes.addressof(word), ctypes.addressof(arg), ctypes.sizeof(arg))
                slots.append(word.value)
        entry.run(slots, grid)
        return True


def _torch_probe(kinds: Sequence[str], tensor_type: type) -> Callable[[list, int, str], Any]:
    """``FastPath.probe_any`` unrolled for one signature, for arguments that are torch
    tensors where the signature says tensor and plain numbers where it says scalar; any
    other argument (and an "any" parameter) gives ``_MISS``, for the general probe."""
    if "any" in kinds:
        return lambda values, warps, device: _MISS
    lines = ["def probe(v, warps, device):"]
    parts, reads = ["warps", "device"], []
    for i, kind in enumerate(kinds):
        if kind == "constexpr":
            parts.append(f"v[{i}]")
            reads.append("None")
        elif kind == "tensor":
            lines += [
                f"    a{i} = v[{i}]",
                f"    if type(a{i}) is not Tensor:",
                "        return MISS",
                f"    d{i} = a{i}.get_device()",
                f"    if d{i} < 0:",
                "        return None",  # host memory: the full path
                f"    p{i}, s{i}, t{i} = a{i}.data_ptr(), a{i}.shape, a{i}.stride()",
            ]
            parts += [f"a{i}.dtype", f"s{i}", f"t{i}", f"p{i} & 15 == 0", f"d{i}", f"a{i}.is_cuda"]
            reads.append(f"(p{i}, s{i}, t{i})")
        else:
            lines += [f"    n{i} = type(v[{i}])", f"    if n{i} is not int and n{i} is not float "
                      f"and n{i} is not bool:", "        return MISS",
                      f"    if n{i} is int and not -2147483648 <= v[{i}] < 2147483648:",
                      f"        n{i} = WIDE_INT"]  # fmt: skip
            parts.append(f"n{i}")
            reads.append("None")
    # (not hashed here: the caller's lookup hashes the key, and refuses an unhashable one)
    lines.append(f"    return ({', '.join(parts)},), [{', '.join(reads)}]")
    scope = {"Tensor": tensor_type, "MISS": _MISS, "WIDE_INT": WIDE_INT}
    exec(compile("\n".join(lines) + "\n", "<tilevm launch probe>", "exec"), scope)
    return scope["probe"]


WIDE_INT = "int past i32"


def scalar_fact(value: int | float | bool) -> Any:
    """A plain number's part of a key: its type, and for an int whether it fits i32 (an ``int``
    or unannotated parameter is i64 where it does not: another specialization)."""
    if type(value) is int and python_dtype(value) != dts.i32:  # the full path's rule
        return WIDE_INT
    return type(value)


def _numpy_facts(value: np.ndarray) -> tuple:
    """A host array's part of a key: what its specialization depends on."""
    item = value.itemsize
    strides = tuple(s // item for s in value.strides)
    return (value.dtype, value.ndim, not strides or strides[-1] == 1,
            value.ctypes.data & 15 == 0, stride_align(strides, item * 8),
            extent_align(value.shape, item * 8), needs_wide_index(value.shape, strides),
            "host")  # fmt: skip


class _OutOfRange(Exception):
    pass


def _scalar_bits(dtype: DataType, value: Any) -> int:
    """A scalar of a dtype without a struct format (f16, bf16, i8, ...) as its bit pattern."""
    arg = scalar_arg(dtype, value)
    if arg is None:
        raise _OutOfRange
    return int.from_bytes(bytes(arg), "little")


# struct formats of the scalar dtypes struct can range-check itself, each in an 8-byte slot
_FORMATS = {"i32": "i4x", "u32": "I4x", "i64": "q", "u64": "Q", "f32": "f4x", "f64": "d"}


class ParamPacker:
    """A kernel's parameters in one buffer of 8-byte slots, and the array of pointers to them
    that a driver's launch takes. ``pack(values, reads)`` fills the buffer from a launch's
    scalar values and what ``FastPath.probe`` read from its tensors (address, shape, strides)
    with one ``struct.pack_into``, generated for the plan; it returns False when a scalar does
    not fit its dtype (struct refuses an integer out of range or a finite float that overflows
    f32), and the full path then raises the error. The buffer is reused: a caller holds one
    lock from packing until the driver has copied the parameters (and the launch must not
    release the GIL in between either)."""

    def __init__(self, plan: Sequence[tuple[str, int, int, int]], scalars: dict[int, DataType]):
        fmt, values = ["="], []
        for kind, position, axis, bits in plan:
            v, r = f"v[{position}]", f"r[{position}]"
            if kind == "tensor":
                fmt.append("Q")
                values.append(f"{r}[0]")
            elif kind in ("dim", "stride"):
                fmt.append("q" if bits == 64 else "i4x")
                values.append(f"{r}[{1 if kind == 'dim' else 2}][{axis}]")
            else:
                name = scalars[position].name
                fmt.append(_FORMATS.get(name, "Q"))
                values.append(v if name in _FORMATS else f"bits(dtypes[{position}], {v})")
        count = max(len(plan), 1)
        self.buffer = ctypes.create_string_buffer(8 * count)
        base = ctypes.addressof(self.buffer)
        self.pointers = (ctypes.c_void_p * count)(*(base + 8 * i for i in range(count)))
        source = (
            "def pack(v, r):\n"
            "    try:\n"
            f"        pack_into({''.join(fmt)!r}, buffer, 0, {', '.join(values)})\n"
            "    except (struct_error, OverflowError, TypeError, OutOfRange):\n"
            "        return False\n"
            "    return True\n"
        )
        scope = {"pack_into": struct.pack_into, "buffer": self.buffer, "bits": _scalar_bits,
                 "dtypes": dict(scalars), "struct_error": struct.error,
                 "OutOfRange": _OutOfRange}  # fmt: skip
        exec(compile(source, "<tilevm parameter packer>", "exec"), scope)
        self.pack: Callable[[list, list], bool] = scope["pack"]


_BYTE_SIZED: dict[np.dtype, bool] = {}


def _byte_sized(dtype: np.dtype) -> bool:
    """Whether a numpy dtype holds one tilevm element per item at full width (not ml_dtypes'
    one-byte int4 and friends, which the CPU reads packed)."""
    if dtype not in _BYTE_SIZED:
        try:
            _BYTE_SIZED[dtype] = dts.dtype(dtype).bits == dtype.itemsize * 8
        except Exception:
            _BYTE_SIZED[dtype] = False
    return _BYTE_SIZED[dtype]


def scalar_arg(dtype: DataType, value: Any) -> ctypes._SimpleCData | None:
    """A kernel scalar as the C type the generated code declares (small floats as their bit
    patterns); None when the value does not fit its dtype (an integer out of range, a finite
    float that would round to infinity): the full launch path then raises the error."""
    if dtype.name in ("f32", "f64"):
        arg = ctypes.c_float(value) if dtype.name == "f32" else ctypes.c_double(value)
        return None if math.isinf(arg.value) and not math.isinf(value) else arg
    if dtype.is_float:
        try:
            code = int(dtype.encode(np.asarray([value]), overflow="error")[0])
        except ValueError:
            return None
        return ctypes.c_uint16(code) if dtype.bits > 8 else ctypes.c_uint8(code)
    if not (isinstance(value, (int, bool)) and dtype.min <= value <= dtype.max):
        return None
    width = 8 if dtype.bits <= 8 else 16 if dtype.bits <= 16 else 32 if dtype.bits <= 32 else 64
    return getattr(ctypes, f"c_{'int' if dtype.kind == 'int' else 'uint'}{width}")(int(value))
