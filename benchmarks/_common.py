"""What the benchmark scripts share: the description of the machine (and packages) a result was taken on.

Contract: :func:`describe_machine` returns the one line a result file prints after "Machine:"
(CPU model, nproc, optionally RAM, Python version, optionally the OS), in the forms the pages in
``benchmarks/results/`` show, and never raises; :func:`package_versions` names installed package
versions; :func:`pct` formats a fraction as a percentage with one decimal. Nothing here measures.

The scripts run as ``python benchmarks/X.py``: each puts the repository root on ``sys.path`` and
imports ``from benchmarks._common import ...``.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Iterable, Literal


def cpu_model() -> str:
    """The CPU's model name ("model name" in /proc/cpuinfo; else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def ram_gib() -> float | None:
    """Total memory in GiB ("MemTotal" in /proc/meminfo), or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return None


def describe_machine(
    *, ram: bool = False, implementation: bool = False, system: Literal["release", "name"] | None = "release"
) -> str:
    """``"Intel(R) Xeon(R) Processor, nproc 2, 24 GiB RAM, Python 3.11.7, Linux 6.18.44-fc-v669"``.

    ``ram``: include the total memory (left out where it cannot be read); ``implementation``:
    ``"Python 3.11.7 (CPython)"``; ``system``: ``"release"`` ends with ``"Linux 6.18.44-fc-v669"``,
    ``"name"`` with ``"Linux"``, None leaves the OS out.
    """
    parts = [cpu_model(), f"nproc {os.cpu_count()}"]
    gib = ram_gib() if ram else None
    if gib is not None:
        parts.append(f"{gib:.0f} GiB RAM")
    python = f"Python {platform.python_version()}"
    if implementation:
        python += f" ({platform.python_implementation()})"
    parts.append(python)
    if system == "release":
        parts.append(f"{platform.system()} {platform.release()}")
    elif system == "name":
        parts.append(platform.system())
    return ", ".join(parts)


def package_versions(names: Iterable[str], *, missing: str | None = None) -> str:
    """``"torch 2.13.0+cpu, transformers 5.19.0"``: the installed version of each package, in order.

    A package that is not installed is left out, or shown as ``"NAME MISSING"`` when ``missing`` is given.
    """
    out = []
    for name in names:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            if missing is not None:
                out.append(f"{name} {missing}")
    return ", ".join(out)


def pct(x: float) -> str:
    """A fraction as a percentage with one decimal: ``0.9724`` -> ``"97.2"``."""
    return f"{100 * x:.1f}"
