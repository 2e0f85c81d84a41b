"""Fixtures shared across the suite: the tiny random model (fixtures/tiny_model.py) and the fake runtime.

The tiny model is written once per session; tests that change a checkpoint
copy it first. The fake runtime (gate/runtime/fake.py) implements the handle
contract without weights, for outputs and capabilities no real model offers
on demand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.tiny_model import write_tiny_model
from gate.runtime.fake import FakeModel


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The tiny random Llama (seed 0, ChatML template), float32; do not modify it in place."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir):
    from gate.runtime.common import load_tokenizer

    return load_tokenizer(tiny_model_dir)


@pytest.fixture
def fake_model(tiny_tokenizer) -> FakeModel:
    """A fake handle over the tiny model's tokenizer (its vocabulary, chat template and eos), no capabilities."""
    return FakeModel(len(tiny_tokenizer), tokenizer=tiny_tokenizer, eos_ids=frozenset({tiny_tokenizer.eos_token_id}))
