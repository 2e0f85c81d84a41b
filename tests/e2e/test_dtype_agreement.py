"""bf16 is the CPU default only because it agrees with float32 on a real model: this holds it to that.

On the demo model (SmolLM2-135M) bf16 and float32 ask the same BBQ items and
score the same perplexity windows. Measured on 300 items
(`python -m benchmarks.bench_bias`): hard answers agree on 94.7% (dense) and
97.0% (wanda50), option probabilities differ by 0.016 and 0.011 on average,
perplexity by 0.16% and 0.02%. The tolerances below leave room for a smaller
sample, not for a real loss of precision.
"""

from __future__ import annotations

import numpy as np
import pytest

from gate.runtime.torch_backend import _default_dtype, load_torch_model
from gate.measurements.bias.bbq import load_bbq_source, sample_items
from gate.measurements.bias.ask import answer_items
from gate.inputs.corpus import load_text
from gate.measurements.perplexity import DEFAULT_CTX, make_windows, measure_perplexity

ITEMS = 120
WINDOWS = 2
MIN_HARD_AGREEMENT = 0.90
MAX_MEAN_PROBABILITY_DIFFERENCE = 0.03
MAX_PERPLEXITY_DIFFERENCE = 0.01


def _native_bf16() -> bool:
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


@pytest.mark.e2e
def test_bf16_agrees_with_float32_on_the_demo_model():
    from gate.demo.build import ensure_demo_checkpoint

    if not _native_bf16():
        # Where bf16 is not the default its matmuls are emulated (~40x slower than float32 on an AVX2 CPU), and
        # this check guards the default: it runs on the CPUs that default to bf16.
        pytest.skip("this CPU has no native bf16 (AVX512-BF16 or AMX), so float32 is the default here")
    path = ensure_demo_checkpoint("dense")
    items = sample_items(load_bbq_source(None).items, limit=ITEMS, seed=1)
    answers, perplexity = {}, {}
    for dtype in ("float32", "bfloat16"):
        handle = load_torch_model(path, device="cpu", dtype=dtype)
        try:
            answers[dtype] = answer_items(handle, items).answers
            windows = make_windows(handle.tokenizer, load_text(None).text, max_tokens=WINDOWS * DEFAULT_CTX)
            perplexity[dtype] = measure_perplexity(handle, windows).perplexity
        finally:
            handle.close()
    full, half = answers["float32"], answers["bfloat16"]
    agreement = np.mean([a.choices == b.choices for a, b in zip(full, half)])
    difference = np.abs(np.array([a.option_probabilities for a in full])
                        - np.array([b.option_probabilities for b in half])).mean()
    assert agreement >= MIN_HARD_AGREEMENT
    assert difference <= MAX_MEAN_PROBABILITY_DIFFERENCE
    assert abs(perplexity["bfloat16"] / perplexity["float32"] - 1) <= MAX_PERPLEXITY_DIFFERENCE


def test_cpu_default_is_bf16_only_with_native_bf16():
    import torch

    assert _default_dtype(torch.device("cpu")) == ("bfloat16" if _native_bf16() else "float32")
    assert _default_dtype(torch.device("meta")) == "float32"
