"""Choosing a runtime and loading a checkpoint with it.

`--backend auto` picks MLX on Apple Silicon (when installed) and torch
everywhere else. Runtimes are imported only when chosen, so a user with just
one of them installed never pays for, or trips over, the other. `vllm` is
only ever chosen by name: it runs in an environment of its own
(`vllm_backend`), configured by the `runtime` settings `gate check` passes.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping

from gate.core.errors import BackendUnavailableError, InputError
from gate.runtime.base import ModelHandle
from gate.runtime.common import normalize_dtype
from gate.runtime.host import install_hint, is_apple_silicon

BACKEND_NAMES = ("auto", "torch", "mlx", "vllm")

# What each runtime needs importable, checked before loading anything.
_RUNTIME_MODULES = {
    "torch": ("torch", "transformers"),
    "mlx": ("mlx.core", "mlx_lm", "transformers"),
}


def _missing_module(backend: str) -> str | None:
    for module in _RUNTIME_MODULES[backend]:
        try:
            importlib.import_module(module)
        except ImportError:
            return module
    return None


def require_runtime(backend: str, runtime: Mapping[str, Any] | None = None) -> None:
    """Raise BackendUnavailableError, naming the extra to install, if `backend` cannot be imported."""
    if backend == "vllm":
        from gate.runtime.vllm_backend import require_vllm, settings_from

        return require_vllm(settings_from(runtime))
    missing = _missing_module(backend)
    if missing is not None:
        raise BackendUnavailableError(
            f"the {backend} backend needs '{missing}', which is not installed: {install_hint(backend)}"
        )


def resolve_backend(name: str) -> str:
    """Map a --backend value to "torch", "mlx" or "vllm" (auto: MLX on Apple Silicon if installed, else torch)."""
    if name not in BACKEND_NAMES:
        raise InputError(f"unknown backend {name!r}; choose one of: {', '.join(BACKEND_NAMES)}")
    if name != "auto":
        return name
    if is_apple_silicon() and _missing_module("mlx") is None:
        return "mlx"
    return "torch"


def load_model(
    path: Path, backend: str = "auto", device: str | None = None, dtype: str | None = None,
    runtime: Mapping[str, Any] | None = None,
) -> ModelHandle:
    """Load a local checkpoint directory with the chosen runtime (`runtime`: vLLM's settings, see vllm_backend)."""
    resolved = resolve_backend(backend)
    dtype = normalize_dtype(dtype)
    if resolved == "vllm":
        from gate.runtime.vllm_backend import load_vllm_model, settings_from

        return load_vllm_model(path, device=device, dtype=dtype, settings=settings_from(runtime))
    require_runtime(resolved)
    if resolved == "torch":
        from gate.runtime.torch_backend import load_torch_model

        return load_torch_model(path, device=device, dtype=dtype)
    from gate.runtime.mlx_backend import load_mlx_model

    return load_mlx_model(path, device=device, dtype=dtype)


def resolve_runtime(backend: str, device: str | None, dtype: str | None,
                    runtime: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """(device, dtype) that `load_model` with these options will use: what cached results must be keyed by.

    Defaults depend on the machine (torch picks bf16 only on CPUs with native
    bf16), so a cache keyed on the options as given could pair a base measured
    in one dtype with a candidate measured in another.
    """
    resolved = resolve_backend(backend)
    if resolved == "vllm":
        from gate.runtime.vllm_backend import resolve_runtime as resolve_vllm, settings_from

        return resolve_vllm(device, normalize_dtype(dtype), settings_from(runtime))
    require_runtime(resolved)
    if resolved == "torch":
        from gate.runtime.torch_backend import resolve_runtime as resolve

        return resolve(device, dtype)
    from gate.runtime.mlx_backend import resolve_runtime as resolve

    return resolve(device, dtype)



def has_accelerator(backend: str) -> bool:
    """Whether `backend` (installed) runs on a GPU here rather than only on the CPU."""
    require_runtime(backend)
    if backend == "torch":
        from gate.runtime.torch_backend import default_device

        return default_device() != "cpu"
    from gate.runtime.mlx_backend import has_accelerator as mlx_has_accelerator

    return mlx_has_accelerator()
