"""Choosing a runtime, loading a checkpoint with it, and describing where it ran.

`--backend auto` picks MLX on Apple Silicon (when installed) and torch
everywhere else. Runtimes are imported only when chosen, so a user with just
one of them installed never pays for, or trips over, the other. `vllm` is
only ever chosen by name: it runs in an environment of its own
(`vllm_backend`), configured by the `runtime` settings the CLI passes.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gate import DISTRIBUTION
from gate.runtime.base import ModelHandle
from gate.core.errors import BackendUnavailableError, CheckpointError, InputError, UnsafeCheckpointError

BACKEND_NAMES = ("auto", "torch", "mlx", "vllm")
DTYPE_NAMES = ("float32", "bfloat16", "float16")
_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}

# What each runtime needs importable, checked before loading anything.
_RUNTIME_MODULES = {
    "torch": ("torch", "transformers"),
    "mlx": ("mlx.core", "mlx_lm", "transformers"),
}


def is_apple_silicon() -> bool:
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def install_hint(backend: str) -> str:
    """The pip command that installs `backend`'s extra on this platform."""
    if backend == "vllm":
        from gate.runtime.vllm_backend import INSTALL_HINT

        return INSTALL_HINT
    if backend == "mlx" and not is_apple_silicon():
        return f"pip install '{DISTRIBUTION}[mlx-cpu]'"
    return f"pip install '{DISTRIBUTION}[{backend}]'"


def _missing_module(backend: str) -> str | None:
    for module in _RUNTIME_MODULES[backend]:
        try:
            importlib.import_module(module)
        except ImportError:
            return module
    return None


def require_runtime(backend: str, runtime: dict[str, Any] | None = None) -> None:
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


def normalize_dtype(dtype: str | None) -> str | None:
    """Canonical dtype name ("float32", "bfloat16", "float16"), or None for the backend's default."""
    if dtype is None:
        return None
    canonical = _DTYPE_ALIASES.get(dtype.lower(), dtype.lower())
    if canonical not in DTYPE_NAMES:
        raise InputError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPE_NAMES)}")
    return canonical


def check_checkpoint_dir(path: Path) -> Path:
    """Refuse, with one line, a directory that no backend could load safely."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_dir():
        raise CheckpointError(f"checkpoint must be a directory (Hugging Face layout), not a file: {path}")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"no config.json in {path}")
    from gate.inputs.checkpoint import inside_checkpoint

    read_json(inside_checkpoint(path, path / "config.json"))
    if not any(path.glob("*.safetensors")):
        if any(path.glob("*.bin")) or any(path.glob("*.pt")) or any(path.glob("*.pth")):
            raise UnsafeCheckpointError(
                f"{path} holds only pickle weights (.bin/.pt), which can run arbitrary code when loaded; "
                "convert them to safetensors first"
            )
        raise CheckpointError(f"no *.safetensors weights in {path}")
    return path


def load_model(
    path: Path, backend: str = "auto", device: str | None = None, dtype: str | None = None,
    runtime: dict[str, Any] | None = None,
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
                    runtime: dict[str, Any] | None = None) -> tuple[str, str]:
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


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
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


def _device_description(handle: ModelHandle) -> str:
    if handle.backend == "torch" and handle.device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(handle.device))
    if handle.device in ("mps", "gpu"):
        return f"{_cpu_name()} GPU"
    return f"{_cpu_name()} ({os.cpu_count()} logical CPUs)"


def runtime_info(handle: ModelHandle) -> dict[str, Any]:
    """Where and with what a handle runs: for reports, so a figure names its runtime and hardware."""
    backend_package = "torch" if handle.backend == "torch" else "mlx"
    info = {
        "backend": handle.backend,
        "backend_version": _package_version(backend_package),
        "device": handle.device,
        "device_description": _device_description(handle),
        "dtype": handle.dtype,
        "platform": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "torch_version": _package_version("torch"),
        "transformers_version": _package_version("transformers"),
        "mlx_version": _package_version("mlx"),
        "mlx_lm_version": _package_version("mlx-lm"),
        # MLX's Linux CPU wheel bundles a slow reference BLAS: its timings say
        # little about MLX on an Apple device (measurements.md §6).
        "mlx_linux_cpu": handle.backend == "mlx" and platform.system() == "Linux" and handle.device == "cpu",
    }
    # A runtime in another process (vLLM) reports its own versions and hardware.
    details = getattr(handle, "runtime_details", None)
    return {**info, **details()} if details is not None else info


# Shared by both backends: input checks and batch plans.


def as_token_arrays(sequences: Sequence[Sequence[int]], vocab_size: int, what: str) -> list[np.ndarray]:
    """Token sequences as int arrays, refusing empty ones and ids the model has no embedding for."""
    arrays = [np.asarray(sequence, dtype=np.int64).reshape(-1) for sequence in sequences]
    for index, array in enumerate(arrays):
        if array.size == 0:
            raise InputError(f"{what} {index} is empty")
        if array.min() < 0 or array.max() >= vocab_size:
            raise InputError(f"{what} {index} has a token id outside the vocabulary (0..{vocab_size - 1})")
    return arrays


def length_batches(lengths: Sequence[int], max_batch_tokens: int) -> list[list[int]]:
    """Indices grouped longest first so that each padded batch holds at most `max_batch_tokens` tokens.

    Sorting by length keeps padding, which is computed and thrown away, small.
    A sequence longer than the budget gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for index in order:
        # Longest first, so the batch's first member sets its padded width.
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= max_batch_tokens:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


def read_json(file: Path) -> dict[str, Any]:
    """A checkpoint's JSON file as a dict, or a one-line CheckpointError (bounded depth, no echoed bytes)."""
    from gate.core.safejson import load_json

    try:
        raw = Path(file).read_bytes()
    except OSError as error:
        raise CheckpointError(f"cannot read {file}: {error.strerror or first_line(error)}") from None
    value = load_json(raw, str(file), CheckpointError)
    if not isinstance(value, dict):
        raise CheckpointError(f"{file} does not hold a JSON object")
    return value


def eos_token_ids(path: Path, tokenizer: Any) -> frozenset[int]:
    """Every id that ends a generation: the tokenizer's eos plus those in config.json and generation_config.json."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    for name in ("config.json", "generation_config.json"):
        file = Path(path) / name
        if not file.is_file():
            continue
        value = read_json(file).get("eos_token_id")
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):  # a config is input: ids that are not integers are ignored
            ids.update(v for v in value if isinstance(v, int) and not isinstance(v, bool))
    return frozenset(ids)


def load_tokenizer(path: Path) -> Any:
    """The checkpoint's own Hugging Face tokenizer, from local files only and never with remote code."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as error:
        raise CheckpointError(f"cannot load the tokenizer in {path}: {first_line(error)}") from None
    _check_chat_template(path, tokenizer)
    return tokenizer


def _check_chat_template(path: Path, tokenizer: Any) -> None:
    """Refuse a chat template that jinja's sandbox stops (it reaches for Python internals) before any model runs.

    Other template errors (no system role, say) are the prompt code's to handle.
    """
    if not getattr(tokenizer, "chat_template", None):
        return
    from jinja2.exceptions import SecurityError

    for messages in ([{"role": "user", "content": "Answer:"}],
                     [{"role": "system", "content": "Answer."}, {"role": "user", "content": "Answer:"}]):
        try:
            tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except SecurityError:
            raise UnsafeCheckpointError(
                f"the chat template in {path} was refused by jinja's sandbox (it reaches for Python internals); "
                "gate does not run it"
            ) from None
        except Exception:  # noqa: BLE001 - "system role not supported" and the like: not a safety matter
            continue


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
