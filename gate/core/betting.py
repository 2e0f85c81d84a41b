"""Confidence sequences for a bounded mean by betting, valid at every sample size.

A confidence sequence (CS) covers the true mean at every sample size at once
with probability 1 - alpha, so it may be looked at after every batch and the
asking stopped whenever it decides. This one is the hedged-capital CS of
Waudby-Smith and Ramdas ("Estimating means of bounded random variables by
betting", JRSS-B 2024, Theorem 3 with the predictable plug-in bets of
eq. 26), for independent observations in a known range: for each candidate
mean m, a gambler who bets on the observations landing above m (and one who
bets on below) grows their capital as a nonnegative martingale when m is the
truth; Ville's inequality says that capital reaches 1/alpha with probability at
most alpha, ever. The CS is the set of m where it has not.

Unlike a normal-approximation sequence it needs no large-sample footing: it is
valid from the first observation, which is what lets a rule decide on the few
hundred items a CPU asks in minutes. `confseq` (its authors' package) ships only
as C++ source with plotting and test libraries as run-time dependencies, so the
estimator is written out here (about thirty lines of numpy), checked against
simulations in tests/core/test_betting.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GRID = 1000  # candidate means on (0, 1): the bounds are rounded outwards to this grid
# The largest fraction of capital a bet may risk: the paper's c, the larger of its two suggestions (1/2, 3/4);
# see docs/measurements.md §6 for what it buys.
TRUNCATION = 0.75


@dataclass(frozen=True)
class BettingSequence:
    """The CS after all the observations, on the observations' own scale."""

    low: float
    high: float


def _to_unit(values: np.ndarray, span: float) -> np.ndarray:
    return np.clip((np.asarray(values, dtype=float) + span) / (2 * span), 0.0, 1.0)


def _bets(x: np.ndarray, alpha: float) -> np.ndarray:
    """Predictable plug-in bet sizes: bet t uses only observations before t (eq. 26)."""
    t = np.arange(1, len(x) + 1)
    mean = (0.5 + np.cumsum(x)) / (t + 1)  # mu_t, shrunk towards 1/2
    squares = np.cumsum((x - mean) ** 2)
    variance = (0.25 + np.concatenate([[0.0], squares[:-1]])) / t  # sigma^2_{t-1}
    return np.sqrt(2 * math.log(2 / alpha) / (variance * t * np.log1p(t)))


def _log_capitals(x: np.ndarray, means: np.ndarray, alpha: float, block: int) -> tuple[np.ndarray, np.ndarray]:
    """log K+ and log K- after every observation (rows) for each candidate mean (columns); each bet is sized
    at the start of its block of `block` observations."""
    bets = _bets(x, alpha)[np.arange(len(x)) // block * block, None]
    above = np.minimum(bets, TRUNCATION / means[None, :])
    below = np.minimum(bets, TRUNCATION / (1 - means[None, :]))
    gap = x[:, None] - means[None, :]
    return np.cumsum(np.log1p(above * gap), axis=0), np.cumsum(np.log1p(-below * gap), axis=0)


def _at_block_ends(rows: np.ndarray, block: int, before: float) -> np.ndarray:
    """Each row replaced by the last complete block's (`before` until the first block ends)."""
    if block == 1:
        return rows
    ends = (np.arange(len(rows)) + 1) // block * block - 1
    return np.where((ends >= 0).reshape((-1,) + (1,) * (rows.ndim - 1)), rows[np.maximum(ends, 0)], before)


def betting_path(values: np.ndarray, span: float, alpha: float, block: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the (1 - alpha) CS after each of `values`, each within [-span, span].

    With `block` 1 the values are independent draws with one mean. With
    `block` K they come in blocks of K independent draws of K different means
    (one BBQ family from each of K categories) and the CS is for the mean of
    those K means: bets fixed for a block make the capital a supermartingale
    at block ends (the product of a block's K expected factors is at most
    1 when their means average to m, by the AM-GM inequality), so the CS is
    read at block ends only.

    The capital bets half on each side (the hedge), and the CS is intersected
    over time, so it never widens as observations arrive.
    """
    x = _to_unit(values, span)
    if len(x) == 0:
        return np.empty(0), np.empty(0)
    grid = np.linspace(0.0, 1.0, GRID + 1)
    above, below = _log_capitals(x, grid[1:-1], alpha, block)
    hedged = _at_block_ends(np.logaddexp(above, below) + math.log(0.5), block, -np.inf)
    inside = np.logical_and.accumulate(hedged < math.log(1 / alpha), axis=0)
    first = np.argmax(inside, axis=1)  # of the interior means: grid index first + 1
    last = inside.shape[1] - 1 - np.argmax(inside[:, ::-1], axis=1)
    # Between the last grid mean inside and the first outside the exact bound is unknown: round outwards.
    # (A row with no grid mean inside, possible only between grid points, keeps the whole range.)
    empty = ~inside.any(axis=1)
    low = np.where(empty, 0.0, grid[first])
    high = np.where(empty, 1.0, grid[last + 2])
    return low * 2 * span - span, high * 2 * span - span


def betting_sequence(values: np.ndarray, span: float, alpha: float, block: int = 1) -> BettingSequence | None:
    """The CS after all of `values` (see `betting_path`), or None when there are none."""
    low, high = betting_path(values, span, alpha, block)
    return BettingSequence(float(low[-1]), float(high[-1])) if len(low) else None


def betting_rise_path(values: np.ndarray, span: float, above: float, alpha: float, block: int = 1) -> np.ndarray:
    """Anytime-valid p-values against "the mean is at most `above`", after each of `values`: 1 / the most a
    gambler betting on a rise has held so far (Ville). Valid at any stopping time, so Holm may combine several."""
    x = _to_unit(values, span)
    threshold = (above + span) / (2 * span)
    if threshold >= 1:
        return np.ones(len(x))
    if threshold <= 0:
        return np.where(np.cumsum(x > 0) > 0, 0.0, 1.0)
    rising, _ = _log_capitals(x, np.array([threshold]), alpha, block)
    rising = _at_block_ends(rising[:, 0], block, 0.0)
    return np.minimum(1.0, np.exp(-np.maximum.accumulate(np.maximum(rising, 0.0))))


def betting_rise_p(values: np.ndarray, span: float, above: float, alpha: float, block: int = 1) -> float:
    """The p-value of a rise beyond `above` after all of `values` (see `betting_rise_path`); 1 when there are none."""
    path = betting_rise_path(values, span, above, alpha, block)
    return float(path[-1]) if len(path) else 1.0
