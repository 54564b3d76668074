"""Quantized weights: ``quantize``, ``dequantize`` and the packed format.

``quantize(w, dtype)`` rounds each group of ``group_size`` consecutive input columns of a weight
matrix ``w[N, K]`` to ``dtype`` with one scale per group (per row and group), round to nearest:

* signed integers ``iN``: symmetric, ``w ~ q * s`` with ``s = max|w| / (2**(N-1) - 1)``;
* unsigned integers ``uN`` with ``zero_point=True``: asymmetric, ``w ~ (q - z) * s`` with an
  integer zero point ``z`` per group (min/max of the group); without zero points ``uN`` has the
  mid-range zero ``2**(N-1)``: the values of ``iN``, and packed as ``iN`` (two's complement);
* floats (``f4e2m1fn``, ``f6e3m2fn``, ``f8e4m3fn``, ...): ``w ~ q * s`` with
  ``s = max|w| / dtype.max``, ``q`` rounded to the nearest value of ``dtype``.

The codes are packed in the order the kernels load them (``layouts.py``): per tile of 16 rows
and ``kc`` columns, each of 32 lanes holds its weights as consecutive bit fields in 16-byte
pieces. Scales (and zero points, as exact integers in the scale dtype) are ``[groups, N]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

import tilevm as tv
from tilevm.errors import entry_point
from tilevm.stdlib.host import to_host
from tilevm.stdlib.quant.layouts import LANES, ROWS, Unit, field_sources, word_positions

GROUP_SIZES = (32, 64, 128, -1)
SCALE_DTYPES = ("f16", "bf16", "f32")
FORMAT = "tilevm-quant-1"


@dataclass(frozen=True)
class QuantizedWeight:
    """A quantized ``[N, K]`` weight: packed codes, scales, optional zero points.

    ``packed``: int32 ``[ceil(N / 16), ceil(K / kc), words]`` in the kernels' order;
    ``scales``: ``[groups, N]`` (``groups = K / group_size``; 1 per row for ``group_size=-1``);
    ``zeros``: ``[groups, N]`` in the scales' dtype, or None. Arrays are numpy arrays or torch
    tensors (on the device ``quantize`` found the weights on).
    """

    packed: Any
    scales: Any
    zeros: Any
    dtype: tv.DataType
    group_size: int
    shape: tuple[int, int]

    @property
    def bits(self) -> int:
        return self.dtype.bits

    @property
    def unit(self) -> Unit:
        return Unit(self.dtype.bits)

    @property
    def group(self) -> int:
        """The group size in columns (``K`` for per-channel scales)."""
        return self.shape[1] if self.group_size == -1 else self.group_size

    @property
    def nbytes(self) -> int:
        """Bytes the kernels read: the packed weights, scales and zero points."""
        return sum(_nbytes(a) for a in (self.packed, self.scales, self.zeros) if a is not None)

    def to(self, device: Any) -> QuantizedWeight:
        """The same weight with its arrays on ``device`` (torch tensors)."""
        import torch

        move = lambda a: None if a is None else torch.as_tensor(a).to(device)  # noqa: E731
        return replace(self, packed=move(self.packed), scales=move(self.scales),
                       zeros=move(self.zeros))  # fmt: skip

    def to_dict(self, prefix: str = "") -> dict[str, Any]:
        """The arrays, plus the metadata as a UTF-8 JSON byte array (``quant_config``): a plain
        dict of tensors, as ``safetensors`` saves them."""
        meta = {"format": FORMAT, "dtype": self.dtype.name, "group_size": self.group_size,
                "shape": list(self.shape)}  # fmt: skip
        blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8).copy()
        if not isinstance(self.packed, np.ndarray):
            import torch

            blob = torch.from_numpy(blob)
        out = {f"{prefix}qweight": self.packed, f"{prefix}scales": self.scales,
               f"{prefix}quant_config": blob}  # fmt: skip
        if self.zeros is not None:
            out[f"{prefix}zeros"] = self.zeros
        return out

    @classmethod
    def from_codes(
        cls, codes: Any, dtype: Any, scales: Any, zeros: Any = None, group_size: int = 128
    ) -> QuantizedWeight:
        """A weight from codes already rounded elsewhere: ``codes[N, K]`` (each the ``bits``
        of a ``dtype`` value; for signed integers two's complement, for unsigned ones without
        zero points ``q + 2**(bits - 1)``), ``scales`` and ``zeros`` as ``[N, groups]``. numpy
        arrays, or torch tensors (packed on their device)."""
        dt = _weight_dtype(dtype)
        n, k = codes.shape
        _group(group_size, k)
        if dt.kind == "uint" and zeros is None:  # q + 2**(b-1) -> q in two's complement
            codes = codes ^ (1 << (dt.bits - 1))
        t = (lambda a: a.T.copy()) if isinstance(codes, np.ndarray) else (
            lambda a: a.T.contiguous())  # fmt: skip
        qw = cls(pack_codes(codes, dt), t(scales), None if zeros is None else t(zeros), dt,
                 group_size, (n, k))  # fmt: skip
        _check_arrays(qw)
        return qw

    @classmethod
    def from_dict(cls, tensors: dict[str, Any], prefix: str = "") -> QuantizedWeight:
        """The weight ``to_dict`` wrote."""
        try:
            blob = tensors[f"{prefix}quant_config"]
            meta = json.loads(bytes(to_host(blob).astype(np.uint8)).decode())
            packed, scales = tensors[f"{prefix}qweight"], tensors[f"{prefix}scales"]
        except (KeyError, ValueError, UnicodeDecodeError) as exc:
            raise tv.LaunchError(
                "not a quantized weight",
                expected=f"the entries {prefix}qweight, {prefix}scales and {prefix}quant_config "
                "that QuantizedWeight.to_dict writes",
                found=f"keys {sorted(tensors)[:8]} ({exc})",
            ) from None
        if meta.get("format") != FORMAT:
            raise tv.LaunchError(
                "unknown quantized weight format", expected=FORMAT, found=str(meta.get("format"))
            )
        qw = cls(packed, scales, tensors.get(f"{prefix}zeros"), tv.dtype(meta["dtype"]),
                 int(meta["group_size"]), tuple(meta["shape"]))  # fmt: skip
        _check_arrays(qw)
        return qw


# ----- quantize -------------------------------------------------------------------------------


@entry_point
def quantize(
    w: Any,
    dtype: Any,
    group_size: int = 128,
    zero_point: bool = False,
    scale_dtype: Any = None,
) -> QuantizedWeight:
    """Quantize ``w[N, K]`` (numpy or torch, any device) to ``dtype`` (see the module doc)."""
    dt = _weight_dtype(dtype)
    host = to_host(w).astype(np.float64)
    if host.ndim != 2:
        raise tv.LaunchError(
            "quantize takes a 2-D weight", expected="[N, K]", found=str(list(host.shape))
        )
    n, k = host.shape
    group = _group(group_size, k)
    if zero_point and dt.kind != "uint":
        raise tv.LaunchTypeError(
            f"zero points need an unsigned integer type, not {dt}",
            expected="zero_point=False, or an unsigned dtype such as u4",
            found=f"{dt} with zero_point=True",
            hint="signed integers and floats are symmetric: drop zero_point",
        )
    sdt = _scale_dtype(scale_dtype, w)
    groups = host.reshape(n, k // group, group)
    codes, scales, zeros = _round(groups, dt, zero_point, sdt)
    packed = pack_codes(codes.reshape(n, k), dt)
    out = QuantizedWeight(packed, scales.T.copy(), None if zeros is None else zeros.T.copy(), dt,
                          group_size, (n, k))  # fmt: skip
    return _like(out, w)


def _round(groups: np.ndarray, dt: tv.DataType, zero_point: bool, sdt: tv.DataType):
    """Codes ``[N, G, group]`` (unsigned, ``dt.bits`` wide), scales and zeros ``[N, G]`` (as
    values of ``sdt``)."""
    amax = np.abs(groups).max(axis=2)
    zeros = None
    if dt.is_float:
        scales = sdt.round(amax / float(dt.max))
    elif zero_point:
        top = 2**dt.bits - 1
        lo, hi = groups.min(axis=2), groups.max(axis=2)
        scales = sdt.round((hi - lo) / top)
        safe = np.where(scales > 0, scales, 1.0)
        zeros = np.clip(np.rint(-lo / safe), 0, top)
    else:
        scales = sdt.round(amax / max(2 ** (dt.bits - 1) - 1, 1))
    safe = np.where(scales > 0, scales, 1.0)[..., None]
    ratio = np.where(scales[..., None] > 0, groups / safe, 0.0)
    if dt.is_float:
        codes = dt.encode(ratio, overflow="saturate").astype(np.int64)
    elif zero_point:
        q = np.clip(np.rint(ratio) + zeros[..., None], 0, 2**dt.bits - 1)
        codes = q.astype(np.int64)
    else:  # symmetric, signed values (an unsigned type without zero points too: see _packed)
        q = np.clip(np.rint(ratio), -(2 ** (dt.bits - 1)), 2 ** (dt.bits - 1) - 1).astype(np.int64)
        codes = q & (2**dt.bits - 1)
    store = tv.dtypes.to_numpy(sdt)
    return codes, scales.astype(store), None if zeros is None else zeros.astype(store)


# ----- dequantize -----------------------------------------------------------------------------


@entry_point
def dequantize(qw: QuantizedWeight, dtype: Any = np.float32) -> Any:
    """The weights ``(q - z) * s`` as ``[N, K]`` of ``dtype`` (numpy dtype or torch dtype:
    float32 by default), on the device of ``qw``'s arrays."""
    values = dequantized_values(qw)
    if isinstance(values, np.ndarray):
        return values.astype(dtype)
    import torch

    return values.to(dtype if isinstance(dtype, torch.dtype) else torch.float32)


def dequantized_values(qw: QuantizedWeight) -> Any:
    """``(q - z) * s`` exactly, in float64 (the reference of every kernel): a numpy array, or a
    torch tensor on the device of ``qw``'s arrays."""
    n, k = qw.shape
    xp = _namespace(qw.packed)
    codes = unpack_codes(qw.packed, qw.dtype, n, k)
    table = _code_values(qw)  # the value of every code, before zero point and scale
    values = table[codes] if not xp.torch else xp.index(table, codes)[codes]
    group = qw.group
    scales = _float64(qw.scales).T  # [N, G]
    values = values.reshape(n, k // group, group)
    if qw.zeros is not None:
        values = values - _float64(qw.zeros).T[..., None]
    return (values * scales[..., None]).reshape(n, k)


def _code_values(qw: QuantizedWeight) -> np.ndarray:
    dt = qw.dtype
    codes = np.arange(1 << dt.bits)
    if dt.is_float:
        return dt.decode(codes.astype(dt.storage)).astype(np.float64)
    if dt.kind == "int" or qw.zeros is None:  # two's complement (see the module docstring)
        return np.where(codes >= 2 ** (dt.bits - 1), codes - 2**dt.bits, codes).astype(float)
    return codes.astype(np.float64)


def _float64(a: Any) -> Any:
    return a.astype(np.float64) if isinstance(a, np.ndarray) else a.double()


# ----- packing --------------------------------------------------------------------------------


def pack_codes(codes: Any, dt: tv.DataType) -> Any:
    """``[N, K]`` codes (``dt.bits`` wide) -> int32 ``[tiles, chunks, words]`` (padded with
    code 0, which every supported type decodes to a finite value). numpy arrays, or torch
    tensors on any device (packed there)."""
    xp = _namespace(codes)
    unit = Unit(dt.bits)
    n, k = codes.shape
    tiles, chunks = -(-n // ROWS), -(-k // unit.kc)
    padded = xp.zeros((tiles * ROWS, chunks * unit.kc), codes)
    padded[:n, :k] = codes
    blocks = xp.swap12(padded.reshape(tiles, ROWS, chunks, unit.kc))
    rows, cols = (xp.index(a, codes) for a in field_sources(dt.bits))
    fields = blocks[:, :, rows, cols]  # [tiles, chunks, lanes, fields]
    lane_words = _fields_to_words(fields, dt.bits, unit.pieces * 4)
    out = xp.zeros((tiles, chunks, unit.words), codes)
    out[:, :, xp.index(word_positions(dt.bits), codes)] = lane_words
    return xp.int32(out)


def unpack_codes(packed: Any, dt: tv.DataType, n: int, k: int) -> Any:
    """The inverse of ``pack_codes``: ``[N, K]`` codes (int64)."""
    xp = _namespace(packed)
    unit = Unit(dt.bits)
    words = xp.int64(packed) & 0xFFFFFFFF
    tiles, chunks = words.shape[:2]
    lane_words = words[:, :, xp.index(word_positions(dt.bits), packed)]
    fields = _words_to_fields(lane_words, dt.bits, unit.fields)
    rows, cols = (xp.index(a, packed) for a in field_sources(dt.bits))
    blocks = xp.zeros((tiles, chunks, ROWS, unit.kc), words)
    blocks[:, :, rows, cols] = fields
    blocks = xp.swap12(blocks)
    return blocks.reshape(tiles * ROWS, chunks * unit.kc)[:n, :k]


def _fields_to_words(fields: Any, bits: int, count: int) -> Any:
    """Fields ``[..., F]`` (int64) -> their bit string as ``count`` words (field 0 lowest),
    each in the low 32 bits of an int64."""
    words = [0] * count
    for f in range(fields.shape[-1]):
        start = f * bits
        for w in range(start // 32, (start + bits - 1) // 32 + 1):
            shift = start - 32 * w
            part = fields[..., f] << shift if shift >= 0 else fields[..., f] >> -shift
            words[w] = words[w] | (part & 0xFFFFFFFF)
    return _namespace(fields).stack(words)


def _words_to_fields(words: Any, bits: int, count: int) -> Any:
    mask = (1 << bits) - 1
    fields = []
    for f in range(count):
        start = f * bits
        value = 0
        for w in range(start // 32, (start + bits - 1) // 32 + 1):
            shift = start - 32 * w
            part = words[..., w] >> shift if shift >= 0 else words[..., w] << -shift
            value = value | (part & mask)
        fields.append(value)
    return _namespace(words).stack(fields)


class _Numpy:
    """The few array operations packing needs, for numpy arrays and torch tensors alike."""

    torch = False

    def zeros(self, shape, like):
        return np.zeros(shape, dtype=np.int64)

    def index(self, a: np.ndarray, like) -> np.ndarray:
        return a

    def stack(self, parts) -> np.ndarray:
        return np.stack(np.broadcast_arrays(*parts), axis=-1)

    def int32(self, a: np.ndarray) -> np.ndarray:
        return a.astype(np.uint32).view(np.int32)

    def int64(self, a: np.ndarray) -> np.ndarray:
        return a.astype(np.int64)

    def swap12(self, a):
        """Exchange axes 1 and 2 of a 4-D array."""
        return a.transpose(0, 2, 1, 3)


class _Torch(_Numpy):
    torch = True

    def __init__(self) -> None:
        import torch

        self.t = torch

    def zeros(self, shape, like):
        return self.t.zeros(shape, dtype=self.t.int64, device=like.device)

    def index(self, a: np.ndarray, like):
        return self.t.from_numpy(a).to(like.device)

    def stack(self, parts):
        return self.t.stack(parts, dim=-1)

    def int32(self, a):
        return (a - ((a >> 31) << 32)).to(self.t.int32)  # the low 32 bits, two's complement

    def int64(self, a):
        return a.to(self.t.int64)

    def swap12(self, a):
        return a.permute(0, 2, 1, 3)


def _namespace(a: Any) -> _Numpy:
    return _Numpy() if isinstance(a, np.ndarray) else _Torch()


# ----- checks and conversions -----------------------------------------------------------------


def _weight_dtype(dtype: Any) -> tv.DataType:
    try:
        dt = dtype if isinstance(dtype, tv.DataType) else tv.dtype(dtype)
    except tv.TilevmError as exc:
        raise tv.LaunchTypeError(
            f"unknown weight dtype {dtype!r}", expected="a tilevm dtype such as u4 or f4e2m1fn",
            found=repr(dtype), hint=str(exc.args[0]) if exc.args else None,
        ) from None  # fmt: skip
    ok_int = dt.is_integer and 1 <= dt.bits <= 8
    ok_float = dt.is_float and 3 <= dt.bits <= 8 and dt.variant != "fnu"
    if not (ok_int or ok_float):
        raise tv.LaunchTypeError(
            f"quantized weights of {dt} are not supported",
            expected="an integer of 1..8 bits (i3, u4, ...) or a float of 3..8 bits with a sign "
            "(f4e2m1fn, f6e3m2fn, f8e4m3fn, ...)",
            found=str(dt),
        )
    return dt


def _group(group_size: Any, k: int) -> int:
    if group_size not in GROUP_SIZES:
        raise tv.LaunchError(
            "unsupported group size", expected=f"one of {GROUP_SIZES} (-1: one scale per row)",
            found=repr(group_size),
        )  # fmt: skip
    group = k if group_size == -1 else group_size
    if k % group:
        raise tv.LaunchError(
            f"K = {k} is not a multiple of the group size {group}",
            expected=f"K a multiple of {group}",
            found=f"K = {k}",
            hint="pad the weight's columns, or choose another group_size",
        )
    return group


def _scale_dtype(scale_dtype: Any, w: Any) -> tv.DataType:
    if scale_dtype is None:
        return tv.bf16 if "bfloat16" in str(getattr(w, "dtype", "")) else tv.f16
    sdt = scale_dtype if isinstance(scale_dtype, tv.DataType) else tv.dtype(scale_dtype)
    if sdt.name not in SCALE_DTYPES:
        raise tv.LaunchTypeError(
            "unsupported scale dtype", expected=" or ".join(SCALE_DTYPES), found=str(sdt)
        )
    return sdt


def _check_arrays(qw: QuantizedWeight) -> None:
    n, k = qw.shape
    unit = qw.unit
    want = (-(-n // ROWS), -(-k // unit.kc), unit.words)
    groups = k // qw.group
    for name, arr, shape in (("qweight", qw.packed, want), ("scales", qw.scales, (groups, n)),
                             ("zeros", qw.zeros, (groups, n))):  # fmt: skip
        if arr is not None and tuple(arr.shape) != shape:
            raise tv.LaunchError(
                f"quantized weight entry {name} has the wrong shape",
                expected=str(list(shape)),
                found=str(list(arr.shape)),
            )


def _like(qw: QuantizedWeight, w: Any) -> QuantizedWeight:
    """``qw`` with torch tensors on ``w``'s device when ``w`` is a torch tensor."""
    if isinstance(w, np.ndarray) or not hasattr(w, "device"):
        return qw
    import torch

    def move(a: Any) -> Any:
        if a is None:
            return None
        if a.dtype == np.float16 or str(a.dtype) == "bfloat16":
            t = torch.from_numpy(a.view(np.uint16).copy()).view(
                torch.float16 if a.dtype == np.float16 else torch.bfloat16)  # fmt: skip
        else:
            t = torch.from_numpy(a)
        return t.to(w.device)

    return replace(qw, packed=move(qw.packed), scales=move(qw.scales), zeros=move(qw.zeros))


def _nbytes(a: Any) -> int:
    return int(a.nbytes) if isinstance(a, np.ndarray) else a.numel() * a.element_size()


__all__ = ["LANES", "QuantizedWeight", "dequantize", "pack_codes", "quantize", "unpack_codes"]
