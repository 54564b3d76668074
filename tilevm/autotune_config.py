"""The configs of ``@tv.autotune`` and the checks of what it is given.

A config is a value (frozen, hashable, printable): the tuner keys its timings by it, and its
printed form names it in progress lines and in the results file on disk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tilevm.dtypes import DataType
from tilevm.errors import LaunchError, LaunchTypeError
from tilevm.kernel import MAX_WARPS, Kernel
from tilevm.language import constexpr
from tilevm.runtime.arrays import is_tensor_like


class Config:
    """One candidate: constexpr values for the kernel and the launch's ``warps``. Frozen and
    hashable; prints as ``BM=64, BN=128, warps=4``; ``config.BM`` reads a value."""

    __slots__ = ("_items", "_kwargs", "_meta", "warps", "_hash")

    def __init__(self, *, warps: int = 4, **constexprs: Any) -> None:
        if not isinstance(warps, int) or isinstance(warps, bool) or not 1 <= warps <= MAX_WARPS:
            raise LaunchError(
                "bad warps in an autotuning config",
                expected=f"an int in 1..{MAX_WARPS}",
                found=repr(warps),
                code="autotune-config",
            )
        for name, value in constexprs.items():
            try:
                hash(value)
            except TypeError:
                raise LaunchTypeError(
                    f"config value {name}={value!r} is not hashable",
                    expected="numbers, strings, dtypes, tuples",
                    found=type(value).__name__,
                    hint="use a tuple instead of a list",
                    code="autotune-config",
                ) from None
        object.__setattr__(self, "_items", tuple(constexprs.items()))
        object.__setattr__(self, "warps", warps)
        # Read-only views for launches, built once (a launch would otherwise build two dicts).
        object.__setattr__(self, "_kwargs", dict(constexprs))
        object.__setattr__(self, "_meta", {**constexprs, "warps": warps})
        object.__setattr__(self, "_hash", hash((frozenset(self._items), warps)))

    @property
    def constexprs(self) -> dict[str, Any]:
        """The constexpr keyword arguments this config passes to the kernel."""
        return dict(self._items)

    def meta(self) -> dict[str, Any]:
        """The constexprs and ``warps``, as a grid callable receives them."""
        return {**dict(self._items), "warps": self.warps}

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_"):  # (never for the slots: copying may ask before they exist)
            for key, value in self._items:
                if key == name:
                    return value
        raise AttributeError(f"config {self} has no {name}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("tv.Config is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("tv.Config is frozen")

    def __reduce__(self) -> tuple:
        return _rebuild, (self._items, self.warps)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Config):
            return NotImplemented
        return self.warps == other.warps and dict(self._items) == dict(other._items)

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        return ", ".join([*(f"{k}={show(v)}" for k, v in self._items), f"warps={self.warps}"])

    def __repr__(self) -> str:
        return f"Config({self})"


def _rebuild(items: tuple[tuple[str, Any], ...], warps: int) -> Config:
    return Config(warps=warps, **dict(items))


def show(value: Any) -> str:
    return str(value) if isinstance(value, DataType) else repr(value)


def describe(value: Any) -> str:
    """A key argument in a key: a tensor's shape, else the value."""
    if is_tensor_like(value):
        return "[" + ", ".join(str(int(n)) for n in value.shape) + "]"
    if isinstance(value, np.generic):
        value = value.item()
    return show(value)


def dtype_name(value: Any) -> str:
    return str(getattr(value, "dtype", "?")).removeprefix("torch.")


def check_kernel(kernel: Any) -> None:
    if not isinstance(kernel, Kernel):
        raise LaunchTypeError(
            "tv.autotune decorates a kernel",
            expected="@tv.autotune(...) written above @tv.kernel",
            found=type(kernel).__name__,
            hint="@tv.autotune(configs=[...], key=[...])\n@tv.kernel\ndef f(...): ...",
            code="autotune-not-kernel",
        )


def check_configs(kernel: Kernel, configs: Sequence[Config]) -> tuple[Config, ...]:
    configs = tuple(configs) if isinstance(configs, (list, tuple)) else (configs,)
    if not configs or any(not isinstance(c, Config) for c in configs):
        raise LaunchTypeError(
            f"configs of {kernel.__name__} must be a non-empty list of tv.Config",
            expected="[tv.Config(BLOCK=256, warps=2), ...]",
            found=repr(configs)[:80],
            code="autotune-config",
        )
    params = kernel.signature.parameters
    for config in configs:
        for name in config.constexprs:
            if name not in params or params[name].annotation is not constexpr:
                raise LaunchError(
                    f"config {config} sets {name}, which is not a tv.constexpr parameter of "
                    f"{kernel.__name__}",
                    expected=", ".join(_constexprs(kernel)) or "a tv.constexpr parameter",
                    found=name,
                    code="autotune-config",
                )
    return configs


def check_key(kernel: Kernel, key: Sequence[str], configs: Sequence[Config]) -> tuple[str, ...]:
    if isinstance(key, str) or not all(isinstance(k, str) for k in key):
        raise LaunchTypeError(
            f"the key of {kernel.__name__} must be a list of argument names",
            expected='key=["M", "N"]',
            found=repr(key)[:80],
            code="autotune-key",
        )
    params = kernel.signature.parameters
    tuned = {name for c in configs for name in c.constexprs}
    for name in key:
        if name not in params or name in tuned:
            raise LaunchError(
                f"key name '{name}' is not an argument of {kernel.__name__} that the caller passes",
                expected=", ".join(n for n in params if n not in tuned),
                found=name,
                hint="key names are the kernel's parameters (tensors key on their shape), "
                "except the ones configs set",
                code="autotune-key",
            )
    return tuple(key)


def _constexprs(kernel: Kernel) -> Iterator[str]:
    return (n for n, p in kernel.signature.parameters.items() if p.annotation is constexpr)


__all__ = ["Config", "check_configs", "check_kernel", "check_key", "describe", "dtype_name", "show"]
