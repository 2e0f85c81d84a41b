"""BBQ token trees two at a time on a CPU (each on half the cores) against one at a time on all of them.

The demo model (torch, the machine's default dtype) answers the default
policy's first items (its asking order, disambiguated families thinned as a
sequential run asks them) twice, in chunks of 24 items as `gate check` asks
them between the default policy's looks: trees scored one at a time with every intra-op thread,
then two at a time (`gate/runtime/cpu_workers.py`). The figures are items/s
each way, their ratio, and how far the answers moved (the thread count per
pass changes a product's summation order, so the last bits may move).

    python -m benchmarks.bench_workers              # 288 items
    python -m benchmarks.bench_workers --items 600
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np

from gate.demo.build import ensure_demo_checkpoint
from gate.measurements.bias.ask import answer_items
from gate.measurements.bias.bbq import load_bbq_source
from gate.measurements.bias.order import DISAMBIGUATED_EVERY, asking_order, first_items, thin_disambiguated
from gate.measurements.bias.step import CHUNK_ITEMS
from gate.policy.loader import load_policy
from gate.runtime.base import ModelHandle
from gate.runtime.cpu_workers import threads_per_worker
from gate.runtime.torch_backend import load_torch_model


def _in_chunks(handle, order, size: int) -> tuple[list, float]:
    """Answers to `order`'s families, asked `size` items at a time (whole families), and the seconds taken."""
    answers, chunk, start = [], [], time.perf_counter()
    for family in order:
        chunk += family
        if len(chunk) >= size or family is order[-1]:
            answers += answer_items(handle, chunk, permute=True).answers
            chunk = []
    return answers, time.perf_counter() - start


def run(items: int = 288, variant: str = "dense") -> dict:
    order = first_items(thin_disambiguated(asking_order(load_bbq_source(None).items), DISAMBIGUATED_EVERY), items)
    chosen = [item for family in order for item in family]
    # As `gate check` asks between looks under the default policy (bias.sequential.ask_in_chunks).
    chunk = min(CHUNK_ITEMS, load_policy("default").sequential.look_every)
    handle = load_torch_model(ensure_demo_checkpoint(variant))
    try:
        if threads_per_worker(handle.device.split(":")[0]) is None:
            return {"skipped": f"trees run one at a time on {handle.device} with this many threads"}
        answer_items(handle, chosen[:12], permute=True)  # warm-up
        together, together_s = _in_chunks(handle, order, chunk)
        handle.tree_logprobs_each = functools.partial(ModelHandle.tree_logprobs_each, handle)  # one at a time
        alone, alone_s = _in_chunks(handle, order, chunk)
    finally:
        handle.close()
    gap = np.abs(np.array([a.option_probabilities for a in together])
                 - np.array([a.option_probabilities for a in alone]))
    figures = {"items": len(chosen), "chunk_items": chunk, "dtype": handle.dtype,
               "items_per_second_one_at_a_time": len(chosen) / alone_s,
               "items_per_second_two_at_a_time": len(chosen) / together_s, "speedup": alone_s / together_s,
               "same_hard_answers": float(np.mean([a.choices == b.choices for a, b in zip(together, alone)])),
               "max_probability_difference": float(gap.max())}
    print(f"{variant}, {figures['items']} items permuted, {chunk} at a time ({figures['dtype']}): one tree at a time "
          f"{figures['items_per_second_one_at_a_time']:.2f} items/s, two at a time "
          f"{figures['items_per_second_two_at_a_time']:.2f} items/s -> {figures['speedup']:.2f}x; hard answers "
          f"identical on {figures['same_hard_answers']:.1%}, probabilities within {figures['max_probability_difference']:.1e}",
          flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=288)
    parser.add_argument("--variant", default="dense")
    args = parser.parse_args()
    run(args.items, args.variant)


if __name__ == "__main__":
    main()
