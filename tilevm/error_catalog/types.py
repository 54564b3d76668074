"""Catalogue entries: data types, packing and the layout algebra."""

from __future__ import annotations

from tilevm.error_catalog.entry import Entry

_DEFAULT = (
    "the default code of its error class: every place that raises one names a more "
    "precise code, which explain also lists"
)

ENTRIES = [
    Entry(
        "tilevm-error",
        "the root of every tilevm error",
        "Every error tilevm raises is a TilevmError with a more precise code.",
        "See the code in the message: python -m tilevm explain CODE.",
        why_no_example=_DEFAULT,
    ),
    Entry(
        "dtype",
        "a data type name or parameter is invalid",
        "The base of the dtype codes.",
        "See the more precise code in the message.",
        why_no_example=_DEFAULT,
    ),
    Entry(
        "dtype-name",
        "a dtype name that does not parse or does not add up",
        "Names are i<bits>, u<bits>, f<bits>e<exp>m<man>[fn|fnuz] (bits may be left out), "
        "bf16, or a numpy / ml_dtypes name.",
        "Check the spelling; the hint gives the name the parts add up to.",
        example='tv.dtype("f7e3m2")',
    ),
    Entry(
        "dtype-width",
        "a bit width or exponent/mantissa split tilevm does not support",
        "Integers have 1..64 bits; floats up to 16 bits (plus f32, f64) with a valid split.",
        "Pick a supported width: tv.int_type(1..64), tv.float_type(e, m).",
        example="tv.int_type(65)",
    ),
    Entry(
        "dtype-variant",
        "an unknown float variant",
        "A float's variant is '' (IEEE-like), 'fn' (finite, NaN) or 'fnuz' (no negative zero).",
        "Use one of those variants.",
        example='tv.float_type(3, 2, "xyz")',
    ),
    Entry(
        "dtype-not-float",
        "a float-only property asked of an integer type",
        "eps, smallest_subnormal and the like exist only for floats.",
        "Ask an integer type for min / max instead.",
        example="tv.i8.eps",
    ),
    Entry(
        "dtype-bits",
        "bit patterns that are not integers or do not fit the width",
        "decode() and pack(bits=True) take unsigned integer patterns below 2**bits.",
        "Pass patterns of the right width, or encode values with dt.encode(values).",
        example="tv.i3.decode(np.array([9], np.uint8))",
    ),
    Entry(
        "dtype-overflow-policy",
        "an unknown overflow policy",
        "Encoding takes overflow='saturate', 'inf', 'nan', 'wrap' or 'error' as the type allows.",
        "Use one of the documented policies (docs/dtypes.md).",
        example='tv.f16.encode(np.array([1.0]), overflow="explode")',
    ),
    Entry(
        "dtype-overflow",
        "a value out of the type's range with overflow='error'",
        "overflow='error' refuses values the type cannot hold.",
        "Clip the values first, or pick a policy that saturates.",
        example='tv.i4.encode(np.array([100]), overflow="error")',
    ),
    Entry(
        "dtype-encode-input",
        "an array that cannot be encoded",
        "encode() takes numbers (ints, floats, bools).",
        "Convert the array to a numeric dtype first.",
        example='tv.f16.encode(np.array(["a"]))',
    ),
    Entry(
        "dtype-interop",
        "no numpy / torch twin for a type, or not a type at all",
        "Converting between tilevm, numpy, ml_dtypes and torch types needs a twin.",
        "Pass a real dtype, or use tv.pack for types numpy lacks.",
        example="tv.dtypes.interop.from_numpy(42)",
    ),
    Entry(
        "pack-buffer",
        "a packed buffer of the wrong type or size",
        "tv.unpack reads a uint8 buffer with at least the bytes the shape needs.",
        "Pass the bytes tv.pack returned (arr.view(np.uint8) for others).",
        example="tv.unpack(np.zeros(1, np.uint8), tv.i3, 100)",
    ),
    Entry(
        "pack-ambiguous",
        "an integer array packed into a float type",
        "Integers could be values or bit patterns of the float type.",
        "Say which: tv.pack(arr, dt, bits=True) for patterns, or arr.astype(np.float32).",
        example="tv.pack(np.array([1, 2], np.int32), tv.f6e3m2fn)",
    ),
    Entry(
        "packed-strided",
        "a PackedArray over strided bytes",
        "Packed arrays are bit streams over contiguous bytes.",
        "Pass np.ascontiguousarray(data) or data.contiguous().",
        example="tv.PackedArray(np.zeros(64, np.uint8)[::2], tv.i4, (16,))",
    ),
    Entry(
        "packed-size",
        "a PackedArray with fewer bytes than its shape needs",
        "A shape of n elements of b bits needs ceil(n*b/8) bytes.",
        "Allocate enough bytes (tv.PackedArray.from_values does it for you).",
        example="tv.PackedArray(np.zeros(1, np.uint8), tv.i4, (16,))",
    ),
    Entry(
        "layout",
        "a layout's arguments or operation are invalid",
        "The base of the layout codes.",
        "See the more precise code in the message.",
        why_no_example=_DEFAULT,
    ),
    Entry(
        "layout-args",
        "bad arguments to a layout constructor or operation",
        "Layout primitives take positive int sizes; shared layouts take known orders.",
        "Pass positive ints (and 'row' / 'column' for orders).",
        example="tv.layouts.spatial(0, 4)",
    ),
    Entry(
        "layout-range",
        "a thread, slot or index outside a layout",
        "A layout maps thread in [0, T) and slot in [0, R) to an index of its shape.",
        "Ask for threads and slots inside the layout.",
        example="tv.layouts.spatial(4, 8)(32, 0)",
    ),
    Entry(
        "layout-rank",
        "layouts of different ranks combined",
        "Composition and division work on layouts of one rank.",
        "Reshape one of them, or add size-1 dimensions.",
        example="tv.layouts.spatial(4, 8) * tv.layouts.local(2)",
    ),
    Entry(
        "layout-shape",
        "a reshape or shared layout whose sizes do not match",
        "A reshape keeps the number of elements; a shared layout covers its shape.",
        "Use shapes with the same number of elements.",
        example="tv.layouts.ops.reshape(tv.layouts.spatial(4, 8), (3, 5))",
    ),
    Entry(
        "layout-divide",
        "a layout that is not a multiple of another",
        "h / g exists only when h == f * g for some f.",
        "Divide by a layout that h was composed from (check the shapes and thread counts).",
        example="tv.layouts.spatial(4, 8) / tv.layouts.local(2, 2)",
    ),
]
