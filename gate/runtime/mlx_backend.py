"""The mlx-lm runtime: the Apple GPU on a Mac, MLX's CPU backend on Linux.

MLX is imported inside the functions, so this module imports without it.
The tokenizer is the checkpoint's Hugging Face tokenizer loaded exactly as
the torch backend loads it: both backends see identical token ids.

RoPE: the loader lifts a transformers-5 `rope_parameters` to the top-level
keys mlx-lm reads (`gate.runtime.common.rope_config_fix`).
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gate.core.checkpoint_dir import check_checkpoint_dir
from gate.core.errors import BackendUnavailableError, CheckpointError, InputError, first_line
from gate.core.tokenizer import Tokenizer
from gate.runtime.base import Generation, ModelHandle
from gate.runtime.common import (
    as_token_arrays, eos_token_ids, generation_prompt, length_batches, load_tokenizer, normalize_dtype, rope_config_fix,
)
from gate.runtime.host import available_ram_bytes, install_hint

DEVICE_NAMES = ("gpu", "cpu")
DEFAULT_MAX_BATCH_TOKENS = 4096
_MAX_LOGITS_BYTES = 1 << 30

# mlx-lm model types whose `Model.__call__` is exactly "decoder, then the
# output projection" (tied embedding or lm_head). For these the next-token
# distribution is computed at the last position only; other architectures
# (softcapping, logit scales) go through the full forward.
_PLAIN_HEAD_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})


def _mx_device(mx: Any, device: str | None) -> Any:
    if device is None:
        return mx.gpu if mx.is_available(mx.gpu) else mx.cpu
    if device not in DEVICE_NAMES:
        raise InputError(f"unknown MLX device {device!r}; use gpu or cpu")
    if device == "gpu" and not mx.is_available(mx.gpu):
        raise BackendUnavailableError("device 'gpu' asked for, but this MLX build has no GPU backend here; use --device cpu")
    return mx.gpu if device == "gpu" else mx.cpu


def resolve_runtime(device: str | None, dtype: str | None) -> tuple[str, str]:
    """The device ("gpu" or "cpu") and dtype a load with these options will use, without loading anything."""
    import mlx.core as mx

    device_name = "gpu" if _mx_device(mx, device) == mx.gpu else "cpu"
    # bf16 on the Apple GPU, as mlx-lm runs models; float32 on the CPU (bf16 matmuls skip its BLAS there).
    return device_name, normalize_dtype(dtype) or ("bfloat16" if device_name == "gpu" else "float32")


def has_accelerator() -> bool:
    """Whether MLX runs on a GPU here (Metal on Apple silicon, or a CUDA build), not only on the CPU."""
    import mlx.core as mx

    return mx.default_device().type == mx.gpu


class MlxModel(ModelHandle):
    """A causal LM held by mlx-lm (no token-tree or shared-prefix scoring: the default capabilities)."""

    backend = "mlx"

    def __init__(
        self,
        model: Any,
        tokenizer: Tokenizer,
        device: str,
        dtype: str,
        eos_ids: frozenset[int],
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    ) -> None:
        import mlx.core as mx

        self._mx = mx
        self._model = model
        self.tokenizer = tokenizer
        self.device = device
        self._stream_device = mx.gpu if device == "gpu" else mx.cpu
        self.dtype = dtype
        self.eos_ids = eos_ids
        self.vocab_size = int(model.args.vocab_size)
        logits_cap = _MAX_LOGITS_BYTES // (4 * self.vocab_size)
        self.max_batch_tokens = max(1, min(max_batch_tokens, logits_cap))
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._plain_head = getattr(model, "model_type", None) in _PLAIN_HEAD_MODEL_TYPES and hasattr(model, "model")

    @property
    def model(self) -> Any:
        if self._model is None:
            raise RuntimeError("this model handle was closed")
        return self._model

    def _right_padded(self, arrays: list[np.ndarray]) -> Any:
        width = max(len(array) for array in arrays)
        batch = np.full((len(arrays), width), self._pad_id, dtype=np.int32)
        for row, array in enumerate(arrays):
            batch[row, : len(array)] = array
        return self._mx.array(batch)

    def _output_head(self, hidden: Any) -> Any:
        model = self.model
        if model.args.tie_word_embeddings:
            return model.model.embed_tokens.as_linear(hidden)
        return model.lm_head(hidden)

    def token_logprobs(self, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        mx = self._mx
        arrays = as_token_arrays(sequences, self.vocab_size, "sequence")
        lengths = [len(array) for array in arrays]
        results: list[np.ndarray] = [np.empty(0, dtype=np.float64)] * len(arrays)
        with mx.stream(self._stream_device):
            for batch in length_batches(lengths, self.max_batch_tokens):
                if lengths[batch[0]] < 2:  # longest first: this batch and the rest have nothing to predict
                    break
                # Right padding needs no mask: causal attention keeps later pads out of earlier positions.
                inputs = self._right_padded([arrays[i] for i in batch])
                logits = self.model(inputs)[:, :-1, :].astype(mx.float32)
                targets = inputs[:, 1:]
                picked = mx.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
                logprobs = picked - mx.logsumexp(logits, axis=-1)
                values = np.array(logprobs, dtype=np.float64)
                for row, index in enumerate(batch):
                    results[index] = values[row, : lengths[index] - 1].copy()
        return results

    def _last_logits(self, inputs: Any, last_index: Any) -> Any:
        mx = self._mx
        rows = mx.arange(inputs.shape[0])
        if self._plain_head:
            hidden = self.model.model(inputs)
            return self._output_head(hidden[rows, last_index])
        return self.model(inputs)[rows, last_index]

    def last_token_logprobs(self, prompts: Sequence[Sequence[int]], token_ids: Sequence[int]) -> np.ndarray:
        mx = self._mx
        arrays = as_token_arrays(prompts, self.vocab_size, "prompt")
        (wanted,) = as_token_arrays([token_ids], self.vocab_size, "token_ids")
        wanted_ids = mx.array(wanted.astype(np.int32))
        lengths = [len(array) for array in arrays]
        result = np.empty((len(arrays), len(wanted)), dtype=np.float64)
        with mx.stream(self._stream_device):
            for batch in length_batches(lengths, self.max_batch_tokens):
                inputs = self._right_padded([arrays[i] for i in batch])
                last_index = mx.array([lengths[i] - 1 for i in batch])
                logits = self._last_logits(inputs, last_index).astype(mx.float32)
                logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
                result[batch] = np.array(logprobs[:, wanted_ids], dtype=np.float64)
        return result

    def _next_token(self, logits: Any, temperature: float, key: Any) -> int:
        mx = self._mx
        if temperature == 0:
            token = mx.argmax(logits, axis=-1)
        else:
            token = mx.random.categorical(logits.astype(mx.float32) * (1.0 / temperature), key=key)
        return int(token.item())

    def generate(self, prompt: Sequence[int], max_new_tokens: int, temperature: float, seed: int) -> Generation:
        from mlx_lm.models.cache import make_prompt_cache

        mx = self._mx
        prompt_ids = generation_prompt(prompt, self.vocab_size, max_new_tokens, temperature)
        # One key per new token, all derived from the seed: reproducible and
        # independent of MLX's global random state.
        keys = mx.random.split(mx.random.key(seed), max_new_tokens)
        new_tokens: list[int] = []
        with mx.stream(self._stream_device):
            cache = make_prompt_cache(self.model)
            start = time.perf_counter()
            logits = self.model(mx.array(prompt_ids.astype(np.int32))[None], cache=cache)[0, -1]
            token = self._next_token(logits, temperature, keys[0])  # .item() waits for the device
            prefill_seconds = time.perf_counter() - start
            while True:
                new_tokens.append(token)
                if token in self.eos_ids or len(new_tokens) == max_new_tokens:
                    break
                logits = self.model(mx.array([[token]]), cache=cache)[0, -1]
                token = self._next_token(logits, temperature, keys[len(new_tokens)])
            total_seconds = time.perf_counter() - start
        return Generation.decoded(self.tokenizer, new_tokens, len(prompt_ids), prefill_seconds, total_seconds)

    def peak_memory_bytes(self) -> int | None:
        """MLX's own peak allocation since load (mx.get_peak_memory), on the GPU or the CPU backend."""
        return int(self._mx.get_peak_memory())

    def weight_bytes(self) -> int | None:
        from mlx.utils import tree_flatten

        return sum(int(v.nbytes) for _, v in tree_flatten(self.model.parameters()))

    def free_memory_bytes(self) -> int | None:
        """RAM; on the GPU also what Metal's recommended working set leaves (unified memory)."""
        free = available_ram_bytes()
        if self.device == "gpu":
            limit = self._mx.device_info().get("max_recommended_working_set_size")
            if limit:
                free = min(free, int(limit) - int(self._mx.get_active_memory()))
        return free

    def close(self) -> None:
        self._model = None
        gc.collect()
        self._mx.clear_cache()


def load_mlx_model(
    path: Path,
    device: str | None = None,
    dtype: str | None = None,
    *,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
) -> MlxModel:
    """Load a local Hugging Face checkpoint directory with mlx-lm, with the RoPE base read correctly."""
    try:
        import mlx.core as mx
        from mlx_lm.utils import load_model
    except ImportError as error:
        raise BackendUnavailableError(f"the mlx backend is not installed: {install_hint('mlx')}") from error

    device_name, dtype = resolve_runtime(device, dtype)
    mx_device = mx.gpu if device_name == "gpu" else mx.cpu
    # Checked first: mlx-lm takes a missing local path for a hub repository name and downloads it.
    checked = check_checkpoint_dir(Path(path))
    path, config = checked.path, checked.config
    tokenizer = load_tokenizer(path)
    mx.reset_peak_memory()
    with mx.stream(mx_device):
        try:
            model, _ = load_model(path, model_config=rope_config_fix(config), trust_remote_code=False)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
            raise CheckpointError(f"cannot load the model in {path} with mlx-lm: {first_line(error)}") from error
        model.set_dtype(getattr(mx, dtype))
        mx.eval(model.parameters())
    return MlxModel(model, tokenizer, device_name, dtype, eos_token_ids(path, tokenizer), max_batch_tokens)
