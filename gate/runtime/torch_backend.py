"""The transformers/torch runtime: CPU, CUDA or Apple MPS.

Scoring is batched and avoids work that is thrown away: sequences are sorted
by length and right-padded (causal attention means padding after a sequence
never reaches its positions, so no mask is needed), and the next-token
distribution is computed at the last position only (left padding plus
`logits_to_keep=1`). Log-softmax is always taken in float32.
"""

from __future__ import annotations

import copy
import gc
import inspect
import math
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError

from gate.core.checkpoint_dir import check_checkpoint_dir
from gate.core.errors import BackendUnavailableError, CheckpointError, InputError, first_line
from gate.core.tokenizer import Tokenizer
from gate.runtime.base import Capabilities, Generation, ModelHandle
from gate.runtime import cpu_workers
from gate.runtime.common import (
    as_token_arrays, eos_token_ids, generation_prompt, length_batches, load_tokenizer, normalize_dtype,
)
from gate.runtime.host import available_ram_bytes
from gate.runtime.token_tree import build_tree

_TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# Padded tokens per forward pass, and a cap on the float32 logits a batch may
# hold (batch tokens x vocabulary x 4 bytes), so a large vocabulary cannot
# exhaust memory.
DEFAULT_MAX_BATCH_TOKENS = 4096
_MAX_LOGITS_BYTES = 256 << 20
# The same cap on the KV cache of a shared-prefix batch: every continuation row
# holds a copy of its prefix's keys and values plus its own, which for a model
# without grouped-query attention (SmolLM2-1.7B: 192 KiB a token) outgrows the
# activations long before the token budget binds.
_MAX_CACHE_BYTES = 256 << 20
_CHUNK_LOGITS_BYTES = 32 << 20


def default_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _resolve_device(device: str | None) -> torch.device:
    name = default_device() if device is None else device
    try:
        resolved = torch.device(name)
    except RuntimeError as error:
        raise InputError(f"unknown torch device {name!r}; use cpu, cuda, cuda:N or mps") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(f"device {name!r} asked for, but this torch build ({torch.__version__}) sees no CUDA GPU")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise BackendUnavailableError(f"device {name!r} asked for, but Apple MPS is not available here")
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"unsupported torch device {name!r}; use cpu, cuda, cuda:N or mps")
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", torch.cuda.current_device())
    return resolved


def resolve_runtime(device: str | None, dtype: str | None) -> tuple[str, str]:
    """The device and dtype a load with these options will use, without loading anything."""
    resolved, dtype = _runtime(device, dtype)
    return str(resolved), dtype


def _runtime(device: str | None, dtype: str | None) -> tuple[torch.device, str]:
    """The one place that settles device and dtype, for loading and for cache keys alike."""
    resolved = _resolve_device(device)
    return resolved, normalize_dtype(dtype) or _default_dtype(resolved)


def _default_dtype(device: torch.device) -> str:
    """bf16 on CUDA and on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX), float32 elsewhere.

    On such a CPU bf16 scores BBQ about 3x faster than float32 and agrees with
    it within the tolerances `tests/test_dtype_agreement.py` checks on the
    demo model; without native support torch emulates bf16 and gains nothing.
    """
    if device.type == "cuda":
        return "bfloat16"
    if device.type == "cpu" and _cpu_has_native_bf16():
        return "bfloat16"
    return "float32"


def _cpu_has_native_bf16() -> bool:
    try:  # torch.cpu's feature probes are private; their absence means "no"
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


def _process_peak_rss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return getattr(psutil.Process().memory_info(), "peak_wset", None)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # macOS reports bytes, Linux KiB


def _fit_continuations(prefix_length: int, continuations: list[np.ndarray], budget: int,
                       cache_budget: int) -> list[list[np.ndarray]]:
    """Consecutive runs of `continuations` that fit both budgets (one at least): the prefix plus the
    padded continuations within `budget` tokens computed, and the rows' prefix copies plus
    continuations within `cache_budget` tokens held in the KV cache."""
    parts: list[list[np.ndarray]] = [[]]
    for continuation in continuations:
        part = parts[-1] + [continuation]
        width = max(map(len, part))
        if parts[-1] and (prefix_length + len(part) * width > budget
                          or len(part) * (prefix_length + width) > cache_budget):
            parts.append([continuation])
        else:
            parts[-1] = part
    return parts


def _load_glibc():
    """(malloc_trim, free heap bytes) from glibc, or (None, None) elsewhere (macOS, musl)."""
    if not sys.platform.startswith("linux"):
        return None, None
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None, None

    class _MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    try:
        mallinfo2 = libc.mallinfo2  # glibc 2.33+
        mallinfo2.restype = _MallInfo2
    except AttributeError:
        return trim, None
    return trim, lambda: mallinfo2().fordblks


_malloc_trim, _free_heap_bytes = _load_glibc()
# Free heap worth handing back; below it, trimming costs more (pages fault in again) than it saves.
_TRIM_ABOVE_BYTES = 256 << 20


def _release_freed_memory(device: torch.device) -> None:
    """Hand memory freed by a batch back to the OS when much of it has piled up.

    glibc keeps freed blocks in its heap, and the temporaries of batches of
    different shapes fragment it: on a 1.7B model about 600 MiB of freed heap
    was still held after 120 BBQ items, all of it counted in the peak.
    Trimming after every batch cost the demo model 5% of its speed (freed
    pages fault in again); trimming only above 256 MiB of free heap costs it
    nothing measurable and keeps the 1.7B model's peak where trimming every
    batch did.
    """
    if device.type != "cpu" or _malloc_trim is None:
        return
    if _free_heap_bytes is None or _free_heap_bytes() > _TRIM_ABOVE_BYTES:
        _malloc_trim(0)


def _kv_bytes_per_token(model: Any) -> int:
    """Bytes of keys and values the cache holds per token, from the model's config (an estimate)."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    heads = getattr(config, "num_attention_heads", 1) or 1
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    element = next(model.parameters()).element_size()
    return 2 * config.num_hidden_layers * kv_heads * head_dim * element


def _cross_entropy_in_chunks(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-token cross-entropy in float32, a few rows at a time.

    Converting a whole batch's logits to float32 and log-softmaxing them at
    once would hold two float32 copies of batch tokens x vocabulary (about
    0.8 GB each for 4 windows of 512 tokens and a 49k vocabulary); chunks
    keep that to _CHUNK_LOGITS_BYTES, at no cost in speed.
    """
    step = max(1, _CHUNK_LOGITS_BYTES // (4 * logits.shape[-1]))
    out = torch.empty(targets.shape, dtype=torch.float32, device=logits.device)
    for start in range(0, targets.shape[0], step):
        rows = slice(start, start + step)
        out[rows] = F.cross_entropy(logits[rows].float(), targets[rows], reduction="none")
    return out


class TorchModel(ModelHandle):
    """A causal LM held by transformers."""

    backend = "torch"
    capabilities = Capabilities(tree_logprobs=True, shared_prefix_logprobs=True)

    def __init__(
        self,
        model: Any,
        tokenizer: Tokenizer,
        device: torch.device,
        dtype: str,
        eos_ids: frozenset[int],
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    ) -> None:
        self._model = model
        self.tokenizer = tokenizer
        self._device = device
        self.device = str(device)
        self.dtype = dtype
        self.eos_ids = eos_ids
        self.input_vocab_size = model.get_input_embeddings().num_embeddings
        self.vocab_size = model.get_output_embeddings().weight.shape[0]
        logits_cap = _MAX_LOGITS_BYTES // (4 * self.vocab_size)
        self.max_batch_tokens = max(1, min(max_batch_tokens, logits_cap))
        self.max_cache_tokens = max(1, _MAX_CACHE_BYTES // _kv_bytes_per_token(model))
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        # transformers 5.2x renamed `past_key_values` to `cache` (argument and output field).
        self._cache_name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        self._opening: tuple[bytes, Any] | None = None  # (tokens, KV cache) of the prompt opening tree_logprobs shares
        self._opening_lock = threading.Lock()  # trees may be scored on two threads (tree_logprobs_each)

    @property
    def model(self) -> Any:
        if self._model is None:
            raise RuntimeError("this model handle was closed")
        return self._model

    def _synchronize(self) -> None:
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
        elif self._device.type == "mps":
            torch.mps.synchronize()

    def _padded(self, arrays: list[np.ndarray], left: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids padded to a rectangle, and the mask that is 1 on real tokens."""
        width = max(len(array) for array in arrays)
        ids = np.full((len(arrays), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(arrays), width), dtype=np.int64)
        for row, array in enumerate(arrays):
            span = slice(width - len(array), width) if left else slice(0, len(array))
            ids[row, span] = array
            mask[row, span] = 1
        return torch.from_numpy(ids).to(self._device), torch.from_numpy(mask).to(self._device)

    def token_logprobs(self, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        arrays = as_token_arrays(sequences, self.input_vocab_size, "sequence")
        lengths = [len(array) for array in arrays]
        results: list[np.ndarray] = [np.empty(0, dtype=np.float64)] * len(arrays)
        with torch.inference_mode():
            for batch in length_batches(lengths, self.max_batch_tokens):
                if lengths[batch[0]] < 2:  # longest first: this batch and the rest have nothing to predict
                    break
                input_ids, mask = self._padded([arrays[i] for i in batch], left=False)
                logits = self.model(input_ids=input_ids, use_cache=False).logits
                # Position t predicts token t+1; where that is padding, cross_entropy ignores it (-100).
                targets = torch.full_like(input_ids, -100)
                targets[:, :-1] = input_ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
                nll = _cross_entropy_in_chunks(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
                logprobs = (-nll.view(input_ids.shape)).double().cpu().numpy()
                for row, index in enumerate(batch):
                    results[index] = logprobs[row, : lengths[index] - 1].copy()
                del logits, nll
                _release_freed_memory(self._device)
        return results

    def last_token_logprobs(self, prompts: Sequence[Sequence[int]], token_ids: Sequence[int]) -> np.ndarray:
        arrays = as_token_arrays(prompts, self.input_vocab_size, "prompt")
        (wanted,) = as_token_arrays([token_ids], self.vocab_size, "token_ids")
        wanted_ids = torch.from_numpy(wanted).to(self._device)
        lengths = [len(array) for array in arrays]
        result = np.empty((len(arrays), len(wanted)), dtype=np.float64)
        with torch.inference_mode():
            for batch in length_batches(lengths, self.max_batch_tokens):
                input_ids, mask = self._padded([arrays[i] for i in batch], left=True)
                kwargs: dict[str, Any] = {}
                if len({lengths[i] for i in batch}) > 1:
                    # Left padding: mask the pads and start each row's positions at 0.
                    kwargs["attention_mask"] = mask
                    kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
                logits = self.model(input_ids=input_ids, use_cache=False, logits_to_keep=1, **kwargs).logits[:, -1, :]
                logprobs = torch.log_softmax(logits.float(), dim=-1)[:, wanted_ids]
                result[batch] = logprobs.double().cpu().numpy()
                del logits
                _release_freed_memory(self._device)
        return result

    def tree_logprobs(self, prompts: Sequence[Sequence[int]], token_ids: Sequence[int], head: int = 0) -> np.ndarray:
        """`last_token_logprobs` of `prompts`, their shared prefixes computed once (one token tree).

        One forward pass over the trie of the prompts (see `token_tree`), with
        an additive mask that lets each node see its ancestors only and
        positions equal to depths; logits are computed at the prompts' last
        nodes only. The first `head` tokens (the same in every prompt) come from
        a KV cache computed once for them and kept while later calls open with
        the same tokens. What is computed depends on these prompts and `head`
        alone, never on what else is being asked, so an item's answer is the
        same in any run. A tree over the token budget is split into halves of
        the prompts.
        """
        arrays = as_token_arrays(prompts, self.input_vocab_size, "prompt")
        (wanted,) = as_token_arrays([token_ids], self.vocab_size, "token_ids")
        opening = arrays[0][:head]
        if head and not all(len(a) > head and np.array_equal(a[:head], opening) for a in arrays):
            raise ValueError(f"every prompt must open with the same {head} tokens and go on after them")
        tree = build_tree([a[head:] for a in arrays])
        if tree.size > self.max_batch_tokens and len(arrays) > 1:
            half = len(arrays) // 2
            return np.concatenate([self.tree_logprobs(arrays[:half], wanted, head),
                                   self.tree_logprobs(arrays[half:], wanted, head)])
        dtype = _TORCH_DTYPES[self.dtype]
        blocked = torch.from_numpy(np.pad(~tree.attention_mask(), ((0, 0), (head, 0)))).to(self._device)
        mask = torch.zeros(blocked.shape, dtype=dtype, device=self._device).masked_fill_(blocked, torch.finfo(dtype).min)
        with torch.inference_mode():
            cached = {self._cache_name: copy.deepcopy(self._opening_cache(opening))} if head else {}
            logits = self.model(
                input_ids=torch.from_numpy(tree.tokens)[None].to(self._device), attention_mask=mask[None, None],
                position_ids=torch.from_numpy(tree.depths + head)[None].to(self._device), use_cache=bool(head),
                logits_to_keep=torch.from_numpy(tree.leaves).to(self._device), **cached,
            ).logits[0]
            wanted_ids = torch.from_numpy(wanted).to(self._device)
            result = torch.log_softmax(logits.float(), dim=-1)[:, wanted_ids].double().cpu().numpy()
        del logits, mask, blocked, cached
        return result

    def tree_logprobs_each(self, trees: Iterable[tuple[Sequence[Sequence[int]], int]],
                           token_ids: Sequence[int]) -> Iterator[np.ndarray]:
        """On a multi-core CPU, two trees at a time, each on half the cores (see `cpu_workers`)."""
        threads = cpu_workers.threads_per_worker(self._device.type)
        if threads is None:
            yield from super().tree_logprobs_each(trees, token_ids)
            return
        yield from cpu_workers.map_in_order(lambda tree: self.tree_logprobs(tree[0], token_ids, tree[1]),
                                            trees, threads)

    def _opening_cache(self, opening: np.ndarray) -> Any:
        """The KV cache of `opening` alone, computed once and kept for the calls that share it."""
        key = opening.tobytes()
        with self._opening_lock:
            if self._opening is None or self._opening[0] != key:
                output = self.model(input_ids=torch.from_numpy(opening)[None].to(self._device), use_cache=True,
                                    logits_to_keep=1)
                self._opening = (key, getattr(output, self._cache_name))
            return self._opening[1]

    def shared_prefix_logprobs(self, groups: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]],
                               token_ids: Sequence[int]) -> list[np.ndarray]:
        """`last_token_logprobs` of prefix + each continuation, each prefix computed once.

        A batch of prefixes runs with the KV cache on (left-padded, masked);
        each prefix's cache row is then copied to its continuations, which run
        left-padded against it (pads masked, positions continuing from the
        real prefix), so every row's next-token logits sit at the last
        position and `logits_to_keep=1` applies as in `last_token_logprobs`.
        """
        whole_prefixes = as_token_arrays([prefix for prefix, _ in groups], self.input_vocab_size, "prefix")
        whole_continuations = [as_token_arrays(rest, self.input_vocab_size, "continuation") for _, rest in groups]
        (wanted,) = as_token_arrays([token_ids], self.vocab_size, "token_ids")
        wanted_ids = torch.from_numpy(wanted).to(self._device)
        # A group larger than the token budget is split into parts sharing its prefix; results are joined below.
        prefixes, continuations, owner = [], [], []
        for g, (prefix, rest) in enumerate(zip(whole_prefixes, whole_continuations)):
            for part in _fit_continuations(len(prefix), rest, self.max_batch_tokens, self.max_cache_tokens):
                prefixes.append(prefix)
                continuations.append(part)
                owner.append(g)
        # A group computes its prefix once plus its continuations padded to the longest, and caches a
        # prefix copy for every continuation; the cache's tokens are scaled to the compute budget's units.
        scale = self.max_batch_tokens / self.max_cache_tokens
        cost = [max(len(prefixes[g]) + len(continuations[g]) * width,
                    math.ceil(len(continuations[g]) * (len(prefixes[g]) + width) * scale))
                for g in range(len(prefixes)) for width in [max(map(len, continuations[g]), default=0)]]
        results: list[np.ndarray] = [np.empty((0, len(wanted)))] * len(prefixes)
        with torch.inference_mode():
            for batch in length_batches(cost, self.max_batch_tokens):
                # Each continuation row reads the cache row of its own prefix.
                prefix_row = torch.tensor([row for row, g in enumerate(batch) for _ in continuations[g]],
                                          device=self._device)
                prefix_ids, prefix_mask = self._padded([prefixes[g] for g in batch], left=True)
                output = self.model(input_ids=prefix_ids, attention_mask=prefix_mask, use_cache=True,
                                    position_ids=(prefix_mask.cumsum(-1) - 1).clamp(min=0), logits_to_keep=1)
                cache = getattr(output, self._cache_name)
                cache.batch_select_indices(prefix_row)
                rest_ids, rest_mask = self._padded([c for g in batch for c in continuations[g]], left=True)
                mask = torch.cat([prefix_mask[prefix_row], rest_mask], dim=-1)
                positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, prefix_ids.shape[1]:]
                logits = self.model(input_ids=rest_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                                    logits_to_keep=1, **{self._cache_name: cache}).logits[:, -1, :]
                logprobs = torch.log_softmax(logits.float(), dim=-1)[:, wanted_ids].double().cpu().numpy()
                start = 0
                for g in batch:
                    results[g] = logprobs[start:start + len(continuations[g])]
                    start += len(continuations[g])
                del output, cache, logits
                _release_freed_memory(self._device)
        parts_of: list[list[np.ndarray]] = [[] for _ in groups]
        for part, g in enumerate(owner):  # parts were made in order, so each group's rows stay in order
            parts_of[g].append(results[part])
        return [np.concatenate(parts) for parts in parts_of]

    def _next_token(self, logits: torch.Tensor, temperature: float, generator: torch.Generator) -> int:
        if temperature == 0:
            return int(torch.argmax(logits, dim=-1).item())
        probabilities = torch.softmax(logits.float() / temperature, dim=-1)
        return int(torch.multinomial(probabilities, 1, generator=generator).item())

    def generate(self, prompt: Sequence[int], max_new_tokens: int, temperature: float, seed: int) -> Generation:
        prompt_ids = generation_prompt(prompt, self.input_vocab_size, max_new_tokens, temperature)
        generator = torch.Generator(device=self._device).manual_seed(seed)
        new_tokens: list[int] = []
        with torch.inference_mode():
            self._synchronize()
            start = time.perf_counter()
            input_ids = torch.from_numpy(prompt_ids).to(self._device)[None, :]
            output = self.model(input_ids=input_ids, use_cache=True, logits_to_keep=1)
            token = self._next_token(output.logits[0, -1], temperature, generator)
            self._synchronize()
            prefill_seconds = time.perf_counter() - start
            while True:
                new_tokens.append(token)
                if token in self.eos_ids or len(new_tokens) == max_new_tokens:
                    break
                step = torch.tensor([[token]], device=self._device)
                cache = {self._cache_name: getattr(output, self._cache_name)}
                output = self.model(input_ids=step, use_cache=True, **cache)
                token = self._next_token(output.logits[0, -1], temperature, generator)
            self._synchronize()
            total_seconds = time.perf_counter() - start
        return Generation.decoded(self.tokenizer, new_tokens, len(prompt_ids), prefill_seconds, total_seconds)

    def peak_memory_bytes(self) -> int | None:
        """CUDA: peak allocated device memory since load. CPU and MPS: the process's peak resident set (whole process, whole lifetime)."""
        if self._device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self._device))
        return _process_peak_rss_bytes()

    def weight_bytes(self) -> int | None:
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        return sum(t.numel() * t.element_size() for t in tensors)

    def free_memory_bytes(self) -> int | None:
        """Free memory on the CUDA device; RAM on the CPU and on MPS (Apple's unified memory)."""
        if self._device.type == "cuda":
            return int(torch.cuda.mem_get_info(self._device)[0])
        return available_ram_bytes()

    def device_description(self) -> str:
        if self._device.type == "cuda":
            return torch.cuda.get_device_name(self._device)
        return super().device_description()

    def close(self) -> None:
        self._model = None
        self._opening = None
        gc.collect()
        if self._device.type == "cuda":
            torch.cuda.empty_cache()
        elif self._device.type == "mps":
            torch.mps.empty_cache()


def load_torch_model(
    path: Path,
    device: str | None = None,
    dtype: str | None = None,
    *,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
) -> TorchModel:
    """Load a local Hugging Face checkpoint directory (safetensors only, no remote code)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as transformers_logging

    # The gate reports its own progress; transformers' bars would clutter it.
    transformers_logging.disable_progress_bar()
    torch_device, dtype = _runtime(device, dtype)
    path = check_checkpoint_dir(Path(path)).path
    tokenizer = load_tokenizer(path)
    if torch_device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(torch_device)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(path),
            dtype=_TORCH_DTYPES[dtype],
            local_files_only=True,
            trust_remote_code=False,
            use_safetensors=True,
        )
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as error:
        raise CheckpointError(f"cannot load the model in {path}: {first_line(error)}") from error
    model.to(torch_device).eval()
    if torch_device.type == "cpu":
        _own_weights(model)
    return TorchModel(model, tokenizer, torch_device, dtype, eos_token_ids(path, tokenizer), max_batch_tokens)


def _own_weights(model: torch.nn.Module) -> None:
    """Copy the weights into the process's own memory.

    transformers memory-maps safetensors weights stored in the compute dtype and
    converts the others into fresh memory. On Linux the mapped ones ran 20-30%
    slower per decoded token (the demo's 4-bit dense copy, stored in float32:
    117 ms a step mapped, 89 ms copied; the bf16-stored dense model, converted:
    97 ms), so a candidate stored in the compute dtype would time slower than a
    base stored in another for no reason of its own. Shared (tied) parameters
    stay shared: each is visited once.
    """
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.data = parameter.data.clone()
