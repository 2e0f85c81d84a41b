"""Latency of the demo model per backend, and candidate/base ratios for its pruned variants.

Each comparison times the dense base and one variant in rounds, each with
fresh loads of both, alternating call by call on the same BBQ chat prompts,
exactly as `gate check --metrics latency` does; "dense" compares the dense
model with fresh loads of itself, whose interval should contain 1.0. Unstructured zeros in dense
tensors are still multiplied, so every ratio is expected near 1.0.

    python benchmarks/bench_latency.py                                # torch and mlx, every variant
    python benchmarks/bench_latency.py --backends mlx --variants dense --prompts 3 --repeats 2
    python benchmarks/bench_latency.py --torch-threads 1              # a busy shared CPU: see below

On a CPU shared with other busy processes, torch's intra-op worker threads
wait on each other and a call can take many times longer than with one
thread; `--torch-threads` sets torch's thread count for the run.
"""

from __future__ import annotations

import argparse
import time

from gate.runtime.common import load_tokenizer
from gate.runtime.registry import load_model
from gate.run.check import CheckOptions
from gate.demo.build import DEMO_VARIANTS, ensure_demo_checkpoint
from gate.measurements.latency import compare_latency, measure_latency_in_rounds
from gate.measurements.options import LatencyOptions
from gate.measurements.latency_step import LatencyStep, second_copy_fits


def compare_variant(backend: str, variant: str, plan, dtype: str | None) -> tuple:
    """The dense base and `variant` timed in rounds with fresh loads, exactly as `gate check` does.

    Returns (base run, candidate run, comparison)."""
    paths = {"base": ensure_demo_checkpoint("dense"), "candidate": ensure_demo_checkpoint(variant)}

    def load(role: str):
        return load_model(paths[role], backend=backend, device="cpu", dtype=dtype)

    base_run, cand_run = measure_latency_in_rounds(load, plan.prompts, plan.repeats, plan.warmup,
                                                   plan.max_new_tokens, hold_both=second_copy_fits)
    return base_run, cand_run, compare_latency(base_run, cand_run)


def describe_run(label: str, run) -> str:
    s = run.summary
    decode = f"{s.decode_tokens_per_second:7.1f}" if s.decode_tokens_per_second else "    n/a"
    cv = f"{s.repeat_cv:.0%}" if s.repeat_cv is not None else "n/a"
    memory = f"{run.peak_memory_bytes / 2**20:6.0f} MiB" if run.peak_memory_bytes else "    n/a"
    return (f"  {label:<10} mean {s.mean_seconds:7.3f} s  median {s.median_seconds:7.3f} s  p95 {s.p95_seconds:7.3f} s"
            f"  prefill {s.prefill_tokens_per_second:7.1f} tok/s  decode {decode} tok/s  repeat spread {cv}"
            f"  peak {memory}")


def run(backends=("torch", "mlx"), variants=DEMO_VARIANTS, prompts: int = 4, repeats: int = 2, warmup: int = 1,
        dtype: str | None = None) -> dict:
    """Print each comparison; returns {backend: {variant: ratio figures}} for the record."""
    tokenizer = load_tokenizer(ensure_demo_checkpoint("dense"))
    figures: dict = {}
    for backend in backends:
        options = CheckOptions(metrics=("latency",), backend=backend, settings={"latency": LatencyOptions(
            prompts=prompts, repeats=repeats, warmup=warmup)})
        plan = LatencyStep().plan(tokenizer, options)
        lengths = [len(p) for p in plan.prompts]
        print(f"{backend}: {len(plan.prompts)} BBQ chat prompts ({min(lengths)}-{max(lengths)} tokens) x "
              f"{plan.repeats} rounds with fresh loads, {plan.warmup} warm-up call(s) per load, up to "
              f"{plan.max_new_tokens} new tokens, greedy; base and candidate in turns", flush=True)
        for variant in variants:
            start = time.perf_counter()
            base_run, cand_run, comparison = compare_variant(backend, variant, plan, dtype)
            runtime = base_run.runtime
            print(f"{variant} vs dense  [{runtime['backend']} {runtime['backend_version']}, {runtime['device']} "
                  f"{runtime['dtype']}, {runtime['device_description']}; {time.perf_counter() - start:.0f} s]")
            print(describe_run("dense", base_run))
            print(describe_run(variant, cand_run))
            decode = (f"{comparison.decode_ratio:.2f} [{comparison.decode_ratio_interval.low:.2f}, "
                      f"{comparison.decode_ratio_interval.high:.2f}]" if comparison.decode_ratio_interval else "n/a")
            print(f"  ratio {comparison.statement}; per decode token {decode}", flush=True)
            for finding in comparison.findings:
                if finding.code != "latency-speed":
                    print(f"  {finding.severity.value}: {finding.message}")
            interval = comparison.ratio_interval
            figures.setdefault(backend, {})[variant] = {
                "base_mean_s": base_run.summary.mean_seconds, "candidate_mean_s": cand_run.summary.mean_seconds,
                "ratio": comparison.ratio, "ratio_low": interval.low if interval else None,
                "ratio_high": interval.high if interval else None}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="torch,mlx", help="comma-separated: torch, mlx")
    parser.add_argument("--variants", default=",".join(DEMO_VARIANTS), help="candidates to compare with dense")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default: the backend's)")
    parser.add_argument("--torch-threads", type=int, default=None)
    args = parser.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    run(args.backends.split(","), args.variants.split(","), args.prompts, args.repeats, args.warmup, args.dtype)


if __name__ == "__main__":
    main()
