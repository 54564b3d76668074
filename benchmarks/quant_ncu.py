"""One decode launch per weight type for Nsight Compute (warm-up launches first):

    ncu --clock-control none --section SpeedOfLight --section Occupancy \\
        --section WarpStateStats -k regex:decode_kernel --launch-skip 2 \\
        python3 benchmarks/quant_ncu.py u4
"""

from __future__ import annotations

import sys

import torch

import tilevm as tv
from tilevm.stdlib.quant import dispatch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from quant_linear import random_weight  # noqa: E402

for name in sys.argv[1:] or ["u4"]:
    qw = random_weight(8192, 8192, name, torch.Generator(device="cuda").manual_seed(0))
    x = torch.randn(1, 8192, device="cuda", dtype=torch.float16)
    y = torch.empty(1, 8192, device="cuda", dtype=torch.float16)
    for _ in range(3):
        dispatch.decode(x, qw, None, y, config=tv.Config(RN=1, BM=8, warps=8))
    torch.cuda.synchronize()
