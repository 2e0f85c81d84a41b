"""A deterministic runtime without weights, for tests (as lm-eval's `models/dummy.py`).

The next-token distribution after a prefix is a pseudo-random function of
the prefix's tokens alone, so every scoring method agrees with every other
(a token tree, a shared prefix and prompts one by one give the same
numbers) and a run is reproducible. Generation is greedy or sampled from the
same distribution, and timed with a fake clock (a fixed cost per prompt
token, and per new token after the first), unless a script of `Generation`s is given: then
each call returns the next one, for outputs no real model produces on
demand (an empty generation, a NaN time). The capabilities are whatever the
test declares, so both sides of a capability check can be exercised.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from gate.core.tokenizer import Tokenizer
from gate.runtime.base import Capabilities, Generation, ModelHandle
from gate.runtime.common import as_token_arrays, generation_prompt

ALL_CAPABILITIES = Capabilities(tree_logprobs=True, shared_prefix_logprobs=True)


class FakeModel(ModelHandle):
    backend = "fake"

    def __init__(self, vocab_size: int = 64, *, tokenizer: Tokenizer | None = None, eos_ids: frozenset[int] = frozenset({0}),
                 capabilities: Capabilities = Capabilities(), script: Sequence[Generation] = (),
                 seconds_per_token: float = 0.001, weight_bytes: int | None = None, seed: int = 0) -> None:
        self.vocab_size = vocab_size
        self.tokenizer = tokenizer
        self.eos_ids = frozenset(eos_ids)
        self.capabilities = capabilities
        self.device, self.dtype = "cpu", "float32"
        self._script = list(script)
        self._seconds_per_token = seconds_per_token
        self._weight_bytes = weight_bytes
        self._seed = seed
        self.calls = 0  # generate calls, scripted or not
        self.closed = False

    def _next_logprobs(self, prefix: Sequence[int]) -> np.ndarray:
        """log-softmax over the vocabulary after `prefix`: seeded by a digest of the seed and the tokens."""
        digest = hashlib.sha256(np.asarray([self._seed, *prefix], dtype=np.int64).tobytes()).digest()
        logits = np.random.default_rng(int.from_bytes(digest[:8], "little")).normal(0.0, 2.0, self.vocab_size)
        return logits - np.logaddexp.reduce(logits)

    def token_logprobs(self, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        arrays = as_token_arrays(sequences, self.vocab_size, "sequence")
        return [np.array([self._next_logprobs(a[:t])[a[t]] for t in range(1, len(a))], dtype=np.float64)
                for a in arrays]

    def last_token_logprobs(self, prompts: Sequence[Sequence[int]], token_ids: Sequence[int]) -> np.ndarray:
        arrays = as_token_arrays(prompts, self.vocab_size, "prompt")
        (wanted,) = as_token_arrays([token_ids], self.vocab_size, "token_ids")
        return np.array([self._next_logprobs(a)[wanted] for a in arrays], dtype=np.float64).reshape(len(arrays), -1)

    def tree_logprobs(self, prompts: Sequence[Sequence[int]], token_ids: Sequence[int], head: int = 0) -> np.ndarray:
        if not self.capabilities.tree_logprobs:
            return super().tree_logprobs(prompts, token_ids, head)
        return self.last_token_logprobs(prompts, token_ids)

    def shared_prefix_logprobs(self, groups: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]],
                               token_ids: Sequence[int]) -> list[np.ndarray]:
        if not self.capabilities.shared_prefix_logprobs:
            return super().shared_prefix_logprobs(groups, token_ids)
        return [self.last_token_logprobs([list(prefix) + list(rest) for rest in continuations], token_ids)
                for prefix, continuations in groups]

    def generate(self, prompt: Sequence[int], max_new_tokens: int, temperature: float, seed: int) -> Generation:
        self.calls += 1
        if self._script:
            return self._script[(self.calls - 1) % len(self._script)]
        tokens = generation_prompt(prompt, self.vocab_size, max_new_tokens, temperature)
        rng = np.random.default_rng(seed)
        context, new = list(tokens), []
        while len(new) < max_new_tokens:
            logprobs = self._next_logprobs(context)
            if temperature == 0:
                token = int(np.argmax(logprobs))
            else:
                weights = np.exp((logprobs - logprobs.max()) / temperature)
                token = int(rng.choice(self.vocab_size, p=weights / weights.sum()))
            new.append(token)
            context.append(token)
            if token in self.eos_ids:
                break
        prefill = self._seconds_per_token * len(tokens)
        text = self.tokenizer.decode(new) if self.tokenizer is not None else " ".join(map(str, new))
        # Prefill ends with the first new token, as on a real runtime; each later token is one decode step.
        return Generation(tuple(new), text, len(tokens), prefill, prefill + self._seconds_per_token * (len(new) - 1))

    def weight_bytes(self) -> int | None:
        return self._weight_bytes

    def close(self) -> None:
        self.closed = True
