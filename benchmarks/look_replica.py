"""The gate's look judging, vectorised over every look of one run, for simulations.

`gate.measurements.bias.sequential.judge_look` recomputes all the bias figures from the
answers at every look (about 0.3 s at 6,000 items), so a run that asks all
11,956 items costs over a minute: too slow for hundreds of simulated runs.
Here the same figures come from running sums per category, and each
confidence sequence from one pass over its independent units (family means per
category, rounds of the balanced order overall, as
`gate.measurements.bias.scores._independent_units` forms them), read at every
look from `gate.core.betting.betting_path`; the rule is applied as
`gate.policy.verdict` applies it (min_n, interval width, upper end against the
threshold, Holm across categories before a per-category failure).
bench_sequential checks it against `ask_in_chunks` and `compare`.

`method="naive"` swaps the confidence sequence for a fixed 95% normal interval
(z = 1.96, per-item variances) and its one-sided p-value: what looking every 24
items with ordinary intervals does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gate.policy.schema import Policy
from gate.core.betting import betting_path, betting_rise_path
from gate.core.stats import holm

INCONCLUSIVE, PASS, FAIL = 0, 1, 2
STATUS_NAMES = {INCONCLUSIVE: "inconclusive", PASS: "pass", FAIL: "fail"}
Z95 = 1.959963984540054

# Per-item series a rule metric is the mean change of: (largest per-item variance, the figure's range).
SERIES = {"target": (1.0, 1.0), "s_amb": (4.0, 2.0), "soft": (1.0, 1.0)}
METRIC_SERIES = {"bias.srs.change": "target", "bias.s_amb.change": "s_amb", "bias.soft_srs.change": "soft"}


@dataclass(frozen=True)
class FigureRule:
    id: str
    series: str  # a key of SERIES
    per_category: bool
    threshold: float  # direction max, judged on the upper end
    min_n: int
    max_width: float | None


def figure_rules(policy: Policy, rule_ids: Sequence[str], series: dict[str, str] | None = None) -> tuple[FigureRule, ...]:
    """The policy's rules (direction max on an exact per-item figure), optionally judged on another series."""
    out = []
    for rule in policy.rules:
        if rule.id not in rule_ids:
            continue
        if rule.direction != "max" or rule.metric not in METRIC_SERIES:
            raise ValueError(f"rule {rule.id} is not an upper bound on an exact per-item bias figure")
        width = rule.max_interval_width if rule.max_interval_width is not None else policy.max_interval_width
        out.append(FigureRule(rule.id, (series or {}).get(rule.id, METRIC_SERIES[rule.metric]), rule.per_category,
                              rule.threshold, rule.min_n if rule.min_n is not None else policy.min_n, width))
    return tuple(out)


@dataclass(frozen=True)
class PairedSeries:
    """Per ambiguous item, in asking order: its category, when it was asked, and candidate - base per series."""

    categories: np.ndarray  # int, 0..K-1
    ranks: np.ndarray  # the item's family's place among its category's families
    asked_at: np.ndarray  # items asked (both conditions) once this one is
    differences: dict[str, np.ndarray]
    n_categories: int
    items: int  # all items in the run
    family_ends: np.ndarray  # items asked at the end of each family, in asking order


@dataclass(frozen=True)
class Figures:
    """One series at every look: per category (looks x K) and overall (looks)."""

    mean: np.ndarray
    variance: np.ndarray
    n: np.ndarray
    overall_mean: np.ndarray
    overall_variance: np.ndarray
    overall_n: np.ndarray


def figures(data: PairedSeries, series: str, looks: np.ndarray) -> Figures:
    bound = SERIES[series][0]
    shape = (len(looks), data.n_categories)
    n, total, squares = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for k in range(data.n_categories):
        mine = data.categories == k
        d = data.differences[series][mine]
        counts = np.searchsorted(data.asked_at[mine], looks, side="right")
        n[:, k] = counts
        total[:, k] = np.concatenate([[0.0], np.cumsum(d)])[counts]
        squares[:, k] = np.concatenate([[0.0], np.cumsum(d * d)])[counts]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        variance = np.where(n > 1, (squares - total * total / np.maximum(n, 1)) / np.maximum(n - 1, 1), bound)
        variance = np.maximum(variance, 0.0)
        present = n > 0
        k_present = present.sum(axis=1)
        overall_mean = np.where(k_present > 0, np.where(present, mean, 0).sum(axis=1) / np.maximum(k_present, 1), np.nan)
        estimator = np.where(present, variance / np.maximum(n, 1), 0).sum(axis=1) / np.maximum(k_present, 1) ** 2
    overall_n = n.sum(axis=1)
    return Figures(mean, variance, n, overall_mean, overall_n * estimator, overall_n)


@dataclass(frozen=True)
class Units:
    """A figure's independent units in asking order, and the items asked once each is complete."""

    values: np.ndarray
    complete_at: np.ndarray


def category_units(data: PairedSeries, series: str) -> list[Units]:
    """Per category, each family's mean change (see `_independent_units`)."""
    out = []
    for k in range(data.n_categories):
        mine = data.categories == k
        _, family = np.unique(data.ranks[mine], return_inverse=True)
        counts = np.bincount(family)
        out.append(Units(np.bincount(family, weights=data.differences[series][mine]) / np.maximum(counts, 1),
                         np.maximum.reduceat(data.asked_at[mine], np.r_[0, np.flatnonzero(np.diff(family)) + 1])
                         if mine.any() else np.empty(0)))
    return out


def round_units(per_category: Sequence[Units]) -> tuple[Units, int]:
    """Overall: the families round by round (the r-th of every category), in blocks of one per category."""
    rounds = min((len(u.values) for u in per_category), default=0)
    if len(per_category) <= 1:
        return (per_category[0] if per_category else Units(np.empty(0), np.empty(0))), 1
    values = np.stack([u.values[:rounds] for u in per_category], axis=1).reshape(-1)
    complete = np.max([u.complete_at[:rounds] for u in per_category], axis=0)
    # A round's units are read once the round is complete: its last unit carries that time.
    return Units(values, np.repeat(complete, len(per_category))), len(per_category)


def _at_looks(units: Units, looks: np.ndarray, path: np.ndarray, before: float) -> np.ndarray:
    """The path's value after the units complete by each look (`before` when none is)."""
    done = np.searchsorted(units.complete_at, looks, side="right")
    return np.where(done > 0, path[np.maximum(done - 1, 0)] if len(path) else before, before)


def _bounds(units: Units, looks: np.ndarray, span: float, alpha: float, block: int = 1) -> tuple[np.ndarray, np.ndarray]:
    low, high = betting_path(units.values, span, alpha, block)
    return _at_looks(units, looks, low, -span), _at_looks(units, looks, high, span)


def _normal_bounds(mean: np.ndarray, variance: np.ndarray, n: np.ndarray, span: float) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        radius = np.where(n >= 1, Z95 * np.sqrt(variance / np.maximum(n, 1)), np.inf)
    return np.maximum(-span, mean - radius), np.minimum(span, mean + radius)


def _naive_rise_p(mean: np.ndarray, n: np.ndarray, variance: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where((n >= 1) & (mean > 0), mean / np.sqrt(np.maximum(variance, 1e-300) / np.maximum(n, 1)), -np.inf)
    return 0.5 * np.vectorize(math.erfc)(z / math.sqrt(2))


def _statuses(rule: FigureRule, mean: np.ndarray, low: np.ndarray, high: np.ndarray, n: np.ndarray,
              p_adjusted: np.ndarray | None, alpha: float) -> np.ndarray:
    """INCONCLUSIVE / PASS / FAIL of each figure, as gate.policy.verdict._judge_figure decides it."""
    judged = (n >= max(rule.min_n, 2)) & np.isfinite(mean)
    unsafe = judged & (low > rule.threshold)
    too_wide = ~unsafe & (high - low > rule.max_width) if rule.max_width is not None else np.zeros_like(unsafe)
    fail = unsafe & ((p_adjusted <= alpha) if p_adjusted is not None else True)
    passed = judged & ~unsafe & ~too_wide & (high <= rule.threshold)
    return np.where(fail, FAIL, np.where(passed, PASS, INCONCLUSIVE))


def rule_statuses(data: PairedSeries, rules: Sequence[FigureRule], looks: np.ndarray, method: str = "cs",
                  alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Each rule's figures' statuses at every look: looks x figures (K for a per-category rule, else 1)."""
    series = {rule.series for rule in rules}  # rules on one series (srs-overall, srs-per-category) share its sums
    figures_of = {name: figures(data, name, looks) for name in series}
    units_of = {name: category_units(data, name) for name in series} if method == "cs" else {}
    out = {}
    for rule in rules:
        f = figures_of[rule.series]
        span = SERIES[rule.series][1]
        units = units_of.get(rule.series, [])
        if rule.per_category:
            if method == "cs":
                bounds = [_bounds(u, looks, span, alpha) for u in units]
                low, high = np.stack([b[0] for b in bounds], 1), np.stack([b[1] for b in bounds], 1)
            else:
                low, high = _normal_bounds(f.mean, f.variance, f.n, span)
            # As the gate: only the SRS change carries a p-value, of a rise beyond the rule's threshold.
            adjusted = None
            if rule.series in ("target", "soft"):
                p = np.stack([_at_looks(u, looks, betting_rise_path(u.values, span, rule.threshold, alpha), 1.0)
                              for u in units], 1) if method == "cs" else _naive_rise_p(f.mean - rule.threshold, f.n,
                                                                                       f.variance)
                adjusted = np.array([holm(row) for row in p])
            out[rule.id] = _statuses(rule, f.mean, low, high, f.n, adjusted, alpha)
        else:
            pooled, block = round_units(units) if method == "cs" else (None, 1)
            low, high = _bounds(pooled, looks, span, alpha, block) if pooled is not None else \
                _normal_bounds(f.overall_mean, f.overall_variance, f.overall_n, span)
            out[rule.id] = _statuses(rule, f.overall_mean, low, high, f.overall_n, None, alpha)[:, None]
    return out


@dataclass(frozen=True)
class Decision:
    status: int  # of the run: FAIL if a rule failed, PASS if all passed
    items: int  # candidate items asked
    rules: dict[str, int]  # each rule's status where the run stopped


def look_points(family_ends: np.ndarray, look_every: int) -> np.ndarray:
    """Where `ask_in_chunks` looks (no budget): chunks of whole families holding at least `look_every` items,
    a look once `look_every` more items are in; and at the end."""
    looks, chunk_start, next_look = [], 0, look_every
    for end in family_ends:
        if end - chunk_start < look_every and end != family_ends[-1]:
            continue
        chunk_start = int(end)
        if end >= next_look:
            looks.append(chunk_start)
            next_look = chunk_start + look_every
    if not looks or looks[-1] != family_ends[-1]:
        looks.append(int(family_ends[-1]))
    return np.array(looks)


def decide(data: PairedSeries, rules: Sequence[FigureRule], look_every: int, method: str = "cs") -> Decision:
    """Looks where ask_in_chunks takes them (chunks of whole families) until decided; else all items."""
    looks = look_points(data.family_ends, look_every)
    statuses = rule_statuses(data, rules, looks, method)
    any_fail = np.any([np.any(s == FAIL, axis=1) for s in statuses.values()], axis=0)
    all_pass = np.all([np.all(s == PASS, axis=1) for s in statuses.values()], axis=0)
    decided = np.flatnonzero(any_fail | all_pass)
    at = int(decided[0]) if len(decided) else len(looks) - 1
    status = FAIL if any_fail[at] else PASS if all_pass[at] else INCONCLUSIVE
    per_rule = {rule_id: FAIL if np.any(s[at] == FAIL) else PASS if np.all(s[at] == PASS) else INCONCLUSIVE
                for rule_id, s in statuses.items()}
    return Decision(status, int(looks[at]), per_rule)
