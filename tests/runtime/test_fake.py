"""The fake runtime keeps the handle contract, and the capability flags decide what callers use."""

from __future__ import annotations

import numpy as np
import pytest

from gate.core.errors import InputError
from gate.measurements.bias.ask import answer_items
from gate.measurements.bias.bbq import load_bbq_source, sample_items
from gate.runtime.base import Capabilities, Generation, ModelHandle
from gate.runtime.fake import ALL_CAPABILITIES, FakeModel


def test_scoring_methods_agree_with_each_other():
    fake = FakeModel(32, capabilities=ALL_CAPABILITIES)
    sequence = [3, 7, 1, 9, 4]
    per_token = fake.token_logprobs([sequence])[0]
    stepwise = [fake.last_token_logprobs([sequence[:t]], [sequence[t]])[0, 0] for t in range(1, len(sequence))]
    assert per_token == pytest.approx(stepwise)
    prompts, wanted = [[1, 2, 3], [1, 2, 4, 5]], [0, 6, 31]
    expected = fake.last_token_logprobs(prompts, wanted)
    assert fake.tree_logprobs(prompts, wanted) == pytest.approx(expected)
    (shared,) = fake.shared_prefix_logprobs([([1, 2], [[3], [4, 5]])], wanted)
    assert shared == pytest.approx(expected)
    assert np.exp(fake.last_token_logprobs([[1]], list(range(32)))).sum() == pytest.approx(1.0)


def test_the_same_seed_gives_the_same_model_and_another_seed_another():
    a, b, c = FakeModel(16, seed=1), FakeModel(16, seed=1), FakeModel(16, seed=2)
    assert a.token_logprobs([[1, 2, 3]])[0] == pytest.approx(b.token_logprobs([[1, 2, 3]])[0])
    assert not np.allclose(a.token_logprobs([[1, 2, 3]])[0], c.token_logprobs([[1, 2, 3]])[0])


def test_a_missing_capability_says_so_when_used_anyway():
    fake = FakeModel(16)
    assert fake.capabilities == Capabilities()
    with pytest.raises(NotImplementedError, match="token-tree"):
        fake.tree_logprobs([[1]], [2])
    with pytest.raises(NotImplementedError, match="shared-prefix"):
        fake.shared_prefix_logprobs([([1], [[2]])], [3])


def test_generation_is_greedy_stops_at_eos_and_is_timed_by_the_fake_clock():
    fake = FakeModel(16, eos_ids=frozenset(), seconds_per_token=0.5)
    first = fake.generate([1, 2, 3], max_new_tokens=4, temperature=0.0, seed=0)
    assert first == fake.generate([1, 2, 3], max_new_tokens=4, temperature=0.0, seed=9)  # greedy ignores the seed
    assert len(first.token_ids) == 4 and first.prompt_tokens == 3
    assert (first.prefill_seconds, first.total_seconds) == (1.5, 3.0)  # 3 decode steps after the first token
    stopping = FakeModel(16, eos_ids=frozenset({first.token_ids[1]}))
    assert stopping.generate([1, 2, 3], 4, 0.0, 0).token_ids == first.token_ids[:2]
    sampled = {fake.generate([1, 2, 3], 4, temperature=5.0, seed=s).token_ids for s in range(5)}
    assert len(sampled) > 1


def test_a_script_replaces_generation_and_bad_tokens_are_input_errors():
    script = [Generation((5,), "A", 3, 0.1, 0.2), Generation((), "", 3, 0.1, 0.1)]
    fake = FakeModel(16, script=script)
    assert [fake.generate([1], 2, 0.0, 0) for _ in range(3)] == [script[0], script[1], script[0]]
    assert fake.calls == 3
    with pytest.raises(InputError, match="outside the vocabulary"):
        fake.token_logprobs([[1, 16]])


def test_every_handle_describes_where_it_ran():
    info = FakeModel(8).runtime_info()
    assert info["backend"] == "fake" and info["device"] == "cpu" and "logical CPUs" in info["device_description"]
    assert {"torch_version", "transformers_version", "mlx_version", "mlx_lm_version"} <= info.keys()
    assert isinstance(FakeModel(8), ModelHandle)


@pytest.mark.parametrize("capabilities", [Capabilities(), Capabilities(shared_prefix_logprobs=True),
                                          Capabilities(tree_logprobs=True)], ids=["plain", "shared-prefix", "tree"])
@pytest.mark.parametrize("permute", [False, True])
def test_bias_answers_the_same_whatever_scoring_the_runtime_offers(tiny_tokenizer, capabilities, permute):
    """Token trees and shared prefixes are ways to compute the same letter probabilities, not other answers."""
    items = sample_items(load_bbq_source(None).items, limit=6, seed=5)
    plain = FakeModel(len(tiny_tokenizer), tokenizer=tiny_tokenizer)
    offered = FakeModel(len(tiny_tokenizer), tokenizer=tiny_tokenizer, capabilities=capabilities)
    expected = answer_items(plain, items, permute=permute).answers
    got = answer_items(offered, items, permute=permute).answers
    assert [a.choices for a in got] == [a.choices for a in expected]
    for one, other in zip(got, expected):
        assert one.option_probabilities == pytest.approx(other.option_probabilities, abs=1e-9)
