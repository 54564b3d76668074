"""The quantization parameters of packed chunks as the kernels load them."""

from __future__ import annotations

import tilevm as tv


@tv.func
def group_params(scales, zeros, c0, chunks, n0, BN, unit, ZERO, GROUP, ROW_SCALES):
    """Scales and zero points of chunks ``c0 .. c0 + chunks - 1`` for weight rows ``n0 ..
    n0 + BN - 1``: ``[chunks * groups per chunk, BN]`` with groups, ``[1, BN]`` per row (the
    row's scales only if ``ROW_SCALES``: a kernel may apply them at the end instead). Past the
    end they read as zeros; the ones not loaded are constants."""
    NG = unit.kc // (GROUP if GROUP else unit.kc)
    s = 0
    z = 0
    if GROUP:
        s = tv.load(scales, [c0 * NG, n0], [chunks * NG, BN])
    if GROUP and ZERO:
        z = tv.load(zeros, [c0 * NG, n0], [chunks * NG, BN])
    if ROW_SCALES and not GROUP:
        s = tv.load(scales, [0, n0], [1, BN])
    if ZERO and not GROUP:
        z = tv.load(zeros, [0, n0], [1, BN])
    return s, z
