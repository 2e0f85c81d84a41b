"""Perplexity against the base, on tiny real models and the bundled text."""

from __future__ import annotations

import math
import shutil
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from scipy import stats as sps

from fixtures.tiny_model import write_tiny_model
from gate.runtime.torch_backend import load_torch_model
from gate.inputs.corpus import load_text
from gate.core.errors import DataError, IncompatibleModelsError, InputError
from gate.measurements.perplexity import (
    align_windows,
    check_tokenizers_match,
    compare_perplexity,
    make_windows,
    measure_perplexity,
)
from gate.core.result import Severity

CTX = 64
WINDOWS = 12


@pytest.fixture(scope="module")
def text():
    return load_text(None).text[:20_000]


@pytest.fixture(scope="module")
def other_dir(tmp_path_factory):
    """Same tokenizer, other random weights: a 'candidate' that really differs."""
    return write_tiny_model(tmp_path_factory.mktemp("other") / "model", seed=1)


@pytest.fixture(scope="module")
def base(tiny_model_dir):
    handle = load_torch_model(tiny_model_dir, device="cpu", dtype="float32")
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def windows(base, text):
    return make_windows(base.tokenizer, text, ctx=CTX, max_tokens=CTX * WINDOWS)


@pytest.fixture(scope="module")
def base_run(base, windows):
    return measure_perplexity(base, windows, batch_size=5)


# ---------------------------------------------------------------- windows


def test_windows_are_exact_consecutive_and_reproducible(base, text, windows):
    all_ids = base.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(windows) == WINDOWS
    assert all(len(ids) == CTX for ids in windows.token_ids)
    # No overlap, no gap: the windows are the first WINDOWS * CTX tokens of the text, in order.
    assert [t for ids in windows.token_ids for t in ids] == all_ids[: WINDOWS * CTX]
    assert windows.text_tokens == len(all_ids)
    # Their texts are consecutive spans of the text.
    assert text.startswith("".join(windows.texts))
    again = make_windows(base.tokenizer, text, ctx=CTX, max_tokens=CTX * WINDOWS)
    assert again == windows and again.fingerprint == windows.fingerprint


def test_window_byte_counts_cover_the_scored_tokens(base, windows):
    for ids, count in zip(windows.token_ids, windows.byte_counts):
        # Byte-level BPE: the scored tokens (all but the first) decode to exactly the bytes counted.
        assert len(base.tokenizer.decode(list(ids[1:])).encode("utf-8")) == count


def test_window_count_is_limited_by_text_or_budget(base, text):
    short = make_windows(base.tokenizer, text[:2_000], ctx=CTX, max_tokens=10_000)
    total = len(base.tokenizer(text[:2_000], add_special_tokens=False)["input_ids"])
    assert len(short) == total // CTX
    assert len(make_windows(base.tokenizer, text, ctx=CTX, max_tokens=3 * CTX + CTX - 1)) == 3


def test_text_shorter_than_one_window_is_a_one_line_data_error(base):
    with pytest.raises(DataError, match="too short for one window") as caught:
        make_windows(base.tokenizer, "A few words only.", ctx=CTX)
    assert "\n" not in str(caught.value)


def test_bad_window_settings_are_input_errors(base, text):
    with pytest.raises(InputError, match="at least 2 tokens"):
        make_windows(base.tokenizer, text, ctx=1)
    with pytest.raises(InputError, match="smaller than one window"):
        make_windows(base.tokenizer, text, ctx=CTX, max_tokens=CTX - 1)
    with pytest.raises(InputError, match="no tokenizer"):
        make_windows(None, text, ctx=CTX)


def test_checkpoint_without_tokenizer_is_an_input_error(tiny_model_dir, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, bare / name)
    with pytest.raises(InputError, match="tokenizer"):
        load_torch_model(bare, device="cpu")


# ---------------------------------------------------------------- one model


def test_perplexity_equals_transformers_own_loss_on_the_same_windows(tiny_model_dir, windows, base_run):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32).eval()
    total_nll = 0.0
    with torch.no_grad():
        for ids in windows.token_ids:
            input_ids = torch.tensor([ids])
            loss = model(input_ids=input_ids, labels=input_ids).loss  # mean over the CTX - 1 shifted targets
            total_nll += float(loss) * (CTX - 1)
    expected = math.exp(total_nll / (len(windows) * (CTX - 1)))
    assert base_run.perplexity == pytest.approx(expected, rel=1e-5)
    assert base_run.tokens == (CTX - 1,) * WINDOWS
    assert base_run.bits_per_byte == pytest.approx(total_nll / math.log(2) / sum(windows.byte_counts), rel=1e-5)


def test_perplexity_interval_agrees_with_a_bootstrap_over_windows(base_run):
    interval = base_run.interval
    assert interval.method == "delta" and interval.low < base_run.perplexity < interval.high
    nll, tokens = np.array(base_run.nll), np.array(base_run.tokens, dtype=float)
    boot = sps.bootstrap((nll, tokens), lambda a, b, axis=-1: a.sum(axis) / b.sum(axis), paired=True,
                         n_resamples=4000, method="percentile", rng=np.random.default_rng(0))
    low, high = math.exp(boot.confidence_interval.low), math.exp(boot.confidence_interval.high)
    width = high - low
    assert interval.low == pytest.approx(low, abs=0.35 * width)
    assert interval.high == pytest.approx(high, abs=0.35 * width)


def test_batch_size_does_not_change_the_figure(base, windows, base_run):
    one_by_one = measure_perplexity(base, windows, batch_size=1)
    assert one_by_one.perplexity == pytest.approx(base_run.perplexity, rel=1e-6)


def test_progress_is_reported_per_window(base, windows):
    class Recorder:
        def __init__(self):
            self.totals, self.advanced = [], 0

        @contextmanager
        def task(self, description, total=None):
            self.totals.append(total)
            yield self

        def advance(self, amount=1):
            self.advanced += amount

    recorder = Recorder()
    measure_perplexity(base, windows, batch_size=5, reporter=recorder)
    assert recorder.totals == [WINDOWS] and recorder.advanced == WINDOWS


def test_nan_weights_give_an_error_finding_not_a_figure(tiny_model_dir, windows, base_run, tmp_path):
    broken = tmp_path / "nan"
    shutil.copytree(tiny_model_dir, broken)
    weights = load_file(broken / "model.safetensors")
    weights["model.layers.0.mlp.down_proj.weight"][0, 0] = float("nan")
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    handle = load_torch_model(broken, device="cpu", dtype="float32")
    try:
        run = measure_perplexity(handle, windows)
    finally:
        handle.close()
    assert run.perplexity is None and run.interval is None and run.bits_per_byte is None
    assert [f.severity for f in run.findings] == [Severity.ERROR]
    assert run.findings[0].code == "nonfinite-logprobs"

    comparison = compare_perplexity(base_run, run)
    assert comparison.ratio is None and comparison.ratio_interval is None
    assert any(f.severity is Severity.ERROR and f.subject == "candidate" for f in comparison.findings)
    by_key = {m.key: m for m in comparison.metrics()}
    assert by_key["perplexity.ratio"].value is None
    assert by_key["perplexity.candidate"].value is None
    assert by_key["perplexity.base"].value == base_run.perplexity


# ---------------------------------------------------------------- base vs candidate


def test_model_against_itself_is_exactly_one_with_a_degenerate_interval(base_run):
    comparison = compare_perplexity(base_run, base_run)
    assert comparison.same_tokens and comparison.findings == ()
    assert comparison.ratio == 1.0
    assert (comparison.ratio_interval.low, comparison.ratio_interval.high) == (1.0, 1.0)
    assert comparison.ratio_interval.method == "paired-jackknife-t"
    assert comparison.bits_per_byte_ratio == 1.0


def test_ratio_against_another_model_is_paired_over_windows(other_dir, windows, base_run):
    handle = load_torch_model(other_dir, device="cpu", dtype="float32")
    try:
        run = measure_perplexity(handle, windows)
    finally:
        handle.close()
    comparison = compare_perplexity(base_run, run)
    assert comparison.ratio == pytest.approx(run.perplexity / base_run.perplexity, rel=1e-9)
    assert comparison.ratio != 1.0
    assert comparison.ratio_interval.low <= comparison.ratio <= comparison.ratio_interval.high
    assert comparison.ratio_interval.low < comparison.ratio_interval.high
    metrics = {m.key: m for m in comparison.metrics()}
    assert set(metrics) == {f"{name}.{part}" for name in ("perplexity", "bits_per_byte")
                            for part in ("base", "candidate", "ratio")}
    assert metrics["perplexity.ratio"].n == WINDOWS
    assert metrics["perplexity.ratio"].base == base_run.perplexity
    assert metrics["perplexity.ratio"].candidate == run.perplexity
    # Equal bytes on both sides: the bits-per-byte ratio is the ratio of total NLLs.
    assert comparison.bits_per_byte_ratio == pytest.approx(sum(run.nll) / sum(base_run.nll), rel=1e-9)


def test_runs_on_different_windows_cannot_be_compared(base, text, base_run):
    elsewhere = make_windows(base.tokenizer, text[5_000:], ctx=CTX, max_tokens=CTX * WINDOWS)
    with pytest.raises(IncompatibleModelsError, match="different text windows"):
        compare_perplexity(base_run, measure_perplexity(base, elsewhere))


# ---------------------------------------------------------------- different tokenizers


def test_same_tokenizer_matches(base, text):
    check = check_tokenizers_match(base.tokenizer, base.tokenizer, text)
    assert check.matches and check.finding() is None


def test_different_tokenizer_is_compared_in_bits_per_byte(tmp_path, base, text, windows, base_run):
    other = load_torch_model(write_tiny_model(tmp_path / "small-vocab", vocab_size=320), device="cpu", dtype="float32")
    try:
        check = check_tokenizers_match(base.tokenizer, other.tokenizer, text)
        assert not check.matches and "vocabularies differ" in check.reason
        with pytest.raises(IncompatibleModelsError, match="another tokenizer"):
            measure_perplexity(other, windows)  # base ids mean other tokens to this model
        aligned = align_windows(windows, other.tokenizer)
        run = measure_perplexity(other, aligned)
    finally:
        other.close()
    assert aligned.texts == windows.texts and aligned.token_ids != windows.token_ids
    comparison = compare_perplexity(base_run, run, check)
    assert not comparison.same_tokens
    assert comparison.ratio is None and comparison.ratio_interval is None
    assert comparison.bits_per_byte_ratio == pytest.approx(run.bits_per_byte / base_run.bits_per_byte, rel=1e-9)
    interval = comparison.bits_per_byte_ratio_interval
    assert interval.low <= comparison.bits_per_byte_ratio <= interval.high
    (finding,) = comparison.findings
    assert finding.severity is Severity.WARNING and finding.code == "tokenizer-mismatch"
    assert "vocabularies differ" in finding.message and "bits per byte" in finding.message
