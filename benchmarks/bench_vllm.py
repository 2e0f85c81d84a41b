"""The vLLM runtime (here its CPU build) against the torch runtime, side by side on the demo pair.

Each runtime loads the dense demo model and its Wanda-50% variant in turn and
asks them the same BBQ items in letters mode with all three option orders
(torch computes each family's prompts as one token tree; vLLM shares the
prefixes through its prefix cache), then scores the same perplexity windows.
The figures: items/s and perplexity tokens/s per runtime and their ratios
(vLLM / torch), peak memory (torch: this process's peak resident set; vLLM:
the sampled peak of its worker and engine processes, proportional set size),
how many prompt tokens vLLM's prefix cache served, load times, and whether
the two runtimes gave the same answers.

    python -m benchmarks.bench_vllm --vllm-python .venv-vllm/bin/python            # 96 items, 8 windows
    python -m benchmarks.bench_vllm --vllm-python .venv-vllm/bin/python --items 480 --out F.json

The record (machine, versions of both environments, figures) is written to
benchmarks/results/ unless --out names another file.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from gate.demo.build import ensure_demo_checkpoint
from gate.inputs.corpus import load_text
from gate.measurements.bias.ask import answer_items
from gate.measurements.bias.bbq import load_bbq_source
from gate.measurements.bias.order import asking_order, first_items
from gate.measurements.perplexity import DEFAULT_CTX, make_windows, measure_perplexity
from gate.runtime import vllm_backend
from gate.runtime.common import load_tokenizer
from gate.runtime.torch_backend import load_torch_model

RESULTS = Path(__file__).resolve().parent / "results"


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def _load(runtime: str, path: Path, dtype: str, python: str | None):
    if runtime == "torch":
        return load_torch_model(path, device="cpu", dtype=dtype)
    return vllm_backend.load_vllm_model(path, dtype=dtype, settings=vllm_backend.VllmSettings(python=python))


def measure(runtime: str, variant: str, items, windows, dtype: str, python: str | None) -> dict:
    """One model on one runtime: load, BBQ (letters, permuted), perplexity; speeds and memory."""
    handle, load_seconds = _timed(_load, runtime, Path(ensure_demo_checkpoint(variant)), dtype, python)
    try:
        run, bbq_seconds = _timed(answer_items, handle, items, mode="letters", permute=True)
        perplexity, ppl_seconds = _timed(measure_perplexity, handle, windows)
        figures = {
            "load_seconds": load_seconds, "items_per_second": len(items) / bbq_seconds,
            "perplexity_tokens_per_second": sum(perplexity.tokens) / ppl_seconds, "perplexity": perplexity.perplexity,
            "srs": run.scores().overall.srs.value, "peak_memory_bytes": handle.peak_memory_bytes(),
            "runtime": handle.runtime_info(),
        }
        if runtime == "vllm":
            figures["prefix_cache"] = handle.prefix_cache_stats()
        return figures | {"_answers": [a.choices for a in run.answers]}
    finally:
        handle.close()


def run(python: str | None, items: int = 96, windows: int = 8, dtype: str = "float32",
        variants: tuple[str, ...] = ("dense", "wanda50")) -> dict:
    vllm_backend.require_vllm(vllm_backend.VllmSettings(python=python))  # before minutes of torch runs
    pool = [item for family in first_items(asking_order(load_bbq_source(None).items), items) for item in family]
    tokenizer = load_tokenizer(Path(ensure_demo_checkpoint("dense")))
    plan = make_windows(tokenizer, load_text(None).text, max_tokens=windows * DEFAULT_CTX)
    rows: dict = {"torch": {}, "vllm": {}}
    for runtime in rows:  # torch first: its peak resident set is then this process's before vLLM is touched
        for variant in variants:
            print(f"{runtime} {variant} ...", flush=True)
            rows[runtime][variant] = measure(runtime, variant, pool, plan, dtype, python)
    out = {"items": len(pool), "permute": True, "windows": len(plan), "dtype": dtype, "variants": list(variants),
           "runtimes": rows, "ratios": {}}
    for variant in variants:
        on_torch, on_vllm = rows["torch"][variant], rows["vllm"][variant]
        same = np.mean([a == b for a, b in zip(on_torch.pop("_answers"), on_vllm.pop("_answers"))])
        out["ratios"][variant] = {
            "items_per_second_vllm_over_torch": on_vllm["items_per_second"] / on_torch["items_per_second"],
            "perplexity_tokens_per_second_vllm_over_torch":
                on_vllm["perplexity_tokens_per_second"] / on_torch["perplexity_tokens_per_second"],
            "peak_memory_vllm_over_torch":
                (on_vllm["peak_memory_bytes"] or np.nan) / (on_torch["peak_memory_bytes"] or np.nan),
            "same_hard_answers": float(same),
            "perplexity_relative_difference": on_vllm["perplexity"] / on_torch["perplexity"] - 1,
            "srs_difference": on_vllm["srs"] - on_torch["srs"],
        }
    return out


def table(figures: dict) -> list[str]:
    lines = [f"{figures['items']} BBQ items x 3 orders, {figures['windows']} windows of {DEFAULT_CTX} tokens, "
             f"{figures['dtype']}"]
    for runtime, by_variant in figures["runtimes"].items():
        for variant, row in by_variant.items():
            peak = row["peak_memory_bytes"]
            lines.append(f"  {runtime:5} {variant:8} load {row['load_seconds']:6.1f} s  {row['items_per_second']:6.2f} items/s  "
                         f"{row['perplexity_tokens_per_second']:7.1f} ppl tokens/s  peak "
                         f"{peak / 2**20 if peak else float('nan'):7.0f} MiB  perplexity {row['perplexity']:.4f}")
    for variant, ratio in figures["ratios"].items():
        lines.append(f"  {variant}: vLLM/torch items/s {ratio['items_per_second_vllm_over_torch']:.2f}, ppl tokens/s "
                     f"{ratio['perplexity_tokens_per_second_vllm_over_torch']:.2f}, peak memory "
                     f"{ratio['peak_memory_vllm_over_torch']:.2f}; same answers {ratio['same_hard_answers']:.1%}")
    return lines


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_vllm", description=__doc__.splitlines()[0])
    parser.add_argument("--vllm-python", help=f"vLLM's python [default: ${vllm_backend.PYTHON_ENV}]")
    parser.add_argument("--items", type=int, default=96)
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--note", default="", help="recorded with the figures (e.g. 'machine busy')")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    figures = run(args.vllm_python, items=args.items, windows=args.windows, dtype=args.dtype)
    print("\n".join(table(figures)))
    describe = vllm_backend.describe(vllm_backend.VllmSettings(python=args.vllm_python))
    record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "note": args.note,
              "machine": {"cpu": describe["device_description"], "platform": platform.platform()},
              "versions": {"gate_env": {k: v for k, v in figures["runtimes"]["torch"]["dense"]["runtime"].items()
                                        if k.endswith("version") or k == "python"},
                           "vllm_env": {k: describe[k] for k in ("vllm_version", "torch_version",
                                                                 "transformers_version", "python")}},
              "command": " ".join(["python -m benchmarks.bench_vllm", *(sys.argv[1:] if argv is None else argv)]), "figures": {"vllm": figures}}
    out = args.out or RESULTS / f"{record['date'][:10]}-{platform.node() or 'host'}-vllm.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"recorded in {out}")
    return figures


if __name__ == "__main__":
    main()
