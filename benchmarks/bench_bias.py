"""Bias scoring speed: bf16 against fp32, and --permute with the shared prefix against without.

Two questions, on the demo model (SmolLM2-135M, torch, CPU):

- dtype: does bf16 give the answers fp32 gives, and how much faster is it?
  Both dtypes ask the same BBQ items (letters mode); the figures are the share
  of items whose hard answer agrees, the largest and mean difference of the
  option probabilities, SRS in each, perplexity on the same windows, and the
  speed ratio. `tests/e2e/test_dtype_agreement.py` holds bf16 to a tolerance on
  these figures; bf16 is the CPU default only where the CPU has native bf16.
- permute: asking the three cyclic option orders costs three prompts per item;
  a family's twelve prompts share most of their tokens, which the torch
  backend computes once in a token tree. The figures are the tokens computed
  per item (tree against whole prompts), items/s unpermuted, permuted with
  the tree and without any sharing, and their ratios.

    python -m benchmarks.bench_bias                 # 300 items, 8 perplexity windows
    python -m benchmarks.bench_bias --items 600 --variants dense,wanda50
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gate.runtime.torch_backend import load_torch_model
from gate.measurements.bias.bbq import load_bbq_source
from gate.measurements.bias.order import asking_order, first_items
from gate.measurements.bias.ask import answer_items
from gate.measurements.bias.scores import score
from gate.inputs.corpus import load_text
from gate.demo.build import ensure_demo_checkpoint
from gate.measurements.perplexity import DEFAULT_CTX, make_windows, measure_perplexity


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def dtype_agreement(variant: str, items, windows: int) -> dict:
    """fp32 and bf16 on the same items and windows: agreement and speed."""
    path = ensure_demo_checkpoint(variant)
    runs, seconds, perplexity = {}, {}, {}
    for dtype in ("float32", "bfloat16"):
        handle = load_torch_model(path, device="cpu", dtype=dtype)
        try:
            runs[dtype], seconds[dtype] = _timed(answer_items, handle, items)
            plan = make_windows(handle.tokenizer, load_text(None).text, max_tokens=windows * DEFAULT_CTX)
            perplexity[dtype] = measure_perplexity(handle, plan).perplexity
        finally:
            handle.close()
    fp32, bf16 = (runs[d].answers for d in ("float32", "bfloat16"))
    agree = np.mean([a.choices == b.choices for a, b in zip(fp32, bf16)])
    diff = np.abs(np.array([a.option_probabilities for a in fp32]) - np.array([b.option_probabilities for b in bf16]))
    srs = {d: score(runs[d].answers).overall.srs.value for d in runs}
    figures = {
        "items": len(items), "hard_agreement": float(agree), "max_probability_difference": float(diff.max()),
        "mean_probability_difference": float(diff.mean()), "srs_fp32": srs["float32"], "srs_bf16": srs["bfloat16"],
        "perplexity_fp32": perplexity["float32"], "perplexity_bf16": perplexity["bfloat16"],
        "perplexity_relative_difference": perplexity["bfloat16"] / perplexity["float32"] - 1,
        "items_per_second_fp32": len(items) / seconds["float32"], "items_per_second_bf16": len(items) / seconds["bfloat16"],
    }
    figures["bf16_speedup"] = figures["items_per_second_bf16"] / figures["items_per_second_fp32"]
    return figures


def tokens_per_item(items, tokenizer) -> dict:
    """Tokens computed per permuted item: each family's twelve prompts as one token tree, or each whole prompt."""
    from gate.runtime.token_tree import build_tree
    from gate.measurements.bias.order import families
    from gate.measurements.bias.prompts import option_orders, prompt_format, render_prompt

    fmt = prompt_format(tokenizer)
    whole = tree = 0
    for family in families(items):
        prompts = [render_prompt(tokenizer, item, order, fmt) for item in family for order in option_orders(True)]
        whole += sum(map(len, prompts))
        tree += build_tree(prompts).size
    return {"items": len(items), "tokens_per_item_whole": whole / len(items), "tokens_per_item_tree": tree / len(items),
            "tree_share": tree / whole}


def permute_cost(items, dtype: str = "bfloat16") -> dict:
    """Items/s unpermuted and permuted with the family token tree, and permuted without any sharing."""
    handle = load_torch_model(ensure_demo_checkpoint("dense"), device="cpu", dtype=dtype)
    try:
        tokens = tokens_per_item(items, handle.tokenizer)
        answer_items(handle, items[:16])  # warm-up
        plain, plain_s = _timed(answer_items, handle, items, permute=False)
        tree, tree_s = _timed(answer_items, handle, items, permute=True)
        handle.tree_logprobs = handle.shared_prefix_logprobs = None  # a backend without any sharing
        whole, whole_s = _timed(answer_items, handle, items, permute=True)
    finally:
        handle.close()
    same = float(np.mean([a.order_choices == b.order_choices for a, b in zip(tree.answers, whole.answers)]))
    gap = float(max(np.abs(np.subtract(a.option_probabilities, b.option_probabilities)).max()
                    for a, b in zip(tree.answers, whole.answers)))
    return {**tokens, "dtype": dtype, "items_per_second_unpermuted": len(items) / plain_s,
            "items_per_second_permuted_tree": len(items) / tree_s,
            "items_per_second_permuted_whole": len(items) / whole_s,
            "permute_cost_tree": tree_s / plain_s, "permute_cost_whole": whole_s / plain_s,
            "sharing_speedup": whole_s / tree_s, "same_order_choices": same, "max_probability_difference": gap}


def run(items: int = 300, windows: int = 8, variants=("dense", "wanda50")) -> dict:
    chosen = [item for family in first_items(asking_order(load_bbq_source(None).items), items) for item in family]
    figures: dict = {"dtype": {}}
    for variant in variants:
        f = dtype_agreement(variant, chosen, windows)
        figures["dtype"][variant] = f
        print(f"{variant}: bf16 vs fp32 on {f['items']} items: hard answers agree {f['hard_agreement']:.1%}, "
              f"option probabilities differ by {f['mean_probability_difference']:.4f} on average "
              f"(max {f['max_probability_difference']:.3f}); SRS {f['srs_fp32']:.3f} vs {f['srs_bf16']:.3f}; "
              f"perplexity {f['perplexity_fp32']:.2f} vs {f['perplexity_bf16']:.2f} "
              f"({f['perplexity_relative_difference']:+.2%}); {f['items_per_second_fp32']:.1f} vs "
              f"{f['items_per_second_bf16']:.1f} items/s -> bf16 {f['bf16_speedup']:.2f}x", flush=True)
    p = figures["permute"] = permute_cost(chosen)
    print(f"--permute (dense, {p['dtype']}, {p['items']} items): a family's token tree holds {p['tree_share']:.0%} of "
          f"its prompts' tokens ({p['tokens_per_item_tree']:.0f} vs {p['tokens_per_item_whole']:.0f} per item); "
          f"unpermuted {p['items_per_second_unpermuted']:.1f} items/s; permuted {p['items_per_second_permuted_tree']:.1f} "
          f"items/s with the tree, {p['items_per_second_permuted_whole']:.1f} without sharing (tree "
          f"{p['sharing_speedup']:.2f}x faster); per-order answers identical on {p['same_order_choices']:.1%} of items, "
          f"probabilities within {p['max_probability_difference']:.3f} (bf16 rounding differs with the shapes)",
          flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--variants", default="dense,wanda50")
    args = parser.parse_args()
    run(args.items, args.windows, tuple(args.variants.split(",")))


if __name__ == "__main__":
    main()
