"""Paired statistics checked against published values, scipy and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from gate.core.errors import MeasurementError
from gate.core.stats import (
    crossed_bootstrap,
    holm,
    mcnemar_exact,
    newcombe_paired_interval,
    paired_bootstrap,
    seed_from_data,
    wilson_interval,
)


# --- Wilson --------------------------------------------------------------

def _wilson_by_formula(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (81, 263), (1, 1), (500, 1000)])
def test_wilson_matches_the_closed_form(k, n):
    interval = wilson_interval(k, n)
    low, high = _wilson_by_formula(k, n)
    assert interval.low == pytest.approx(low, abs=1e-12)
    assert interval.high == pytest.approx(high, abs=1e-12)
    assert interval.method == "wilson" and interval.level == 0.95


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99, 1 - 0.05 / 6])
@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 38), (5, 38), (38, 38), (81, 263), (4_000, 11_956)])
def test_wilson_agrees_with_scipy(k, n, level):
    # scipy's own Wilson interval (it also runs a binomial test, which is why gate computes the form itself).
    reference = sps.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    interval = wilson_interval(k, n, level)
    assert interval.low == pytest.approx(reference.low, abs=1e-12)
    assert interval.high == pytest.approx(reference.high, abs=1e-12)


def test_wilson_known_value():
    # 81 of 263, the worked example of Newcombe (1998) for a single proportion -> 0.2553 to 0.3662.
    interval = wilson_interval(81, 263)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.2553, 0.3662)


def test_wilson_undefined_without_trials_and_rejects_bad_counts():
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(5, 3)
    with pytest.raises(ValueError):
        wilson_interval(-1, 3)


def test_wilson_wider_at_higher_level():
    assert wilson_interval(30, 100, 0.99).low < wilson_interval(30, 100, 0.95).low


# --- Newcombe paired ------------------------------------------------------

def test_newcombe_paired_published_value():
    # Cavo et al. 2012 as in Fagerland, Lydersen & Laake, "Statistical analysis
    # of contingency tables", ch. 8: p1 - p2 = -0.0621 (-0.1186 to -0.0046).
    # Our interval is second minus first, so the signs flip.
    interval = newcombe_paired_interval(59, 6, 16, 80)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.0046, 0.1186)
    assert interval.method == "newcombe"


def test_newcombe_paired_is_antisymmetric_and_contains_the_estimate():
    forward = newcombe_paired_interval(20, 3, 11, 40)
    backward = newcombe_paired_interval(20, 11, 3, 40)
    assert forward.low == pytest.approx(-backward.high)
    assert forward.high == pytest.approx(-backward.low)
    assert forward.low < (11 - 3) / 74 < forward.high


def test_newcombe_paired_handles_degenerate_tables():
    all_agree = newcombe_paired_interval(0, 0, 0, 50)
    assert all_agree.low <= 0.0 <= all_agree.high
    assert -1.0 <= all_agree.low and all_agree.high <= 1.0
    flipped = newcombe_paired_interval(0, 0, 30, 0)
    assert 0 < flipped.low <= flipped.high == 1.0
    with pytest.raises(ValueError):
        newcombe_paired_interval(0, 0, 0, 0)


def test_newcombe_paired_covers_in_simulation():
    rng = np.random.default_rng(7)
    cell_probabilities = np.array([0.3, 0.08, 0.15, 0.47])  # true change 0.07
    covered = 0
    trials = 400
    for counts in rng.multinomial(200, cell_probabilities, size=trials):
        interval = newcombe_paired_interval(*counts)
        covered += interval.low <= 0.07 <= interval.high
    assert 0.92 <= covered / trials <= 0.99


# --- McNemar --------------------------------------------------------------

def test_mcnemar_exact_known_values():
    # 0 vs 5 discordant: 2 * 0.5**5 = 0.0625.
    assert mcnemar_exact(0, 5) == pytest.approx(0.0625)
    # 6 vs 16 (the Cavo table): exact two-sided p = 0.0525.
    assert mcnemar_exact(6, 16) == pytest.approx(0.052478, abs=1e-6)
    assert mcnemar_exact(16, 6) == mcnemar_exact(6, 16)


def test_mcnemar_exact_matches_binomial_sum_and_edge_cases():
    b, c = 3, 12
    tail = sum(math.comb(b + c, k) for k in range(0, min(b, c) + 1)) / 2 ** (b + c)
    assert mcnemar_exact(b, c) == pytest.approx(min(1.0, 2 * tail))
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(4, 4) == 1.0


# --- Holm -----------------------------------------------------------------

def _holm_brute_force(pvalues):
    """Holm via its definition: reject H_(i) iff all p_(j) <= alpha/(m-j) for j <= i;
    the adjusted p is the smallest alpha at which H_i is rejected."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    for rank, index in enumerate(order):
        adjusted[index] = min(1.0, max((m - j) * pvalues[order[j]] for j in range(rank + 1)))
    return adjusted


def test_holm_known_value():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_matches_brute_force_on_random_inputs():
    rng = np.random.default_rng(3)
    for m in (1, 2, 5, 11):
        p = rng.uniform(0, 0.2, size=m).tolist()
        assert holm(p) == pytest.approx(_holm_brute_force(p))


def test_holm_edge_cases():
    assert holm([]) == []
    assert holm([0.3]) == [0.3]
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    with pytest.raises(ValueError):
        holm([0.1, float("nan")])


# --- paired bootstrap -----------------------------------------------------

def _mean_difference(base, candidate, axis=-1):
    return np.mean(candidate - base, axis=axis)


def test_seed_from_data_is_stable_and_sensitive():
    a = np.arange(10.0)
    assert seed_from_data(a) == seed_from_data(a.copy())
    assert seed_from_data(a) != seed_from_data(a + 1e-9)
    assert seed_from_data(a) != seed_from_data(a.astype(np.float32))
    assert 0 <= seed_from_data(a) < 2**63


def test_paired_bootstrap_is_reproducible_without_a_seed():
    rng = np.random.default_rng(1)
    base = rng.normal(size=50)
    candidate = base + rng.normal(0.1, 0.05, size=50)
    first = paired_bootstrap(base, candidate, _mean_difference)
    second = paired_bootstrap(base.copy(), candidate.copy(), _mean_difference)
    assert first == second
    assert first.method == "paired-bootstrap"
    assert first.low < 0.1 < first.high


def test_paired_bootstrap_loop_and_vectorised_statistics_agree():
    rng = np.random.default_rng(2)
    base = rng.normal(size=40)
    candidate = base + rng.normal(0.2, 0.3, size=40)
    vectorised = paired_bootstrap(base, candidate, _mean_difference, n_resamples=300, seed=5)
    looped = paired_bootstrap(base, candidate, lambda b, c: float(np.mean(c - b)), n_resamples=300, seed=5)
    assert vectorised.low == pytest.approx(looped.low)
    assert vectorised.high == pytest.approx(looped.high)


def test_paired_bootstrap_is_narrower_than_an_unpaired_one():
    # The point of pairing: shared per-item difficulty cancels out.
    rng = np.random.default_rng(4)
    difficulty = rng.normal(0, 5, size=200)
    base = difficulty + rng.normal(0, 0.1, size=200)
    candidate = difficulty + 0.3 + rng.normal(0, 0.1, size=200)
    paired = paired_bootstrap(base, candidate, _mean_difference)
    unpaired = sps.bootstrap((candidate,), np.mean, rng=np.random.default_rng(0)).confidence_interval
    assert paired.high - paired.low < (unpaired.high - unpaired.low) / 10


def test_paired_bootstrap_accepts_multi_field_records():
    # Per-window (nll sum, token count): the perplexity ratio of token-weighted means.
    rng = np.random.default_rng(5)
    tokens = rng.integers(100, 512, size=64).astype(float)
    base = np.stack([tokens * rng.normal(3.0, 0.2, size=64), tokens])
    candidate = np.stack([base[0] * 1.05, tokens])

    def perplexity_ratio(b, c, axis=-1):
        return np.exp(c[0].sum(axis) / c[1].sum(axis) - b[0].sum(axis) / b[1].sum(axis))

    interval = paired_bootstrap(base, candidate, perplexity_ratio)
    point = perplexity_ratio(base, candidate)
    assert interval.low <= point <= interval.high
    assert interval.low > 1.0


def test_paired_bootstrap_covers_the_true_value_in_simulation():
    rng = np.random.default_rng(11)
    covered = 0
    trials = 200
    for _ in range(trials):
        base = rng.exponential(1.0, size=80)
        candidate = base + rng.normal(0.25, 1.0, size=80)
        interval = paired_bootstrap(base, candidate, _mean_difference, n_resamples=500)
        covered += interval.low <= 0.25 <= interval.high
    assert 0.88 <= covered / trials <= 0.99


def test_paired_bootstrap_fails_closed():
    with pytest.raises(MeasurementError):
        paired_bootstrap(np.array([1.0]), np.array([2.0]), _mean_difference)
    with pytest.raises(MeasurementError):
        paired_bootstrap(np.ones(5), np.full(5, np.nan), _mean_difference)
    with pytest.raises(ValueError):
        paired_bootstrap(np.ones(5), np.ones(6), _mean_difference)


def test_paired_bootstrap_on_identical_models_is_a_point():
    same = np.linspace(1, 2, 30)
    interval = paired_bootstrap(same, same, _mean_difference)
    assert interval.low == interval.high == 0.0


# --- crossed bootstrap (latency: prompts x rounds) ------------------------

def _ratio(base_sums, candidate_sums):
    return candidate_sums[0] / base_sums[0]


def _tables_with_load_effect(rng, prompts: int, rounds: int, load_sd: float, noise_sd: float = 0.01):
    """Same model twice: per-prompt times, a per-load factor for each copy, and per-call noise; true ratio 1."""
    seconds = rng.uniform(1, 3, prompts)[:, None]
    tables = []
    for _ in range(2):
        load = 1 + load_sd * rng.standard_normal(rounds)
        tables.append(seconds * load * (1 + noise_sd * rng.standard_normal((prompts, rounds))))
    return tables


def test_crossed_bootstrap_covers_one_despite_a_load_effect_where_prompts_alone_do_not():
    rng = np.random.default_rng(7)
    crossed = prompts_only = 0
    trials = 200
    for trial in range(trials):
        base, candidate = _tables_with_load_effect(rng, prompts=10, rounds=4, load_sd=0.02)
        interval = crossed_bootstrap(base, candidate, _ratio, n_resamples=400, seed=trial)
        crossed += interval.low <= 1.0 <= interval.high
        summed = paired_bootstrap(base.sum(axis=1), candidate.sum(axis=1),
                                  lambda b, c, axis=-1: c.sum(axis) / b.sum(axis), n_resamples=400, seed=trial)
        prompts_only += summed.low <= 1.0 <= summed.high
    assert crossed / trials >= 0.9  # 94% measured
    assert prompts_only / trials < 0.5  # the load-to-load spread is invisible to a bootstrap over prompts


def test_crossed_bootstrap_contains_the_ratio_of_sums_and_is_reproducible():
    rng = np.random.default_rng(3)
    base, candidate = _tables_with_load_effect(rng, prompts=6, rounds=3, load_sd=0.01)
    candidate = candidate * 1.2
    first = crossed_bootstrap(base, candidate, _ratio)
    assert first == crossed_bootstrap(base, candidate, _ratio)
    assert first.low < candidate.sum() / base.sum() < first.high
    assert first.method == "crossed-bootstrap-t" and first.level == 0.95
    assert crossed_bootstrap(base, candidate, _ratio, level=0.99).high > first.high


def test_crossed_bootstrap_with_one_column_and_identical_tables():
    rng = np.random.default_rng(4)
    base, candidate = _tables_with_load_effect(rng, prompts=8, rounds=1, load_sd=0.0)
    interval = crossed_bootstrap(base, candidate, _ratio)
    assert interval.low < 1.0 < interval.high < 1.1
    same = crossed_bootstrap(base, base.copy(), _ratio)
    assert same.low == same.high == pytest.approx(1.0)


def test_crossed_bootstrap_fails_closed():
    with pytest.raises(MeasurementError, match="2 rows"):
        crossed_bootstrap(np.ones((1, 3)), np.ones((1, 3)), _ratio)
    with pytest.raises(MeasurementError, match="positive finite"):
        crossed_bootstrap(np.ones((3, 2)), np.zeros((3, 2)), _ratio)
    with pytest.raises(ValueError):
        crossed_bootstrap(np.ones((3, 2)), np.ones((3, 3)), _ratio)
