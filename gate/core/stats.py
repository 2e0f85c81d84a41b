"""Paired statistics for comparing a candidate with its base.

Both models see the same items and the same text windows, so every interval
and test here is paired: the per-item differences carry far less noise than
two separate intervals would.
"""

from __future__ import annotations

import functools
import hashlib
import math
import warnings
from typing import Any, Callable, Sequence

import numpy as np
from scipy import stats as sps

from gate.core.errors import MeasurementError
from gate.core.result import Interval

# Resampled elements held in memory at once; keeps a 12k-item bootstrap small.
_BOOTSTRAP_BATCH_ELEMENTS = 4_000_000


def wilson_interval(successes: int, n: int, level: float = 0.95) -> Interval | None:
    """Wilson score interval for a rate `successes / n`; None when n == 0."""
    _check_counts(successes=successes, n=n)
    if successes > n:
        raise ValueError(f"successes ({successes}) exceed the number of trials ({n})")
    if n == 0:
        return None
    # The closed form, as scipy's binomtest(...).proportion_ci(method="wilson") gives it to the last bit, without
    # the test it also runs: a sequential look computes ninety of these, and the test was most of its time.
    z = _normal_quantile(0.5 + level / 2)
    p, z2 = successes / n, z * z
    shrink = 1 + z2 / n
    center = (p + z2 / (2 * n)) / shrink
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / shrink
    return Interval(max(0.0, center - half), min(1.0, center + half), level, "wilson")


@functools.lru_cache(maxsize=64)
def _normal_quantile(probability: float) -> float:
    return float(sps.norm.ppf(probability))


def newcombe_paired_interval(a: int, b: int, c: int, d: int, level: float = 0.95) -> Interval:
    """Interval for the change in a paired rate (Newcombe 1998, method 10).

    The 2x2 table of paired outcomes, first = base, second = candidate:

        a: both succeed      b: only the first succeeds
        c: only the second   d: neither succeeds

    The interval is for p_second - p_first = (c - b) / n, i.e. candidate minus
    base: positive when the candidate succeeds (e.g. picks the stereotype) more.
    """
    _check_counts(a=a, b=b, c=c, d=d)
    n = a + b + c + d
    if n == 0:
        raise ValueError("a paired interval needs at least one pair")
    p_first, p_second = (a + b) / n, (a + c) / n
    first = wilson_interval(a + b, n, level)
    second = wilson_interval(a + c, n, level)
    phi = _newcombe_phi(a, b, c, d)
    # Square-and-add of the Wilson half-widths, correlated through phi.
    below = math.sqrt(max(0.0, (p_second - second.low) ** 2 + (first.high - p_first) ** 2
                          - 2 * phi * (p_second - second.low) * (first.high - p_first)))
    above = math.sqrt(max(0.0, (second.high - p_second) ** 2 + (p_first - first.low) ** 2
                          - 2 * phi * (second.high - p_second) * (p_first - first.low)))
    difference = p_second - p_first
    return Interval(max(-1.0, difference - below), min(1.0, difference + above), level, "newcombe")


def _newcombe_phi(a: int, b: int, c: int, d: int) -> float:
    """Newcombe's corrected correlation between the two paired rates."""
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    if margins == 0:
        return 0.0
    n = a + b + c + d
    cross = a * d - b * c
    if cross > n / 2:
        return (cross - n / 2) / math.sqrt(margins)
    if cross >= 0:
        return 0.0
    return cross / math.sqrt(margins)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pair counts."""
    _check_counts(b=b, c=c)
    if b + c == 0:
        return 1.0
    return float(sps.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)


def seed_from_data(*arrays: np.ndarray) -> int:
    """A seed fixed by the data itself, so a rerun on the same data agrees."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(str(array.dtype).encode())
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return int.from_bytes(digest.digest()[:8], "little") >> 1


# --- anytime-valid confidence sequences for bootstrapped figures ------------
#
# A confidence sequence (CS) covers the true value at every sample size at
# once: P(some n has the value outside its interval) <= alpha. Figures that
# are means of one bounded value per item get an exact, non-asymptotic one
# (`gate.core.betting`); ratio figures, whose standard error comes from the
# bootstrap at the end of a sequential run, get this one: the asymptotic CS of Waudby-Smith, Arnold,
# Wu, Howard and Ramdas ("Time-uniform central limit theory and asymptotic
# confidence sequences", Annals of Statistics 2024, eq. 2.4): the normal
# mixture boundary applied to the running mean with its estimated variance.
# `rho` tunes where it is tightest; it is fixed before any data (from alpha,
# a planning sample size and a reference variance), as validity requires.

CS_REFERENCE_VARIANCE = 0.25  # of one paired difference of 0/1 answers, near its usual size
CS_HORIZON = 200  # sample size (per figure) where the sequence is tuned to be tightest (see docs/measurements.md)


def cs_rho(alpha: float, horizon: float = CS_HORIZON, reference_variance: float = CS_REFERENCE_VARIANCE) -> float:
    """The mixture's tuning constant, optimal at `horizon` observations of the reference variance."""
    c = -2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)
    return math.sqrt(c / (horizon * reference_variance))


def _mixture(n: int, variance: float, alpha: float, horizon: float) -> tuple[float, float]:
    """(v, spread) of the normal-mixture boundary: v = n sigma^2 rho^2 + 1, spread = 2 v / (n rho)^2."""
    rho2 = cs_rho(alpha, horizon) ** 2
    v = n * max(variance, 0.0) * rho2 + 1
    return v, 2 * v / (n * n * rho2)


def cs_radius(n: int, variance: float, alpha: float, horizon: float = CS_HORIZON) -> float:
    """Half-width of the two-sided (1 - alpha) asymptotic CS after `n` observations of this variance."""
    if n < 1:
        return math.inf
    v, spread = _mixture(n, variance, alpha, horizon)
    return math.sqrt(spread * math.log(math.sqrt(v) / alpha))


def cs_p_value(mean: float, n: int, variance: float, alpha: float = 0.05, horizon: float = CS_HORIZON) -> float:
    """Anytime-valid one-sided p-value against "no rise" (true mean <= 0).

    The smallest alpha' at which the CS (with rho fixed at `alpha`'s) lies
    wholly above 0; valid at any stopping time, so Holm may combine several.
    """
    if n < 1 or not mean > 0:
        return 1.0
    v, spread = _mixture(n, variance, alpha, horizon)
    return float(min(1.0, math.sqrt(v) * math.exp(-mean * mean / spread)))


def paired_bootstrap(
    base: np.ndarray,
    candidate: np.ndarray,
    statistic: Callable[..., float],
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int | None = None,
    method: str = "percentile",
) -> Interval:
    """Interval of `statistic(base, candidate)` under paired resampling.

    Items (windows, prompts, questions) lie along the last axis of both arrays
    and are resampled together. Per-item records with several fields use shape
    (fields, n). A statistic that takes an `axis` keyword (like `np.mean`) is
    evaluated on all resamples at once; one without it is called per resample.
    The seed defaults to one derived from the data, so reruns agree.

    `method="percentile"` reads the interval off the resampled statistics.
    `method="normal"` takes the point estimate plus or minus z times their
    standard deviation: for the extreme levels of a sequential test's interim
    looks (99.9%), where 2,000 resamples put too few in each tail to read a
    percentile but estimate a standard error to within about 2%.
    `method="cs"` gives the anytime-valid confidence sequence at this sample
    size (`cs_radius`), with the per-item variance n * SE^2 from the
    resamples: valid however the number of items was chosen.
    """
    if method not in ("percentile", "normal", "cs"):
        raise ValueError(f"unknown bootstrap interval method {method!r}")
    base, candidate = np.asarray(base), np.asarray(candidate)
    if base.shape[-1:] != candidate.shape[-1:]:
        raise ValueError(f"paired samples differ in length: {base.shape[-1:]} vs {candidate.shape[-1:]}")
    n = base.shape[-1] if base.ndim else 0
    if n < 2:
        raise MeasurementError(f"a paired bootstrap needs at least 2 items, got {n}")
    if seed is None:
        seed = seed_from_data(base, candidate)
    elements_per_resample = n * max(1, base.size // n + candidate.size // n)
    with warnings.catch_warnings():
        # NaN resamples trip scipy's BCa warning; a non-finite interval raises below.
        warnings.simplefilter("ignore", sps.DegenerateDataWarning)
        result = sps.bootstrap(
            (base, candidate),
            statistic,
            paired=True,
            n_resamples=n_resamples,
            batch=max(1, _BOOTSTRAP_BATCH_ELEMENTS // elements_per_resample),
            confidence_level=level,
            method="percentile",
            axis=-1,
            rng=np.random.default_rng(seed),
        )
    interval = _bootstrap_interval(result, method, level, n, lambda: float(statistic(base, candidate)))
    if not (math.isfinite(interval.low) and math.isfinite(interval.high)):
        raise MeasurementError(f"paired bootstrap gave a non-finite interval ({interval.low}, {interval.high})")
    return interval


def _bootstrap_interval(result: Any, method: str, level: float, n: int, point: Callable[[], float]) -> Interval:
    """The interval `method` reads from scipy's bootstrap result (see `paired_bootstrap`)."""
    if method == "normal":
        value, half = point(), float(sps.norm.ppf(0.5 + level / 2)) * float(result.standard_error)
        return Interval(value - half, value + half, level, "paired-bootstrap-normal")
    if method == "cs":
        value, half = point(), cs_radius(n, n * float(result.standard_error) ** 2, 1 - level)
        return Interval(value - half, value + half, level, "confidence-sequence")
    return Interval(float(result.confidence_interval.low), float(result.confidence_interval.high), level,
                    "paired-bootstrap")


def paired_jackknife_ratio(base: np.ndarray, candidate: np.ndarray, statistic: Callable[..., Any],
                           level: float = 0.95) -> Interval:
    """Interval of a positive ratio `statistic(base, candidate)` from a jackknife t-interval on its log.

    Items lie along the last axis, resampled together as in `paired_bootstrap`.
    The log of the ratio is close to a mean of per-item values (a ratio of
    sums), so its leave-one-out standard error times Student's t with n - 1
    degrees of freedom keeps its level at the few items a sequential test's
    first looks have (8 perplexity windows), where a percentile bootstrap has
    too few distinct resamples to read a 99% tail. Deterministic.
    """
    base, candidate = np.asarray(base, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    if base.shape[-1:] != candidate.shape[-1:]:
        raise ValueError(f"paired samples differ in length: {base.shape[-1:]} vs {candidate.shape[-1:]}")
    n = base.shape[-1] if base.ndim else 0
    if n < 2:
        raise MeasurementError(f"a paired jackknife needs at least 2 items, got {n}")
    point = float(np.log(statistic(base, candidate)))
    keep = ~np.eye(n, dtype=bool)  # row i: every item but the i-th
    leave_one_out = np.log([statistic(base[..., row], candidate[..., row]) for row in keep])
    if not (np.isfinite(point) and np.all(np.isfinite(leave_one_out))):
        raise MeasurementError("the paired jackknife met a non-positive or non-finite ratio")
    standard_error = math.sqrt((n - 1) / n * float(((leave_one_out - leave_one_out.mean()) ** 2).sum()))
    half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * standard_error
    return Interval(math.exp(point - half), math.exp(point + half), level, "paired-jackknife-t")


def crossed_bootstrap(
    base: np.ndarray,
    candidate: np.ndarray,
    ratio_of_sums: Callable[[np.ndarray, np.ndarray], np.ndarray],
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int | None = None,
) -> Interval:
    """Interval for a positive ratio of sums over a rows x columns table crossed by two random factors.

    For latency: prompts x rounds, each round a fresh load of both models,
    whose load-to-load spread can outweigh the prompt-to-prompt one. The
    variance of the log ratio is estimated per factor by resampling rows
    alone and columns alone (each with its small-sample factor n/(n-1)) and
    summed, as in Owen's pigeonhole bootstrap (Ann. Appl. Stat. 2007), which
    counts the cell noise twice and so errs wide. With only a few rounds a
    normal quantile would be far too narrow (a percentile bootstrap over 4
    columns covered 82% in simulation), so the interval uses Student's t
    with Satterthwaite's degrees of freedom: 94-96% coverage with 4-8 rounds
    when the load effect dominates, about 99% when there is none. Tables
    have shape (fields, rows, columns) or (rows, columns);
    `ratio_of_sums(base_sums, candidate_sums)` gets sums of shape
    (fields, resamples). With one column this is a bootstrap-t over rows.
    """
    base, candidate = np.asarray(base, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    if base.shape != candidate.shape:
        raise ValueError(f"paired tables differ in shape: {base.shape} vs {candidate.shape}")
    if base.ndim == 2:
        base, candidate = base[None], candidate[None]
    rows, columns = base.shape[1:]
    if rows < 2:
        raise MeasurementError(f"a crossed bootstrap needs at least 2 rows, got {rows}")
    rng = np.random.default_rng(seed_from_data(base, candidate) if seed is None else seed)

    def log_ratios(row_weights: np.ndarray, column_weights: np.ndarray) -> np.ndarray:
        sums = [np.einsum("nr,frc,nc->fn", row_weights, table, column_weights) for table in (base, candidate)]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(np.asarray(ratio_of_sums(*sums), dtype=np.float64))

    def weights(n: int) -> np.ndarray:
        return rng.multinomial(n, np.full(n, 1 / n), size=n_resamples).astype(np.float64)

    point = log_ratios(np.ones((1, rows)), np.ones((1, columns)))[0]
    components = [(log_ratios(weights(rows), np.ones((n_resamples, columns))), rows)]
    if columns > 1:
        components.append((log_ratios(np.ones((n_resamples, rows)), weights(columns)), columns))
    if not (np.isfinite(point) and all(np.isfinite(draws).all() for draws, _ in components)):
        raise MeasurementError("crossed bootstrap: a resampled ratio was not a positive finite number")
    variances = [(float(draws.var(ddof=1)) * n / (n - 1), n - 1) for draws, n in components]
    variance = sum(v for v, _ in variances)
    if variance > 0:
        dof = variance ** 2 / sum(v ** 2 / d for v, d in variances if v > 0)
        half = float(sps.t.ppf(0.5 + level / 2, dof)) * math.sqrt(variance)
    else:
        half = 0.0
    return Interval(math.exp(point - half), math.exp(point + half), level, "crossed-bootstrap-t")


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the order given."""
    p = np.asarray(pvalues, dtype=float)
    if p.size == 0:
        return []
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {list(pvalues)}")
    order = np.argsort(p, kind="stable")
    m = p.size
    # The k-th smallest is multiplied by (m - k); monotone so no later one is smaller.
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return adjusted.tolist()


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if value < 0 or int(value) != value:
            raise ValueError(f"{name} must be a non-negative whole count, got {value}")
