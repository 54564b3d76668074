"""Bit-packed buffers: element ``i`` of a ``b``-bit array occupies bits ``[i*b, (i+1)*b)``.

Bits are numbered little-endian inside each byte (bit 0 is the least significant bit of byte 0),
so a 3-bit array ``[a, b, c, ...]`` packs as::

    byte 0: b7 b6 | b5 b4 b3 | b2 b1 b0        byte 1: ...  c2 c1 c0 | b2
            c1 c0 |  b (3)   |  a (3)

which is also how a GPU sees the buffer when it loads whole words and shifts.

Widths below 8 pack eight elements (``b`` bytes) per step as one little-endian 64-bit word;
9..63-bit widths go through a bit matrix; 8, 16, 32, 64 are plain little-endian arrays.
"""

from __future__ import annotations

import numpy as np

from tilevm.dtypes.convert import _CHUNK, check_codes, decode, encode
from tilevm.dtypes.datatype import DataType
from tilevm.dtypes.errors import DtypeError
from tilevm.dtypes.interop import ml_dtypes_name


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned bit patterns (each below ``2**bits``) into a flat ``uint8`` buffer."""
    flat = np.ascontiguousarray(codes).reshape(-1)
    nbytes = (flat.size * bits + 7) // 8
    if bits in (8, 16, 32, 64):
        return flat.astype(f"<u{bits // 8}", copy=False).view(np.uint8).copy()
    out = np.empty(nbytes, dtype=np.uint8)
    step = _CHUNK  # a multiple of 8 elements, so every chunk starts on a byte boundary
    for start in range(0, flat.size, step):
        part = flat[start : start + step]
        packed = _pack_small(part, bits) if bits < 8 else _pack_bitmatrix(part, bits)
        first = start * bits // 8
        out[first : first + packed.size] = packed
    return out


def unpack_codes(buffer: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Inverse of ``pack_codes``: the first ``count`` patterns, as ``uint64``."""
    data = np.asarray(buffer, dtype=np.uint8).reshape(-1)
    if bits in (8, 16, 32, 64):
        return data[: count * bits // 8].view(f"<u{bits // 8}").astype(np.uint64)
    out = np.empty(count, dtype=np.uint64)
    for start in range(0, count, _CHUNK):
        n = min(_CHUNK, count - start)
        first = start * bits // 8
        piece = data[first : first + (n * bits + 7) // 8]
        out[start : start + n] = (
            _unpack_small(piece, bits, n) if bits < 8 else _unpack_bitmatrix(piece, bits, n)
        )
    return out


def _pack_small(codes: np.ndarray, bits: int) -> np.ndarray:
    n = codes.size
    padded = np.zeros((n + 7) // 8 * 8, dtype=np.uint64)
    padded[:n] = codes
    lanes = padded.reshape(-1, 8)
    word = np.zeros(lanes.shape[0], dtype=np.uint64)
    for j in range(8):  # eight lanes of one word, not a loop over elements
        word |= lanes[:, j] << np.uint64(j * bits)
    packed = word.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :bits].reshape(-1)
    return packed[: (n * bits + 7) // 8]


def _unpack_small(data: np.ndarray, bits: int, count: int) -> np.ndarray:
    groups = (count + 7) // 8
    raw = np.zeros((groups, 8), dtype=np.uint8)
    flat = np.zeros(groups * bits, dtype=np.uint8)
    flat[: data.size] = data
    raw[:, :bits] = flat.reshape(groups, bits)
    word = raw.view("<u8").reshape(-1)
    mask = np.uint64((1 << bits) - 1)
    lanes = np.stack([(word >> np.uint64(j * bits)) & mask for j in range(8)], axis=1)
    return lanes.reshape(-1)[:count]


def _pack_bitmatrix(codes: np.ndarray, bits: int) -> np.ndarray:
    as_bytes = codes.astype("<u8").view(np.uint8).reshape(-1, 8)
    bitmatrix = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :bits]
    return np.packbits(bitmatrix.reshape(-1), bitorder="little")


def _unpack_bitmatrix(data: np.ndarray, bits: int, count: int) -> np.ndarray:
    stream = np.unpackbits(data, bitorder="little")[: count * bits].reshape(count, bits)
    wide = np.zeros((count, 64), dtype=np.uint8)
    wide[:, :bits] = stream
    return np.packbits(wide, axis=1, bitorder="little").view("<u8").reshape(-1)


# ----- public API -----------------------------------------------------------------------------


def pack(
    values: object, dt: DataType, *, bits: bool | None = None, overflow: str = "default"
) -> np.ndarray:
    """Encode (unless given bit patterns) and bit-pack ``values`` into a flat ``uint8`` buffer.

    ``bits=None`` decides from the input: float arrays are values; integer arrays are values for
    integer dtypes; an ml_dtypes array of exactly ``dt`` is taken bit for bit. Integer arrays for
    a float dtype are ambiguous and must say ``bits=True`` (patterns) or be cast to float.
    """
    arr = np.asarray(values)
    if bits is None:
        bits = _looks_like_patterns(arr, dt)
    if bits:
        if _is_ml_twin(arr, dt):
            arr = arr.view(f"uint{arr.dtype.itemsize * 8}")
        codes = check_codes(dt, arr)
    else:
        codes = encode(dt, arr, overflow=overflow)
    return pack_codes(codes, dt.bits)


def unpack(
    buffer: object, dt: DataType, shape: int | tuple[int, ...], *, bits: bool = False
) -> np.ndarray:
    """Read ``prod(shape)`` elements of ``dt`` from a packed buffer: values, or patterns if
    ``bits=True``."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    count = int(np.prod(shape, dtype=np.int64))
    data = (
        np.frombuffer(buffer, dtype=np.uint8)
        if isinstance(buffer, (bytes, bytearray, memoryview))
        else np.asarray(buffer)
    )
    if data.dtype != np.uint8:
        raise DtypeError(
            "a packed buffer must be an array of uint8",
            expected="numpy uint8 array (as tv.pack returns) or bytes",
            found=f"an array of {data.dtype}",
            hint="view other arrays as bytes first: arr.view(np.uint8)",
            code="pack-buffer",
        )
    if data.size < dt.nbytes(count):
        raise DtypeError(
            f"packed buffer too small for {count} elements of {dt}",
            expected=f"at least {dt.nbytes(count)} bytes",
            found=f"{data.size} bytes",
            hint="check the shape and the dtype the buffer was packed with",
            code="pack-buffer",
        )
    codes = unpack_codes(data, dt.bits, count).astype(dt.storage)
    return (codes if bits else decode(dt, codes)).reshape(shape)


def _is_ml_twin(arr: np.ndarray, dt: DataType) -> bool:
    return arr.dtype.type.__module__.startswith("ml_dtypes") and arr.dtype.name == ml_dtypes_name(
        dt
    )


def _looks_like_patterns(arr: np.ndarray, dt: DataType) -> bool:
    if _is_ml_twin(arr, dt):
        return True
    if arr.dtype.kind in "iub" and dt.is_float:
        raise DtypeError(
            f"integer input to pack for the float type {dt} is ambiguous",
            expected="float values, or bit patterns marked with bits=True",
            found=f"an array of {arr.dtype}",
            hint=f"tv.pack(patterns, {dt}, bits=True) or tv.pack(arr.astype(np.float32), {dt})",
            code="pack-ambiguous",
        )
    return False
