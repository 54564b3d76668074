"""``@tv.autotune``: launch a kernel with the fastest of several configs, found by timing them.

```python
@tv.autotune(configs=[tv.Config(BLOCK=256, warps=2), tv.Config(BLOCK=1024, warps=4)], key=["n"])
@tv.kernel
def scale(x: tv.Tensor, out: tv.Tensor, n: tv.i32, BLOCK: tv.constexpr): ...

scale[lambda meta: (tv.cdiv(n, meta["BLOCK"]),)](x, out, n)
```

The first launch with an unseen key (the values, or tensor shapes, of the ``key`` arguments, every
tensor's dtype and the kind of device) times every config on scratch copies of the tensor
arguments and then launches the fastest on the caller's; later launches with that key go
straight to it. Results are kept in memory and on disk (``tilevm.runtime.autotune_store``).
The interpreter never tunes, nor does any device with ``TILEVM_AUTOTUNE=0``: both launch the
``heuristic``'s config (by default the first one).
"""

from __future__ import annotations

import inspect

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tilevm.autotune_config import (
    Config,
    check_configs,
    check_kernel,
    check_key,
    describe,
    dtype_name,
)
from tilevm.errors import LaunchError, LaunchTypeError, TilevmError, entry_point
from tilevm.kernel import Kernel, Launcher
from tilevm.language import Tensor
from tilevm.runtime import autotune_store, registry
from tilevm.runtime.arrays import PackedArray, is_tensor_like
from tilevm.runtime.autotune_bench import clone_args
from tilevm.runtime.autotune_progress import Progress

Grid = Any  # a grid as kernel[...] takes it, or a callable of the config's meta-parameters


def autotune(
    configs: Sequence[Config],
    key: Sequence[str],
    heuristic: Callable[..., Config] | None = None,
    prune: Callable[..., Sequence[Config]] | None = None,
) -> Callable[[Kernel], Autotuner]:
    """Decorate a ``@tv.kernel`` (write it above): launches pick the fastest of ``configs`` for
    each distinct value of the ``key`` arguments (tensors: their shapes).

    ``heuristic(**arguments) -> Config`` picks the config where nothing is timed (the
    interpreter, ``TILEVM_AUTOTUNE=0``; default: the first config); a heuristic that takes a
    ``device`` keyword (or ``**kwargs``) also gets the device the launch runs on (None where
    unknown), to fit the config to it (``tv.device_properties(device)``). ``prune(configs,
    **arguments)`` returns the configs worth timing for these arguments.
    """
    return lambda kernel: Autotuner(kernel, configs, key, heuristic, prune)


class Autotuner:
    """A kernel with a list of configs: ``tuned[grid](*args)`` launches the best one."""

    def __init__(
        self,
        kernel: Kernel,
        configs: Sequence[Config],
        key: Sequence[str],
        heuristic: Callable[..., Config] | None = None,
        prune: Callable[..., Sequence[Config]] | None = None,
    ) -> None:
        check_kernel(kernel)
        self.kernel = kernel
        self.__name__ = kernel.__name__
        self.__doc__ = kernel.__doc__
        self.configs = check_configs(kernel, configs)
        self.key = check_key(kernel, key, self.configs)
        self.heuristic = heuristic
        self._heuristic_takes_device = heuristic is not None and _takes_keyword(heuristic, "device")
        self.prune = prune
        self.timings: dict[Config, float] = {}  # the last tuning's, in seconds
        params = kernel.signature.parameters
        self._names = list(params)
        self._params = set(params)
        self._tuned = {name for c in self.configs for name in c.constexprs}
        # Which arguments are tensors, from the annotations where they say (launches ask).
        self._tensors = [n for n, p in params.items() if _tensor_annotation(p.annotation)]
        self._untyped = [
            n for n, p in params.items() if p.annotation is p.empty and n not in self._tuned
        ]
        self._defaults = {
            n: p.default
            for n, p in params.items()
            if p.default is not p.empty and n not in self._tuned
        }
        self._results: dict[tuple[str, str], Config] = {}  # (device, key text) -> best
        self._memos: dict[tuple, Config] = {}  # the same by self._memo(...), for launches
        self._launchers: dict[Any, Launcher] = {}  # by grid
        self._identities: dict[str, autotune_store.Identity] = {}  # device -> identity
        self._checked: set[Config] = set(self.configs)

    def __repr__(self) -> str:
        return f"<tilevm autotuned kernel {self.__name__}, {len(self.configs)} configs>"

    @entry_point
    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.kernel(*args, **kwargs)  # raises: a launch needs a grid

    def __getitem__(self, grid: Grid) -> TunedLauncher:
        return TunedLauncher(self, grid)

    # ----- inspection -------------------------------------------------------------------------
    @entry_point
    def best_config(
        self, *args: Any, grid: Grid = None, device: str | None = None, **kwargs: Any
    ) -> Config:
        """The config launches with these arguments use, tuning first (which needs ``grid``)
        if it is not known yet."""
        bound = self._bind(args, kwargs)
        if grid is not None:
            return self._choose(grid, args, kwargs, bound, device)
        known = self._known(bound, _device(device, list(bound.values())))
        if known is None:
            raise LaunchError(
                f"the best config of {self.__name__} for these arguments is not known yet",
                expected="a grid to tune with",
                found="grid=None",
                hint=f"{self.__name__}.best_config(*args, grid=...) or "
                f"{self.__name__}[grid].best_config(*args)",
                code="autotune-no-grid",
            )
        return known

    def cache_file(self, device: str = "cpu") -> Path:
        """The file that keeps this kernel's results for ``device``."""
        return self._identity(_device(device)).path()

    @entry_point
    def ir(self, *args: Any, **kwargs: Any) -> str:
        """The VM IR with the config a launch with these arguments would use if it is known,
        else the heuristic's."""
        where = _device(None, [*args, *kwargs.values()])
        config = self._static_config(args, kwargs, where)
        return self.kernel.ir(*args, warps=config.warps, **kwargs, **config.constexprs)

    @entry_point
    def compile(self, target: str, *args: Any, **kwargs: Any) -> Any:
        """``Kernel.compile`` with the config ``ir`` would use."""
        config = self._static_config(args, kwargs, _runs_here(target))
        return self.kernel.compile(target, *args, warps=config.warps, **kwargs, **config.constexprs)

    @entry_point
    def emit(self, target: str, *args: Any, **kwargs: Any) -> str:
        """The generated source with the config ``ir`` would use; needs no toolchain."""
        config = self._static_config(args, kwargs, _runs_here(target))
        return self.kernel.emit(target, *args, warps=config.warps, **kwargs, **config.constexprs)

    # ----- choosing ---------------------------------------------------------------------------
    def _choose(self, grid: Grid, args, kwargs, bound, device: str | None) -> Config:
        if device == "interp" or not tuning_enabled():
            return self._heuristic(bound, _device(device, list(bound.values())))
        memo = self._memo(bound, device)
        best = self._memos.get(memo)
        if best is None:  # first launch of this kind: find the device, the key, the results
            where = _device(device, list(bound.values()))
            key = self._key(bound, where)
            best = self._known(bound, where)
            if best is None:
                best = self._tune(grid, args, kwargs, bound, device, where, key)
                self._results[(where, key)] = best
            self._memos[memo] = best
        return best

    def _known(self, bound: dict[str, Any], where: str | None) -> Config | None:
        """The config for these arguments if it is known (in memory or on disk) or needs no
        tuning; None where tuning would be needed."""
        if where is None or where == "interp" or not tuning_enabled():
            return self._heuristic(bound, where)
        key = self._key(bound, where)
        best = self._results.get((where, key)) or self._from_disk(where, key)
        if best is not None:
            self._results[(where, key)] = best
        return best

    def _static_config(self, args: tuple, kwargs: dict, where: str | None) -> Config:
        bound = self._bind(args, kwargs)
        return self._known(bound, where) or self._heuristic(bound, where)

    def _heuristic(self, bound: dict[str, Any], device: str | None) -> Config:
        if self.heuristic is None:
            return self.configs[0]
        extra = {"device": device} if self._heuristic_takes_device else {}
        config = self.heuristic(**bound, **extra)
        if not isinstance(config, Config):
            raise LaunchTypeError(
                f"the heuristic of {self.__name__} returned a {type(config).__name__}",
                expected="a tv.Config",
                found=repr(config)[:80],
                code="autotune-heuristic",
            )
        self._check(config)
        return config

    def _candidates(self, bound: dict[str, Any]) -> list[Config]:
        if self.prune is None:
            return list(self.configs)
        kept = list(self.prune(list(self.configs), **bound))
        if not kept:
            raise LaunchError(
                f"the prune function of {self.__name__} dropped every config",
                expected="at least one config that fits these arguments",
                found=f"0 of {len(self.configs)}",
                code="autotune-prune",
            )
        for config in kept:
            if not isinstance(config, Config):
                raise LaunchTypeError(
                    f"the prune function of {self.__name__} returned a {type(config).__name__}",
                    expected="a list of tv.Config",
                    found=repr(config)[:80],
                    code="autotune-prune",
                )
            self._check(config)
        return kept

    # ----- tuning -----------------------------------------------------------------------------
    def _tune(self, grid, args, kwargs, bound, device, where: str, key: str) -> Config:
        candidates = self._candidates(bound)
        progress = Progress(self.__name__, self._label(bound), len(candidates))
        timings: dict[Config, float] = {}
        failures: list[tuple[Config, TilevmError]] = []
        for config in candidates:
            try:
                timings[config] = self._time(config, grid, args, kwargs, bound, device, where)
            except TilevmError as exc:  # does not compile or launch: too big, bad tile, ...
                failures.append((config, exc))
            progress.update(len(timings) + len(failures), timings)
        progress.finish(timings, failures)
        self.timings = timings
        if not timings:
            raise failures[0][1]
        best = min(timings, key=timings.__getitem__)
        entry = {
            "best": str(best),
            "timings": {str(c): t for c, t in timings.items()},
            "failed": {str(c): f"{e.code}: {e.message}" for c, e in failures},
        }
        autotune_store.store(self._identity(where), key, entry)
        return best

    def _time(self, config: Config, grid, args, kwargs, bound, device, where: str) -> float:
        launcher = self.kernel[self._grid(grid, bound, config)]
        copies, kw_copies = clone_args(args, kwargs)
        options = {**kw_copies, **config.constexprs}

        def run() -> None:
            launcher(*copies, device=device, warps=config.warps, **options)

        return registry.backend_for(where).time(run, where)

    def _launch(self, config: Config, grid: Grid, args, kwargs, bound, device) -> None:
        launcher = self._launcher(self._grid(grid, bound, config))
        launcher(*args, device=device, warps=config.warps, **kwargs, **config._kwargs)

    def _launcher(self, grid: Any) -> Launcher:
        """``kernel[grid]``, kept for grids seen before (checking a grid costs microseconds)."""
        try:
            return self._launchers[grid]
        except (KeyError, TypeError):  # new, or unhashable (a list)
            launcher = self.kernel[grid]
        if len(self._launchers) < 1024 and isinstance(grid, (tuple, int)):
            self._launchers[grid] = launcher
        return launcher

    @staticmethod
    def _grid(grid: Grid, bound: dict[str, Any], config: Config) -> Any:
        return grid({**bound, **config._meta}) if callable(grid) else grid

    # ----- arguments, keys, files -------------------------------------------------------------
    def _bind(self, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The caller's arguments by name, defaults filled in (but not for the names configs
        set); a clear error for arguments configs set, or unknown ones."""
        if "warps" in kwargs:
            raise self._clash(["warps"])
        if len(args) > len(self._names):
            raise self._arguments(args, kwargs, f"{len(args)} positional arguments")
        bound = dict(zip(self._names, args))
        for name, value in kwargs.items():
            if name not in self._params or name in bound:
                raise self._arguments(args, kwargs, f"'{name}' unknown or given twice")
            bound[name] = value
        clash = [name for name in bound if name in self._tuned]
        if clash:
            raise self._clash(clash)
        for name, value in self._defaults.items():
            bound.setdefault(name, value)
        if len(bound) != len(self._names) - len(self._tuned):
            missing = [n for n in self._names if n not in bound and n not in self._tuned]
            raise self._arguments(args, kwargs, f"missing {', '.join(missing)}")
        return bound

    def _arguments(self, args: tuple, kwargs: dict[str, Any], what: str) -> LaunchTypeError:
        return LaunchTypeError(
            f"wrong arguments for kernel {self.__name__}: {what}",
            expected=f"{self.__name__}{self.kernel.signature}",
            found=f"{len(args)} positional, keywords {sorted(kwargs)}",
            code="autotune-arguments",
        )

    def _clash(self, names: list[str]) -> LaunchError:
        return LaunchError(
            f"{', '.join(names)} of {self.__name__} {'is' if len(names) == 1 else 'are'} "
            "chosen by autotuning",
            expected=f"no {', '.join(names)} in the launch: each config sets them",
            found=f"{', '.join(names)} passed explicitly",
            hint=f"launch {self.__name__}.kernel[grid](...) to choose them yourself",
            code="autotune-explicit",
        )

    def _key(self, bound: dict[str, Any], where: str) -> str:
        """The key as text, for the results file: the key arguments (tensors: shapes), every
        tensor's dtype, the kind of device (not its index: equal GPUs share results)."""
        parts = [f"{name}={describe(bound[name])}" for name in self.key]
        parts += [f"{n}:{dtype_name(v)}" for n, v in bound.items() if is_tensor_like(v)]
        parts.append(re.sub(r":\d+$", "", where))  # the kind of device: not its index
        return ", ".join(parts)

    def _memo(self, bound: dict[str, Any], device: str | None) -> tuple:
        """The same facts as the key (with the device asked for and where each tensor lives
        in place of the device), cheaper to build: every launch builds it."""
        try:
            parts: list[Any] = [device]
            for name in self.key:
                value = bound[name]
                parts.append(tuple(value.shape) if self._is_tensor(name, value) else value)
            for name in self._tensors:
                value = bound[name]
                parts.append((value.dtype, _lives(value)))
            for name in self._untyped:
                value = bound[name]
                if is_tensor_like(value):
                    parts.append((name, value.dtype, _lives(value)))
            memo = tuple(parts)
            hash(memo)
        except (AttributeError, TypeError):  # a list, or no tensor where one belongs
            return (device, self._key(bound, "-"))
        return memo

    def _is_tensor(self, name: str, value: Any) -> bool:
        return name in self._tensors or (name in self._untyped and is_tensor_like(value))

    def _label(self, bound: dict[str, Any]) -> str:
        return ", ".join(f"{n}={describe(bound[n])}" for n in self.key)

    def _identity(self, where: str) -> autotune_store.Identity:
        identity = self._identities.get(where)
        if identity is None:
            identity = autotune_store.Identity(
                kernel=self.__name__,
                source=autotune_store.sha256("".join(self.kernel.source.lines)),
                configs=autotune_store.sha256("\n".join(map(str, self.configs))),
                fingerprint=registry.backend_for(where).fingerprint(where),
            )
            self._identities[where] = identity
        return identity

    def _from_disk(self, where: str, key: str) -> Config | None:
        entry = autotune_store.load(self._identity(where)).get(key)
        if entry is None:
            return None
        return next((c for c in self.configs if str(c) == entry.get("best")), None)

    def _check(self, config: Config) -> None:
        if config not in self._checked:
            check_configs(self.kernel, [config])
            self._checked.add(config)


class TunedLauncher:
    """``tuned[grid]``: launches with the best config for the arguments."""

    def __init__(self, tuner: Autotuner, grid: Grid) -> None:
        self.tuner = tuner
        self.grid = grid

    @entry_point
    def __call__(self, *args: Any, device: str | None = None, **kwargs: Any) -> None:
        tuner = self.tuner
        bound = tuner._bind(args, kwargs)
        config = tuner._choose(self.grid, args, kwargs, bound, device)
        tuner._launch(config, self.grid, args, kwargs, bound, device)

    @entry_point
    def best_config(self, *args: Any, device: str | None = None, **kwargs: Any) -> Config:
        """The config a launch with these arguments uses (tuning first if needed)."""
        return self.tuner.best_config(*args, grid=self.grid, device=device, **kwargs)


def _tensor_annotation(annotation: Any) -> bool:
    return annotation is Tensor or isinstance(annotation, Tensor)


def _lives(tensor: Any) -> Any:
    """Where a tensor lives, as far as a launch without ``device=`` cares."""
    data = tensor.data if isinstance(tensor, PackedArray) else tensor
    return getattr(data, "device", None)


def tuning_enabled() -> bool:
    """False when ``TILEVM_AUTOTUNE=0`` (read on every launch)."""
    value = os.environ.get("TILEVM_AUTOTUNE", "1").strip().lower()
    return value not in ("0", "false", "off", "no")


def _device(device: str | None, args: Sequence[Any] = ()) -> str:
    """The device a launch with these arguments runs on."""
    return registry.resolve(device, args)[1]


def _takes_keyword(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


def _runs_here(target: str) -> str | None:
    """The device whose tuned results a build for ``target`` uses: the target itself when it
    names a device this machine can run; None for an arch without its device here (nothing was
    tuned for it)."""
    try:
        return registry.backend_for(target).resolve(target)
    except TilevmError:
        return None


__all__ = ["Autotuner", "Config", "TunedLauncher", "autotune", "tuning_enabled"]
