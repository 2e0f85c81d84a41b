"""Perplexity scored in turns until the policy decides: tiny real models, the default policy's rule."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from scipy import stats as sps

from gate.core.progress import NULL_REPORTER
from gate.core.stats import paired_jackknife_ratio
from gate.measurements.base import PairContext
from gate.measurements.check_options import CheckOptions
from gate.measurements.options import PerplexityOptions
from gate.measurements.perplexity import _perplexity_ratio, measure_perplexity
from gate.measurements.perplexity_step import DECIDED, EXHAUSTED, PerplexityStep, look_points
from gate.policy.loader import load_policy
from gate.policy.looks import look_judge
from gate.runtime.torch_backend import load_torch_model

CTX = 32
WINDOWS = 20  # looks after 8, 16 and 20


@pytest.fixture(scope="module")
def near_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with its weights nudged by 0.1%: perplexity within a hair of the base's."""
    path = tmp_path_factory.mktemp("near") / "model"
    shutil.copytree(tiny_model_dir, path)
    weights = load_file(path / "model.safetensors")
    generator = torch.Generator().manual_seed(3)
    save_file({name: t + 1e-3 * t.abs().mean() * torch.randn(t.shape, generator=generator)
               for name, t in weights.items()}, path / "model.safetensors")
    return path


@pytest.fixture(scope="module")
def far_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with its final norm tripled: sharper wrong guesses, perplexity far above the base's in
    every window."""
    path = tmp_path_factory.mktemp("far") / "model"
    shutil.copytree(tiny_model_dir, path)
    weights = load_file(path / "model.safetensors")
    weights["model.norm.weight"] = 3 * weights["model.norm.weight"]
    save_file(weights, path / "model.safetensors")
    return path


def _plan(tokenizer, policy="default", **settings):
    options = CheckOptions().with_options(PerplexityOptions(ctx=CTX, max_tokens=CTX * WINDOWS, **settings))
    return PerplexityStep().plan(tokenizer, options, look_judge(load_policy(policy), "perplexity"))


class _Loads:
    """Loads the two checkpoints from disk and counts the loads, as the orchestration's `load` does."""

    def __init__(self, base, candidate):
        self.paths = {"base": base, "candidate": candidate}
        self.count = {"base": 0, "candidate": 0}

    def __call__(self, role):
        self.count[role] += 1
        return load_torch_model(self.paths[role], device="cpu", dtype="float32")


def _run(plan, base, candidate, **context):
    loads = _Loads(base, candidate)
    step = PerplexityStep()
    base_run, candidate_run = step.run_pair(PairContext(load=loads, **context), plan, NULL_REPORTER)
    return step, base_run, candidate_run, loads


def test_looks_double_from_eight_and_end_at_the_last_window():
    assert look_points(32) == (8, 16, 32)
    assert look_points(20) == (8, 16, 20)
    assert look_points(8) == (8,)
    assert look_points(4) == (4,)


def test_a_far_candidate_fails_at_the_first_look_on_the_same_figures_as_a_fixed_run(tiny_model_dir, far_dir,
                                                                                     tiny_tokenizer):
    plan = _plan(tiny_tokenizer)
    assert plan.looks == (8, 16, 20) and plan.level == pytest.approx(1 - 0.05 / 3)
    step, base_run, candidate, _ = _run(plan, tiny_model_dir, far_dir)
    assert (candidate.stop, candidate.looks, len(candidate.scored.run)) == (DECIDED, (8,), 8)
    result = step.compare(base_run, candidate, plan)
    ratio = next(m for m in result.metrics if m.key == "perplexity.ratio")
    assert ratio.n == 8 and ratio.interval.low > 1.10 and ratio.interval.level == pytest.approx(plan.level)
    # The scores are exactly a fixed run's over the first 8 windows.
    handle = load_torch_model(far_dir, device="cpu", dtype="float32")
    try:
        fixed = measure_perplexity(handle, plan.windows.first(8))
    finally:
        handle.close()
    assert candidate.scored.run.nll == pytest.approx(fixed.nll, rel=1e-6)
    assert result.result.windows == 8 and result.result.windows_planned == WINDOWS
    said = next(f for f in result.findings if f.code == "perplexity-sequential")
    assert "decided after 8 of 20 windows" in said.message


def test_a_near_candidate_passes_at_the_first_look(tiny_model_dir, near_dir, tiny_tokenizer):
    plan = _plan(tiny_tokenizer)
    _, _, candidate, _ = _run(plan, tiny_model_dir, near_dir)
    assert (candidate.stop, len(candidate.scored.run)) == (DECIDED, 8)


def test_without_looks_every_window_is_scored_at_95(tiny_model_dir, near_dir, tiny_tokenizer):
    for plan in (_plan(tiny_tokenizer, sequential=False), _plan(tiny_tokenizer, policy="audit")):
        assert plan.looks == () and plan.level == 0.95
        step, base_run, candidate, _ = _run(plan, tiny_model_dir, near_dir)
        assert (candidate.stop, candidate.looks, len(candidate.scored.run)) == (EXHAUSTED, (), WINDOWS)
        assert not any(f.code == "perplexity-sequential" for f in step.compare(base_run, candidate, plan).findings)


def test_a_cached_base_prefix_is_reused_and_extended(tiny_model_dir, near_dir, far_dir, tiny_tokenizer):
    plan = _plan(tiny_tokenizer)
    step, first_base, _, _ = _run(plan, tiny_model_dir, far_dir)  # decided at 8: the base scored 8
    assert len(first_base.run) == 8
    # A candidate the rule cannot decide early (the policy needs 16 windows) reads those 8 and adds the rest.
    plan16 = dataclasses.replace(plan, judge=look_judge(_policy_needing(16), "perplexity"))
    _, extended, candidate, loads = _run(plan16, tiny_model_dir, near_dir, cached_base=first_base)
    assert len(candidate.scored.run) == 16 and len(extended.run) == 16
    assert extended.run.nll[:8] == first_base.run.nll
    assert step.supersedes(extended, first_base) and not step.supersedes(first_base, extended)
    assert loads.count == {"base": 1, "candidate": 1}


def _policy_needing(windows: int):
    policy = load_policy("default")
    rules = [r.model_copy(update={"min_n": windows}) if r.metric == "perplexity.ratio" else r for r in policy.rules]
    return policy.model_copy(update={"rules": rules})


def test_when_both_do_not_fit_the_base_scores_every_window_before_the_candidate_loads(tiny_model_dir, near_dir,
                                                                                      tiny_tokenizer, monkeypatch):
    plan = _plan(tiny_tokenizer)
    _, held, held_candidate, _ = _run(plan, tiny_model_dir, near_dir)
    monkeypatch.setattr("gate.measurements.latency_step.second_copy_fits", lambda handle: False)
    _, staged, candidate, loads = _run(plan, tiny_model_dir, near_dir)
    assert len(staged.run) == WINDOWS and loads.count == {"base": 1, "candidate": 1}
    assert candidate.scored.run.nll == held_candidate.scored.run.nll
    assert staged.run.nll[:8] == held.run.nll


def test_a_byte_identical_candidate_is_not_loaded(tiny_model_dir, tiny_tokenizer):
    plan = _plan(tiny_tokenizer)
    step, base_run, candidate, loads = _run(plan, tiny_model_dir, tiny_model_dir, same_weights=True)
    assert loads.count == {"base": 1, "candidate": 0} and candidate.stop == DECIDED
    assert step.compare(base_run, candidate, plan).result.comparison.ratio == 1.0


def test_the_jackknife_t_interval_keeps_its_level_at_eight_windows():
    """Log ratios of 8 windows with a spread like real ones (sd 0.05): the 98.3% interval covers the true ratio
    in at least 97.5% of 2,000 draws, and the 95% one in at least 93.5%."""
    rng = np.random.default_rng(7)
    tokens = np.full(8, 511.0)
    covered = {0.95: 0, 1 - 0.05 / 3: 0}
    for _ in range(2000):
        base_nll = tokens * rng.normal(3.0, 0.3, size=8)
        candidate_nll = base_nll + tokens * rng.normal(0.1, 0.05, size=8)
        for level in covered:
            interval = paired_jackknife_ratio(np.stack([base_nll, tokens]), np.stack([candidate_nll, tokens]),
                                              _perplexity_ratio, level=level)
            covered[level] += interval.low <= np.exp(0.1) <= interval.high
    assert covered[0.95] / 2000 >= 0.935
    assert covered[1 - 0.05 / 3] / 2000 >= 0.975


def test_the_jackknife_t_interval_of_a_mean_is_the_t_interval():
    """For equal token counts the log ratio is a mean of per-window differences: the jackknife's standard error is
    then exactly the sample standard error, and the interval Student's."""
    rng = np.random.default_rng(1)
    tokens = np.full(10, 100.0)
    base_nll, candidate_nll = tokens * rng.normal(3, 0.2, 10), tokens * rng.normal(3.2, 0.2, 10)
    interval = paired_jackknife_ratio(np.stack([base_nll, tokens]), np.stack([candidate_nll, tokens]),
                                      _perplexity_ratio, level=0.9)
    differences = (candidate_nll - base_nll) / 100
    half = sps.t.ppf(0.95, 9) * differences.std(ddof=1) / np.sqrt(10)
    assert np.log(interval.low) == pytest.approx(differences.mean() - half, rel=1e-9)
    assert np.log(interval.high) == pytest.approx(differences.mean() + half, rel=1e-9)


def test_the_workload_names_the_first_look_as_the_least_a_decided_run_scores(tiny_tokenizer):
    looking = PerplexityStep().workload(_plan(tiny_tokenizer), tiny_tokenizer)
    assert looking.stops_early and looking.first_look.words == "8 windows"
    assert looking.first_look.per_model.tokens * WINDOWS == looking.per_model.tokens * 8  # equal windows
    fixed = PerplexityStep().workload(_plan(tiny_tokenizer, sequential=False), tiny_tokenizer)
    assert not fixed.stops_early and fixed.first_look is None
