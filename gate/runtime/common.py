"""What both runtimes share: dtype names, token-id checks, batch plans, the tokenizer, eos ids, the RoPE fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gate.core.checkpoint_dir import read_json_object
from gate.core.errors import CheckpointError, InputError, UnsafeCheckpointError, first_line
from gate.core.tokenizer import Tokenizer

DTYPE_NAMES = ("float32", "bfloat16", "float16")
_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}


def normalize_dtype(dtype: str | None) -> str | None:
    """Canonical dtype name ("float32", "bfloat16", "float16"), or None for the backend's default."""
    if dtype is None:
        return None
    canonical = _DTYPE_ALIASES.get(dtype.lower(), dtype.lower())
    if canonical not in DTYPE_NAMES:
        raise InputError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPE_NAMES)}")
    return canonical



def as_token_arrays(sequences: Sequence[Sequence[int]], vocab_size: int, what: str) -> list[np.ndarray]:
    """Token sequences as int arrays, refusing empty ones and ids the model has no embedding for."""
    arrays = [np.asarray(sequence, dtype=np.int64).reshape(-1) for sequence in sequences]
    for index, array in enumerate(arrays):
        if array.size == 0:
            raise InputError(f"{what} {index} is empty")
        if array.min() < 0 or array.max() >= vocab_size:
            raise InputError(f"{what} {index} has a token id outside the vocabulary (0..{vocab_size - 1})")
    return arrays


def generation_prompt(prompt: Sequence[int], vocab_size: int, max_new_tokens: int, temperature: float) -> np.ndarray:
    """A generate call's prompt as an int array, after refusing arguments no runtime can honour."""
    (prompt_ids,) = as_token_arrays([prompt], vocab_size, "prompt")
    if max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be at least 1, not {max_new_tokens}")
    if not temperature >= 0:
        raise InputError(f"temperature must be 0 (greedy) or positive, not {temperature}")
    return prompt_ids


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



def eos_token_ids(path: Path, tokenizer: Tokenizer) -> frozenset[int]:
    """Every id that ends a generation: the tokenizer's eos plus those in config.json and generation_config.json."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    for name in ("config.json", "generation_config.json"):
        file = Path(path) / name
        if not file.is_file():
            continue
        value = read_json_object(file).get("eos_token_id")
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):  # a config is input: ids that are not integers are ignored
            ids.update(v for v in value if isinstance(v, int) and not isinstance(v, bool))
    return frozenset(ids)


# Tokenizers loaded in this process, by directory and the state of its files: a check loads each model up to
# six times (fresh loads for every latency round, then perplexity and bias), and a tokenizer takes 0.4 s to load.
# Nothing in gate changes a tokenizer once loaded. A few are kept (a base and its candidate; a sweep moves on).
_TOKENIZERS: dict[Path, tuple[tuple, Tokenizer]] = {}
_TOKENIZERS_KEPT = 4
_TOKENIZER_SUFFIXES = (".json", ".jinja", ".model", ".txt", ".tiktoken")


def load_tokenizer(path: Path) -> Tokenizer:
    """The checkpoint's own Hugging Face tokenizer, from local files only and never with remote code."""
    key = Path(path).resolve()
    state = _files_state(key)
    held = _TOKENIZERS.pop(key, None)
    tokenizer = held[1] if held is not None and held[0] == state else _load_tokenizer(Path(path))
    if state:
        _TOKENIZERS[key] = (state, tokenizer)  # the most recently used last
        while len(_TOKENIZERS) > _TOKENIZERS_KEPT:
            del _TOKENIZERS[next(iter(_TOKENIZERS))]
    return tokenizer


def _files_state(path: Path) -> tuple:
    """Name, size and modification time of each file a tokenizer may be read from; () when unreadable."""
    try:
        files = sorted(p for p in path.iterdir() if p.suffix in _TOKENIZER_SUFFIXES and p.is_file())
        return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    except OSError:
        return ()


def _load_tokenizer(path: Path) -> Tokenizer:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as error:
        raise CheckpointError(f"cannot load the tokenizer in {path}: {first_line(error)}") from None
    _check_chat_template(path, tokenizer)
    return tokenizer


def _check_chat_template(path: Path, tokenizer: Tokenizer) -> None:
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



def rope_config_fix(config: dict[str, Any]) -> dict[str, Any]:
    """Top-level RoPE keys that mlx-lm needs but a transformers-5 config.json keeps under `rope_parameters`.

    transformers 5 writes the RoPE base only under `rope_parameters`, and
    mlx-lm 0.32's Llama reads a top-level `rope_theta`, silently falling back
    to 10,000 (perplexity 19.9 instead of 18.9 on SmolLM2, measurements.md §6).
    The MLX loader passes these keys as overrides; the demo builder writes
    them into the config it saves.
    """
    parameters = config.get("rope_parameters")
    if not isinstance(parameters, dict):
        return {}
    fix: dict[str, Any] = {}
    if "rope_theta" not in config and "rope_theta" in parameters:
        fix["rope_theta"] = parameters["rope_theta"]
    rope_type = parameters.get("rope_type", parameters.get("type", "default"))
    if config.get("rope_scaling") is None and rope_type != "default":
        fix["rope_scaling"] = {key: value for key, value in parameters.items() if key != "rope_theta"}
    return fix
