"""Weight-only quantized linear layers at any width from 1 to 8 bits.

``quantize(w, dtype, group_size=128, zero_point=False, scale_dtype=None)`` packs a weight matrix,
``dequantize(qw)`` unpacks it, ``linear(x, qw, bias=None)`` computes ``x @ dequantize(qw).T``
(+ bias) on the packed weights. See docs/quantization.md.
"""

from tilevm.stdlib.quant.dispatch import linear, reference
from tilevm.stdlib.quant.format import QuantizedWeight, dequantize, quantize

__all__ = ["QuantizedWeight", "dequantize", "linear", "quantize", "reference"]
