"""What the gate asks of a loaded model, whatever runtime runs it.

A backend loads one checkpoint directory (Hugging Face layout: config.json,
*.safetensors, tokenizer files) and returns a `ModelHandle`. Only one model
is held in memory at a time, unless a measurement asks for two: callers
`close()` the base before loading the candidate.

Every handle scores and generates (the abstract methods). What only some
runtimes can do is declared in `capabilities`, and the methods behind it
exist on every handle: callers read a flag, never probe with hasattr, and a
handle that lacks a capability says so when asked for it anyway. Questions
every runtime can answer in part (memory, where it runs) have defaults here
that say "cannot tell" (None) or describe the host CPU.
"""

from __future__ import annotations

import platform
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from gate.core.tokenizer import Tokenizer
from gate.runtime import host


@dataclass(frozen=True)
class Generation:
    """One generate call: new token ids, their text, and its timing."""

    token_ids: tuple[int, ...]
    text: str
    prompt_tokens: int
    prefill_seconds: float  # prompt processing up to the first new token
    total_seconds: float  # the whole call, prefill plus decode

    @classmethod
    def decoded(cls, tokenizer: Tokenizer, new_tokens: Sequence[int], prompt_tokens: int, prefill_seconds: float,
                total_seconds: float) -> Generation:
        """A finished call, its text decoded by `tokenizer` without special tokens."""
        text = tokenizer.decode(list(new_tokens), skip_special_tokens=True)
        return cls(tuple(new_tokens), text, prompt_tokens, prefill_seconds, total_seconds)


@dataclass(frozen=True)
class Capabilities:
    """The optional scoring methods a handle implements (the others raise `NotImplementedError`)."""

    # tree_logprobs: prompts that share prefixes scored as one token tree, one forward pass.
    tree_logprobs: bool = False
    # shared_prefix_logprobs: groups of (prefix, continuations), each prefix computed once.
    shared_prefix_logprobs: bool = False


class ModelHandle(ABC):
    """A loaded causal LM: scoring, generation, and what the reports need to know about where it ran."""

    backend: str  # "torch", "mlx", "vllm" (or "fake" in tests)
    device: str  # e.g. "cpu", "cuda:0", "mps", "gpu"
    dtype: str  # e.g. "float32", "bfloat16"
    tokenizer: Tokenizer  # the checkpoint's Hugging Face tokenizer
    eos_ids: frozenset[int]  # every id that ends a generation
    capabilities: Capabilities = Capabilities()

    @abstractmethod
    def token_logprobs(self, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """For each sequence of n tokens, log p(token_t | tokens_<t) for t = 1..n-1 (float64, length n-1)."""

    @abstractmethod
    def last_token_logprobs(self, prompts: Sequence[Sequence[int]], token_ids: Sequence[int]) -> np.ndarray:
        """Log-probabilities (softmax over the whole vocabulary) of `token_ids` as the next token after each
        prompt; shape [len(prompts), len(token_ids)]."""

    @abstractmethod
    def generate(self, prompt: Sequence[int], max_new_tokens: int, temperature: float, seed: int) -> Generation:
        """Sample up to `max_new_tokens` new tokens (greedy when temperature is 0), stopping at end of sequence."""

    @abstractmethod
    def close(self) -> None:
        """Free the weights and any device memory."""

    # --- optional scoring: see `capabilities` ---------------------------------

    def tree_logprobs(self, prompts: Sequence[Sequence[int]], token_ids: Sequence[int], head: int = 0) -> np.ndarray:
        """`last_token_logprobs` of `prompts`, their shared prefixes computed once (one token tree); the first
        `head` tokens, the same in every prompt (a prompt template's opening), are computed once per runtime
        and reused by every later call that opens with them."""
        raise NotImplementedError(f"the {self.backend} runtime has no token-tree scoring (capabilities.tree_logprobs)")

    def tree_logprobs_each(self, trees: Iterable[tuple[Sequence[Sequence[int]], int]],
                           token_ids: Sequence[int]) -> Iterator[np.ndarray]:
        """`tree_logprobs(prompts, token_ids, head)` of each (prompts, head), yielded in the same order. A
        runtime that scores several trees faster at once than one by one (torch on a multi-core CPU) overrides
        it; each tree's result stays what `tree_logprobs` alone gives."""
        for prompts, head in trees:
            yield self.tree_logprobs(prompts, token_ids, head)

    def shared_prefix_logprobs(self, groups: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]],
                               token_ids: Sequence[int]) -> list[np.ndarray]:
        """`last_token_logprobs` of prefix + each continuation, per group, each prefix computed once."""
        raise NotImplementedError(
            f"the {self.backend} runtime has no shared-prefix scoring (capabilities.shared_prefix_logprobs)")

    # --- memory and hardware: defaults that say "cannot tell" or describe the host ---

    def peak_memory_bytes(self) -> int | None:
        """Peak memory of the runtime since load, where the runtime can tell."""
        return None

    def weight_bytes(self) -> int | None:
        """Bytes of the loaded weights, where the runtime can tell."""
        return None

    def free_memory_bytes(self) -> int | None:
        """Memory still free where the weights live (RAM unless the runtime knows better)."""
        return host.available_ram_bytes()

    def device_description(self) -> str:
        """The hardware in words, for reports: a latency figure names what it was timed on."""
        if self.device in ("mps", "gpu"):
            return f"{host.cpu_name()} GPU"
        return host.cpu_description()

    def runtime_info(self) -> dict[str, Any]:
        """Where and with what this handle runs: for reports, so a latency figure names its hardware."""
        return {
            "backend": self.backend,
            "backend_version": host.package_version(self.backend),
            "device": self.device,
            "device_description": self.device_description(),
            "dtype": self.dtype,
            "platform": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version(),
            **host.package_versions(),
            # MLX's Linux CPU wheel bundles a slow reference BLAS: its timings say
            # little about MLX on an Apple device (measurements.md §6).
            "mlx_linux_cpu": self.backend == "mlx" and platform.system() == "Linux" and self.device == "cpu",
        }
