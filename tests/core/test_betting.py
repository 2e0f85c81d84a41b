"""The betting confidence sequence: coverage at every look at once, from the first observation, and its width."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gate.core.betting import betting_path, betting_rise_path, betting_rise_p, betting_sequence

PAIRED = ([-1.0, 0.0, 1.0], [0.2, 0.5, 0.3])  # a paired 0/1 difference: mean +0.1, variance 0.49


def _draws(rng, size, values=PAIRED):
    return rng.choice(values[0], p=values[1], size=size)


def test_the_truth_stays_inside_at_every_sample_size_at_once_in_95_percent_of_runs():
    """Read after every one of 400 observations (no large-sample footing needed): a fixed 95% interval
    read that often misses in about half the runs."""
    rng = np.random.default_rng(3)
    runs, misses = 200, 0
    for _ in range(runs):
        low, high = betting_path(_draws(rng, 400), 1.0, 0.05)
        misses += bool(np.any((low > 0.1) | (high < 0.1)))
    assert misses / runs <= 0.05


def test_in_blocks_it_covers_the_mean_of_different_means():
    """One draw from each of three categories per block, their means -0.3, 0.1 and 0.5: the CS is for 0.1."""
    rng = np.random.default_rng(4)
    means = (-0.3, 0.1, 0.5)
    runs, misses = 200, 0
    for _ in range(runs):
        blocks = np.stack([rng.choice([-1.0, 1.0], p=[(1 - m) / 2, (1 + m) / 2], size=150) for m in means],
                          axis=1).reshape(-1)
        low, high = betting_path(blocks, 1.0, 0.05, block=3)
        misses += bool(np.any((low > 0.1) | (high < 0.1)))
        # Inside a block the CS holds its last block end's value.
        assert low[3] == low[4]
    assert misses / runs <= 0.05


def test_it_shrinks_with_observations_and_is_near_a_fixed_interval_in_width():
    rng = np.random.default_rng(5)
    draws = _draws(rng, 600)
    low, high = betting_path(draws, 1.0, 0.05)
    widths = high - low
    assert np.all(np.diff(widths) <= 1e-12)  # intersected over time: never widens
    # The price of reading it at every n; bets of up to 3/4 of the capital widen it late on draws as spread as
    # these (2.07x at 600 on average, against 1.76x with 1/2), the price of deciding a clear change sooner.
    for n, most in ((150, 2.0), (600, 2.25)):
        fixed = 2 * 1.96 * math.sqrt(draws[:n].var() / n)
        assert widths[n - 1] / fixed < most, (n, widths[n - 1], fixed)


def test_a_clear_fall_of_paired_family_means_is_decided_within_a_few_dozen_families():
    """Family means of two paired 0/1 differences, falling by 0.2 on average (the demo's pruned pair falls
    by 0.29): the upper end is below a +0.05 threshold after 40 families in most runs (83 of 100; bets of at
    most half the capital, the paper's other choice, manage 68)."""
    rng = np.random.default_rng(7)
    decided = 0
    for _ in range(100):
        units = _draws(rng, (40, 2), ([-1.0, 0.0, 1.0], [0.3, 0.6, 0.1])).mean(axis=1)  # mean -0.2
        decided += bool(betting_path(units, 1.0, 0.05)[1][-1] <= 0.05)
    assert decided >= 75


def test_an_exact_zero_narrows_about_zero():
    zeros = betting_sequence(np.zeros(200), 1.0, 0.05)
    assert zeros.low == pytest.approx(-zeros.high) and 0 < zeros.high < 0.05
    assert betting_sequence(np.zeros(50), 1.0, 0.05).high > zeros.high


def test_bounds_stay_in_range_and_nothing_gives_none():
    assert betting_sequence(np.array([]), 1.0, 0.05) is None
    top = betting_sequence(np.full(40, 2.0), 2.0, 0.05)
    assert top.high == 2.0 and top.low > 1.0
    assert betting_rise_p(np.array([]), 1.0, 0.05, 0.05) == 1.0


def test_the_rise_p_value_is_valid_at_the_threshold_and_small_for_a_clear_rise():
    rng = np.random.default_rng(6)
    at_threshold = ([-1.0, 0.0, 1.0], [0.2, 0.55, 0.25])  # mean +0.05
    wrong = sum(bool(np.any(betting_rise_path(_draws(rng, 400, at_threshold), 1.0, 0.05, 0.05) <= 0.05))
                for _ in range(300))
    assert wrong / 300 <= 0.05
    rise = _draws(rng, 200, ([-1.0, 0.0, 1.0], [0.05, 0.45, 0.5]))  # mean +0.45
    path = betting_rise_path(rise, 1.0, 0.05, 0.05)
    assert path[-1] < 1e-4 and np.all(np.diff(path) <= 0)  # anytime: the smallest so far
