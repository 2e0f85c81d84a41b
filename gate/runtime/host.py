"""The machine the gate runs on: CPU name, package versions and how to install a runtime, free RAM, threads.

Reports name their hardware and software so that a figure (a latency above
all) can be read against where it was measured.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from gate import DISTRIBUTION
from gate.core.errors import InputError


def is_apple_silicon() -> bool:
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def install_hint(backend: str) -> str:
    """The pip command that installs `backend`'s extra on this platform."""
    if backend == "mlx" and not is_apple_silicon():
        return f"pip install '{DISTRIBUTION}[mlx-cpu]'"
    return f"pip install '{DISTRIBUTION}[{backend}]'"


def set_cpu_threads(threads: int) -> None:
    """Intra-op CPU threads for torch, process-wide. On a CPU shared with other busy processes
    torch's workers wait on each other and 1 thread can be several times faster than all cores."""
    if threads < 1:
        raise InputError(f"--threads must be at least 1, got {threads}")
    try:
        import torch
    except ImportError:
        return  # MLX sizes its own CPU work; nothing to set
    torch.set_num_threads(threads)


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str | None]:
    """The versions of every runtime package a report names, installed or not (None)."""
    return {
        "torch_version": package_version("torch"),
        "transformers_version": package_version("transformers"),
        "mlx_version": package_version("mlx"),
        "mlx_lm_version": package_version("mlx-lm"),
    }


def cpu_name() -> str:
    if platform.system() == "Darwin":
        with contextlib.suppress(OSError):
            result = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
            )
            if result.returncode == 0 and result.stdout.strip():
                return result.stdout.strip()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_description() -> str:
    return f"{cpu_name()} ({os.cpu_count()} logical CPUs)"


def available_ram_bytes() -> int:
    """RAM the OS can give without swapping (unified memory on Apple silicon)."""
    import psutil

    return int(psutil.virtual_memory().available)
