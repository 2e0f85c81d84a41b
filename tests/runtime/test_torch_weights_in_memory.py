"""The torch runtime holds its weights in its own memory, not mapped from the checkpoint file.

Mapped weights (what transformers leaves when the file already holds the compute
dtype) decoded 20-30% slower than converted ones on Linux, which would make a
candidate stored in float32 time slower than a bf16-stored base for no reason of
its own. Checked through /proc/self/maps, where the kernel lists mapped files.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

MAPS = Path("/proc/self/maps")


def _mapped(path: Path) -> list[str]:
    return [line for line in MAPS.read_text().splitlines() if str(path) in line]


@pytest.mark.skipif(not MAPS.exists(), reason="needs Linux's /proc/self/maps")
def test_weights_stored_in_the_compute_dtype_are_not_left_mapped(tiny_model_dir):
    import torch
    import transformers

    from gate.runtime.torch_backend import load_torch_model

    plain = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    gc.collect()
    assert _mapped(tiny_model_dir), "transformers no longer maps the file: this test checks nothing"
    del plain
    gc.collect()
    handle = load_torch_model(tiny_model_dir, device="cpu", dtype="float32")  # the tiny model is stored in float32
    try:
        gc.collect()
        assert _mapped(tiny_model_dir) == []
        model = handle.model
        assert model.lm_head.weight is model.model.embed_tokens.weight  # tied weights stay tied
    finally:
        handle.close()
