"""Finding ``compute-sanitizer`` and building its command line for each tool.

Where it may be: ``--sanitizer`` / ``$COMPUTE_SANITIZER``, the PATH, a CUDA toolkit under
``$CUDA_HOME`` or ``/usr/local/cuda*``, or the pip package ``nvidia-cuda-sanitizer-api``
(``nvidia/cu13/bin/compute-sanitizer`` in site-packages). Options are checked against the
binary's ``--help``: an older release lacking one runs without it, and the run says which.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

TOOLS = ("memcheck", "racecheck", "synccheck", "initcheck")
PIP_PACKAGE = "nvidia-cuda-sanitizer-api"
ERROR_EXITCODE = 86  # what compute-sanitizer returns when it reported errors (and the app passed)
PRINT_LIMIT = 1000  # records printed per process; the summary line still counts every one
PADDING = 65536  # bytes of invalid memory after every allocation: an overrun of up to a whole
# tile row lands there instead of in a neighbouring allocation, where memcheck could not see it
BASE_PORT = 49152


def install_hint(cuda_version: str | None = None) -> str:
    pin = f"=={cuda_version}.*" if cuda_version else ""
    return (
        f"compute-sanitizer ships with the CUDA toolkit, or as the pip package {PIP_PACKAGE} "
        f"(python3 -m pip install '{PIP_PACKAGE}{pin}'; on a machine without a registry, "
        f"download the wheel elsewhere with 'pip download --no-deps {PIP_PACKAGE}{pin}' and "
        f"install it with 'pip install --no-deps <wheel>'); or pass --sanitizer PATH, or run "
        f"this script with --install"
    )


def candidates(env: dict[str, str] | None = None) -> list[Path]:
    """Where compute-sanitizer may be, most specific first (existing or not)."""
    env = os.environ if env is None else env
    found: list[Path] = []
    if env.get("COMPUTE_SANITIZER"):
        found.append(Path(env["COMPUTE_SANITIZER"]))
    on_path = shutil.which("compute-sanitizer", path=env.get("PATH"))
    if on_path:
        found.append(Path(on_path))
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if env.get(var):
            found += _in_toolkit(Path(env[var]))
    for root in toolkit_roots():
        found += _in_toolkit(Path(root))
    for site in _nvidia_package_dirs():
        found += sorted(Path(site).glob("*/bin/compute-sanitizer"))
        found += sorted(Path(site).glob("*/compute-sanitizer/compute-sanitizer"))
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def toolkit_roots() -> list[str]:
    """/usr/local/cuda (the default toolkit's link) first, then versioned ones, newest first."""
    return ["/usr/local/cuda", *sorted(glob.glob("/usr/local/cuda?*"), key=_version_key,
                                       reverse=True)]  # fmt: skip


def _in_toolkit(root: Path) -> list[Path]:
    return [root / "bin" / "compute-sanitizer", root / "compute-sanitizer" / "compute-sanitizer"]


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", Path(path).name)) or (0,)


def _nvidia_package_dirs() -> list[str]:
    """The folders of the ``nvidia`` namespace package (where NVIDIA's pip wheels install)."""
    import importlib
    import importlib.util

    importlib.invalidate_caches()  # a package pip installed since start-up is seen too
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return []
    return list(spec.submodule_search_locations or []) if spec else []


def find(explicit: str | None = None, env: dict[str, str] | None = None) -> Path | None:
    """The first usable compute-sanitizer, or None."""
    for path in [Path(explicit)] if explicit else candidates(env):
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


@dataclass
class Sanitizer:
    """A compute-sanitizer binary, its version line and the options its ``--help`` lists."""

    path: Path
    version: str = ""
    options: set[str] = field(default_factory=set)
    dropped: set[str] = field(default_factory=set)  # options wanted but not known to it

    @classmethod
    def probe(cls, path: Path) -> Sanitizer:
        help_text = _output([str(path), "--help"])
        version = next((ln.strip() for ln in help_text.splitlines() if "Version" in ln), "")
        return cls(path, version, option_names(help_text))

    def command(self, tool: str, slot: int = 0, workers: int = 0) -> list[str]:
        """The command line that runs an application under ``tool``; ``slot`` gives each of
        several concurrent instances its own connection ports."""
        wanted: list[tuple[str, str | None]] = [
            ("--tool", tool),
            # API errors are the host's business (cuda-python and torch probe for entry points
            # and features, and the driver checks every CUresult itself); device errors stay.
            ("--report-api-errors", "no"),
            ("--error-exitcode", str(ERROR_EXITCODE)),
            ("--check-exit-code", "no"),  # the driver's exit status is read separately
            ("--print-limit", str(PRINT_LIMIT)),
            ("--show-backtrace", "device"),  # host frames are the Python interpreter's
            ("--launch-timeout", "120"),  # the interpreter and torch take a while to start
        ]
        if slot:
            wanted.append(("--port", str(BASE_PORT + 100 * slot)))
        if tool in ("memcheck", "synccheck"):
            # stop only the faulting kernel: the next cases still run in the same process
            wanted.append(("--destroy-on-device-error", "kernel"))
        if tool == "memcheck":
            wanted.append(("--padding", str(PADDING)))
        if tool == "racecheck":
            wanted.append(("--racecheck-report", "analysis"))
            if workers:
                wanted.append(("--racecheck-num-workers", str(workers)))
        if tool == "initcheck":
            wanted.append(("--initcheck-address-space", "all"))  # shared memory too
            wanted.append(("--check-api-memory-access", "yes"))  # reading back unwritten bytes
        cmd = [str(self.path)]
        for option, value in wanted:
            if self.options and option[2:] not in self.options:
                self.dropped.add(option)
                continue
            cmd += [option] if value is None else [option, value]
        return cmd

    def has(self, option: str) -> bool:
        return not self.options or option.lstrip("-") in self.options


def option_names(help_text: str) -> set[str]:
    """The long option names a ``--help`` text lists (``-q [ --quiet ]`` gives ``quiet``)."""
    return set(re.findall(r"^\s*(?:-\w \[ )?--([a-z0-9][a-z0-9-]*)", help_text, re.MULTILINE))


def _output(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, errors="replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"({cmd[0]} could not run: {exc})"
    return done.stdout + done.stderr


def cuda_driver_version() -> str | None:
    """The CUDA version the driver supports, as ``"13.0"``; None without a driver."""
    try:
        from cuda.bindings import driver

        err, value = driver.cuDriverGetVersion()
        if int(err) != 0 or not value:
            return None
        return f"{int(value) // 1000}.{int(value) % 1000 // 10}"
    except Exception:  # no cuda-python, no libcuda: there is nothing to match
        return None


def pip_install(requirements: list[str], wheels: Path | None, extra: list[str] = ()) -> bool:
    """``pip install`` into this interpreter: from ``wheels`` (a folder) without an index when
    it exists, else from the registry. True when pip succeeded."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if wheels is not None and wheels.is_dir():
        cmd += ["--no-index", "--find-links", str(wheels)]
    else:  # a machine without a registry should say so quickly, not retry for minutes
        cmd += ["--retries", "1", "--timeout", "15"]
    cmd += [*extra, *requirements]
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd).returncode == 0
