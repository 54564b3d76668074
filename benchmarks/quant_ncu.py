"""Quantized-linear launches for Nsight Compute, one weight type and row count per argument
(``u4`` is M = 1; ``u4:4096`` is M = 4096), warm-up launches first, heuristic configs:

    TILEVM_AUTOTUNE=0 ncu --clock-control none --section SpeedOfLight --section Occupancy \\
        --section WarpStateStats -k regex:'decode_kernel|prefill_kernel' --launch-skip 2 \\
        --launch-count 1 python3 benchmarks/quant_ncu.py u4
"""

from __future__ import annotations

import sys

import torch

from tilevm.stdlib.quant import linear

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from quant_linear import random_weight  # noqa: E402

for arg in sys.argv[1:] or ["u4"]:
    name, _, rows = arg.partition(":")
    m = int(rows or 1)
    qw = random_weight(8192, 8192, name, torch.Generator(device="cuda").manual_seed(0))
    x = torch.randn(m, 8192, device="cuda", dtype=torch.float16)
    y = torch.empty(m, 8192, device="cuda", dtype=torch.float16)
    for _ in range(3):
        linear(x, qw, out=y)
    torch.cuda.synchronize()
