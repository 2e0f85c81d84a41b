"""Perplexity throughput: the gate's scoring against a plain forward-pass loop.

Both score the same windows of the bundled WikiText-2 excerpt with the same
transformers model object and the same batch size; the plain loop is the
least a perplexity tool can do (model(input_ids).logits, then cross-entropy).
The goal is a ratio of at least 0.9. Each side runs `repeats` times,
alternating, and the fastest run counts, to damp noise from other processes.

    python benchmarks/bench_perplexity.py                 # the demo model (SmolLM2-135M)
    python benchmarks/bench_perplexity.py --model DIR --windows 16 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from gate.runtime.torch_backend import load_torch_model
from gate.inputs.corpus import load_text
from gate.measurements.perplexity import DEFAULT_CTX, Windows, make_windows, measure_perplexity

GOAL = 0.9


@dataclass(frozen=True)
class BenchResult:
    windows: int
    scored_tokens: int
    gate_seconds: float
    plain_seconds: float
    gate_perplexity: float | None
    plain_perplexity: float

    @property
    def gate_tokens_per_second(self) -> float:
        return self.scored_tokens / self.gate_seconds

    @property
    def plain_tokens_per_second(self) -> float:
        return self.scored_tokens / self.plain_seconds

    @property
    def ratio(self) -> float:
        return self.gate_tokens_per_second / self.plain_tokens_per_second


def plain_loop_nll(model, windows: Windows, batch_size: int, device: torch.device) -> float:
    """Total NLL (nats) of the windows by the textbook loop."""
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            input_ids = torch.tensor(windows.token_ids[start:start + batch_size], device=device)
            logits = model(input_ids).logits
            total += float(F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                           input_ids[:, 1:].reshape(-1), reduction="sum"))
    return total


def bench(model_dir: Path, windows: int = 16, ctx: int = DEFAULT_CTX, batch_size: int = 4,
          dtype: str | None = None, device: str | None = None, repeats: int = 2) -> BenchResult:
    handle = load_torch_model(model_dir, device=device, dtype=dtype)
    try:
        cut = make_windows(handle.tokenizer, load_text(None).text, ctx=ctx, max_tokens=windows * ctx)
        scored = sum(len(ids) - 1 for ids in cut.token_ids)
        model, torch_device = handle.model, torch.device(handle.device)
        plain_loop_nll(model, Windows(cut.token_ids[:1], cut.texts[:1], cut.byte_counts[:1], ctx,
                                      ctx, cut.tokenizer_id), 1, torch_device)  # warm-up
        gate_times, plain_times = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            run = measure_perplexity(handle, cut, batch_size=batch_size)
            gate_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            plain_nll = plain_loop_nll(model, cut, batch_size, torch_device)
            plain_times.append(time.perf_counter() - start)
    finally:
        handle.close()
    return BenchResult(len(cut), scored, min(gate_times), min(plain_times), run.perplexity,
                       math.exp(plain_nll / scored))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a local HF checkpoint directory (default: the demo model)")
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--ctx", type=int, default=DEFAULT_CTX)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default: the backend's)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.model is None:
        from gate.demo.build import ensure_demo_checkpoint

        args.model = ensure_demo_checkpoint("dense")
    result = bench(args.model, args.windows, args.ctx, args.batch_size, args.dtype, args.device, args.repeats)
    print(f"model {args.model}: {result.windows} windows of {args.ctx} tokens, {result.scored_tokens} scored tokens")
    print(f"gate        {result.gate_tokens_per_second:9.1f} tokens/s  perplexity {result.gate_perplexity:.4f}")
    print(f"plain loop  {result.plain_tokens_per_second:9.1f} tokens/s  perplexity {result.plain_perplexity:.4f}")
    print(f"ratio gate/plain {result.ratio:.3f} (goal >= {GOAL})")


if __name__ == "__main__":
    main()
