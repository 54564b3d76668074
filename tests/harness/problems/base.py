"""What the test problems share: out = 2 x + 1 over a vector, its kernels and its reference.
Each problem file in this folder adds one solution, honest or cheating."""

from __future__ import annotations

import numpy as np

import tilevm as tv

SHAPES = [(1,), (300,), (1000,)]
BLOCK = 256


@tv.kernel
def affine(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    start = tv.block_id(0) * BLOCK
    tv.store(out, tv.load(x, [start], [BLOCK]) * 2.0 + 1.0, [start])


@tv.kernel
def nothing(x: tv.Tensor[tv.f32], out: tv.Tensor[tv.f32]):
    """Launches and writes nothing: its one store lies past the end of ``out``."""
    tv.store(out, tv.load(x, [0], [32]), [out.shape[0]])


def make_inputs(shape, device, rng):
    return (rng.standard_normal(shape).astype(np.float32),)


def reference(x):
    host = x.cpu() if hasattr(x, "cpu") else x  # on a GPU the private copies are torch tensors
    return (np.asarray(host, dtype=np.float64) * 2.0 + 1.0).astype(np.float32)


def launch(x, out, device):
    affine[tv.cdiv(x.shape[0], BLOCK),](x, out, device=device)
    return out
