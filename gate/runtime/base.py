"""What the gate asks of a loaded model, whatever runtime runs it.

A backend loads one checkpoint directory (Hugging Face layout: config.json,
*.safetensors, tokenizer files) and returns a `ModelHandle`. Only one model
is held in memory at a time: callers `close()` the base before loading the
candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class Generation:
    """One generate call: new token ids, their text, and its timing."""

    token_ids: tuple[int, ...]
    text: str
    prompt_tokens: int
    prefill_seconds: float  # prompt processing up to the first new token
    total_seconds: float  # the whole call, prefill plus decode


class ModelHandle(Protocol):
    backend: str  # "torch", "mlx" or "vllm"
    device: str  # e.g. "cpu", "cuda:0", "mps", "gpu"
    dtype: str  # e.g. "float32", "bfloat16"
    tokenizer: Any  # a Hugging Face tokenizer (encode, decode, apply_chat_template)

    def token_logprobs(self, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """For each sequence of n tokens, log p(token_t | tokens_<t) for t = 1..n-1 (float64, length n-1)."""
        ...

    def last_token_logprobs(self, prompts: Sequence[Sequence[int]], token_ids: Sequence[int]) -> np.ndarray:
        """Log-probabilities (softmax over the whole vocabulary) of `token_ids` as the next token after each prompt; shape [len(prompts), len(token_ids)]."""
        ...

    def generate(self, prompt: Sequence[int], max_new_tokens: int, temperature: float, seed: int) -> Generation:
        """Sample up to `max_new_tokens` new tokens (greedy when temperature is 0), stopping at end of sequence."""
        ...

    def peak_memory_bytes(self) -> int | None:
        """Peak memory of the runtime since load, where the runtime can tell."""
        ...

    def close(self) -> None:
        """Free the weights and any device memory."""
        ...
