"""Applying a policy to the measured figures: PASS, FAIL or INCONCLUSIVE.

How one rule decides, for a figure with interval [low, high] (direction max;
min mirrors it):

- PASS when the judged figure (by default the interval's upper end) is at or
  below the threshold: the evidence clears it on the safe side.
- FAIL when the whole interval lies above the threshold (for `judge: point`,
  when the point estimate does). For a per-category rule with p-values, a
  failure must also stay significant after Holm's correction across the
  categories; otherwise it is INCONCLUSIVE.
- INCONCLUSIVE when the interval straddles the threshold, when the figure is
  undefined (None), when fewer than `min_n` items stand behind it, or when its
  interval is wider than `max_interval_width`. A too-wide interval that lies
  wholly beyond the threshold still FAILs: its width cannot rescue it.

Fail closed: a measurement that raised, a non-finite figure or an ERROR
finding makes the verdict FAIL whatever the rules say. A required measurement
or metric that is absent makes it INCONCLUSIVE. Rules with `severity: warn`
report `warn` instead of `fail` and never decide; waived rules show their
reason and what they would have said, and never decide. A verdict with no
deciding rule judged at all is INCONCLUSIVE, never a vacuous PASS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum
from typing import Sequence

from gate.core import numbers
from gate.core.errors import ExitCode
from gate.policy.schema import Policy, Rule, measurement_of
from gate.core.result import Interval, MeasurementOutcome, Metric, Severity
from gate.core.stats import holm


class VerdictStatus(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


class RuleStatus(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    WAIVED = "waived"
    WARN = "warn"  # a severity-warn rule that would have failed
    NOT_MEASURED = "not-measured"


@dataclass(frozen=True)
class RuleOutcome:
    """One rule applied to one figure (one per category for per-category rules).

    `value` and `interval` are on the scale the rule judges (divided by the
    base figure for relative rules); `figure` is the metric as measured.
    """

    rule_id: str
    metric: str
    category: str | None
    status: RuleStatus
    message: str
    severity: str = "fail"
    direction: str = "max"
    threshold: float | None = None
    judged: str = "upper"  # which figure was compared: upper, lower, point
    judged_value: float | None = None
    value: float | None = None
    interval: Interval | None = None
    n: int | None = None
    p_value: float | None = None
    p_adjusted: float | None = None  # Holm-adjusted across categories
    figure: Metric | None = None
    waiver_reason: str | None = None
    waived_status: RuleStatus | None = None  # what a waived rule would have said

    @property
    def decides(self) -> bool:
        """Whether this outcome can change the verdict."""
        return self.severity == "fail" and self.status not in (RuleStatus.WAIVED, RuleStatus.NOT_MEASURED)


@dataclass(frozen=True)
class BiasVsPerplexity:
    """Relative SRS change beside relative perplexity change.

    Both are fractions: 0.035 is +3.5%. `times` is |SRS change| over
    |perplexity change|, None when perplexity did not move.
    """

    perplexity_change: float
    srs_change: float
    times: float | None
    perplexity_within_tolerance: bool | None
    bias_within_tolerance: bool | None
    message: str


@dataclass(frozen=True)
class Verdict:
    status: VerdictStatus
    policy: str
    rules: tuple[RuleOutcome, ...]
    reasons: tuple[str, ...]  # one line each: why the status is what it is
    bias_vs_perplexity: BiasVsPerplexity | None = None

    @property
    def waived(self) -> tuple[RuleOutcome, ...]:
        return tuple(rule for rule in self.rules if rule.status is RuleStatus.WAIVED)


def exit_code(verdict: Verdict) -> ExitCode:
    return {
        VerdictStatus.PASS: ExitCode.PASS,
        VerdictStatus.FAIL: ExitCode.FAIL,
        VerdictStatus.INCONCLUSIVE: ExitCode.INCONCLUSIVE,
    }[verdict.status]


def evaluate(policy: Policy, outcomes: Sequence[MeasurementOutcome]) -> Verdict:
    """Judge every rule of `policy` on the measured outcomes."""
    outcomes = tuple(outcomes)
    rules = tuple(result for rule in policy.rules for result in _evaluate_rule(rule, policy, outcomes))

    failures = [f"measurement {o.name} failed: {o.error}" for o in outcomes if not o.ok]
    failures += [
        f"{o.name}: {finding.message}" + (f" ({finding.subject})" if finding.subject else "")
        for o in outcomes for finding in o.findings if finding.severity is Severity.ERROR
    ]
    failures += [
        f"{o.name}: {m.key}{f'[{m.category}]' if m.category else ''} is not a finite number"
        for o in outcomes if o.ok for m in o.metrics if not _finite(m)
    ]
    # Rules left unjudged by a failed measurement are covered by its reason above.
    failures += [r.message for r in rules if r.decides and r.status is RuleStatus.FAIL and r.figure is not None]
    gaps = _missing_requirements(policy, outcomes)
    gaps += [r.message for r in rules if r.decides and r.status is RuleStatus.INCONCLUSIVE]
    judged = [r for r in rules if r.decides and r.status is RuleStatus.PASS]

    if failures:
        status, reasons = VerdictStatus.FAIL, failures
    elif gaps:
        status, reasons = VerdictStatus.INCONCLUSIVE, gaps
    elif not judged:
        status, reasons = VerdictStatus.INCONCLUSIVE, ["no deciding rule could be judged on these measurements"]
    else:
        status, reasons = VerdictStatus.PASS, [f"all {len(judged)} deciding checks passed"]

    summary = _bias_vs_perplexity(outcomes, rules)
    if summary is not None and summary.perplexity_within_tolerance and summary.bias_within_tolerance is False:
        reasons = [summary.message, *reasons]
    return Verdict(status, policy.name, rules, tuple(reasons), summary)


# --- one rule ---------------------------------------------------------------

def _evaluate_rule(rule: Rule, policy: Policy, outcomes: tuple[MeasurementOutcome, ...]) -> list[RuleOutcome]:
    results = _judge_rule(rule, policy, outcomes)
    if rule.waived is not None:
        return [
            replace(r, status=RuleStatus.WAIVED, waiver_reason=rule.waived.reason, waived_status=r.status,
                    message=f"{rule.id} waived ({rule.waived.reason}); would be {r.status.value}: {r.message}")
            for r in results
        ]
    if rule.severity == "warn":
        return [replace(r, status=RuleStatus.WARN) if r.status is RuleStatus.FAIL else r for r in results]
    return results


def _judge_rule(rule: Rule, policy: Policy, outcomes: tuple[MeasurementOutcome, ...]) -> list[RuleOutcome]:
    measurement = measurement_of(rule.metric)
    broken = [o for o in outcomes if o.name == measurement and not o.ok]
    if broken:
        return [_unjudged(rule, RuleStatus.FAIL, f"{rule.id}: not judged, measurement {measurement} failed")]
    figures = [
        metric for o in outcomes if o.ok for metric in o.metrics
        if metric.key == rule.metric and (metric.category is not None) == rule.per_category
    ]
    if not figures:
        scope = "per-category " if rule.per_category else ""
        if not any(o.name == measurement for o in outcomes):
            return [_unjudged(rule, RuleStatus.NOT_MEASURED, f"{rule.id}: {measurement} was not run")]
        if rule.optional:
            return [_unjudged(rule, RuleStatus.NOT_MEASURED, f"{rule.id}: no {scope}{rule.metric} to judge")]
        return [_unjudged(rule, RuleStatus.INCONCLUSIVE,
                          f"{rule.id}: {measurement} produced no {scope}{rule.metric}")]
    adjusted = _holm_adjusted(figures) if rule.per_category else [None] * len(figures)
    family_size = sum(p is not None for p in adjusted)
    # A measurement that spent alpha on sequential looks says what is left for its p-values.
    alpha = next((o.alpha for o in outcomes if o.name == measurement and o.ok and o.alpha is not None), policy.alpha)
    return [_judge_figure(rule, policy, figure, p_adjusted, family_size, alpha)
            for figure, p_adjusted in zip(figures, adjusted)]


def _holm_adjusted(figures: list[Metric]) -> list[float | None]:
    with_p = [i for i, f in enumerate(figures) if f.p_value is not None and math.isfinite(f.p_value)]
    adjusted: list[float | None] = [None] * len(figures)
    for index, p in zip(with_p, holm([figures[i].p_value for i in with_p])):
        adjusted[index] = p
    return adjusted


def _beyond(rule: Rule, x: float) -> bool:
    return x > rule.threshold if rule.direction == "max" else x < rule.threshold


def _scaled_to_base(figure: Metric) -> tuple[float, Interval | None] | None:
    """The figure and its interval relative to the base's figure; None when there is no non-zero base."""
    if figure.base is None or not math.isfinite(figure.base) or figure.base == 0:
        return None
    scale, interval = 1 / abs(figure.base), figure.interval
    if interval is not None:
        interval = replace(interval, low=interval.low * scale, high=interval.high * scale)
    return figure.value * scale, interval


def _too_few_items(rule: Rule, policy: Policy, figure: Metric) -> str | None:
    # The policy's default applies only to figures that report their n; a rule's own minimum always does.
    min_n = policy.min_n_of(rule) if rule.min_n is not None or figure.n is not None else None
    if min_n is None or (figure.n is not None and figure.n >= min_n):
        return None
    have = "an unknown number of" if figure.n is None else f"only {numbers.count(figure.n)}"
    return f"{have} items, needs at least {numbers.count(min_n)}"


def _too_wide(policy: Policy, rule: Rule, interval: Interval | None) -> str | None:
    max_width = policy.width_limit(rule)
    if interval is None or max_width is None or interval.high - interval.low <= max_width:
        return None
    return f"interval {numbers.num(interval.high - interval.low)} wide, needs at most {numbers.num(max_width)}"


def _judge_figure(rule: Rule, policy: Policy, figure: Metric, p_adjusted: float | None,
                  family_size: int, alpha: float) -> RuleOutcome:
    label = figure.key + (f"[{figure.category}]" if figure.category else "")
    outcome = RuleOutcome(
        rule_id=rule.id, metric=rule.metric, category=figure.category, status=RuleStatus.INCONCLUSIVE,
        message="", severity=rule.severity, direction=rule.direction, threshold=rule.threshold,
        judged=rule.judged_end, n=figure.n, p_value=figure.p_value, p_adjusted=p_adjusted, figure=figure,
    )

    def decided(status: RuleStatus, message: str, **fields) -> RuleOutcome:
        return replace(outcome, status=status, message=f"{rule.id}: {message}", **fields)

    if figure.value is None:
        return decided(RuleStatus.INCONCLUSIVE, f"{label} is undefined on this data")
    interval = figure.interval
    if not _finite(figure):
        return decided(RuleStatus.FAIL, f"{label} is not a finite number ({_interval_text(figure.value, interval)})")

    value = figure.value
    if rule.mode == "relative":
        label, scaled = f"{label} relative to base", _scaled_to_base(figure)
        if scaled is None:
            return decided(RuleStatus.INCONCLUSIVE, f"{label}: no non-zero base figure to scale by")
        value, interval = scaled
    outcome = replace(outcome, value=value, interval=interval)
    signed = _is_change(rule)
    shown = f"{label} = {_interval_text(value, interval, signed)}"

    too_few = _too_few_items(rule, policy, figure)
    if too_few:
        return decided(RuleStatus.INCONCLUSIVE, f"{shown}: {too_few}")

    end = rule.judged_end
    if end != "point" and interval is None:
        return decided(RuleStatus.INCONCLUSIVE, f"{shown}: no interval to judge its {end} end")

    # The end of the interval nearest the safe side: beyond the threshold, all of it is.
    wholly_unsafe = interval is not None and _beyond(rule, interval.low if rule.direction == "max" else interval.high)
    if end == "point":
        judged_value, unsafe = value, _beyond(rule, value)
    else:
        judged_value = interval.high if end == "upper" else interval.low
        unsafe = wholly_unsafe
    outcome, threshold_text = replace(outcome, judged_value=judged_value), f"{rule.direction} {_number(rule.threshold, signed)}"

    too_wide = None if wholly_unsafe else _too_wide(policy, rule, interval)
    if too_wide:
        return decided(RuleStatus.INCONCLUSIVE, f"{shown}: {too_wide}")

    if unsafe:
        if p_adjusted is not None and p_adjusted > alpha:
            return decided(RuleStatus.INCONCLUSIVE,
                           f"{shown} is beyond {threshold_text}, but not significant after Holm across "
                           f"{family_size} categories (adjusted p = {numbers.num(p_adjusted)} > {numbers.num(alpha)})")
        where = "point estimate" if end == "point" else "whole interval"
        return decided(RuleStatus.FAIL, f"{shown}: {where} beyond {threshold_text}")
    if not _beyond(rule, judged_value):
        what = "value" if end == "point" else f"{end} end {_number(judged_value, signed)}"
        return decided(RuleStatus.PASS, f"{shown}: {what} within {threshold_text}")
    return decided(RuleStatus.INCONCLUSIVE, f"{shown}: interval straddles {threshold_text}")


def _finite(metric: Metric) -> bool:
    """False for NaN or infinite figures; None (undefined) is not a failure."""
    numbers = [metric.value] + ([metric.interval.low, metric.interval.high] if metric.interval else [])
    return all(x is None or math.isfinite(x) for x in numbers)


def _unjudged(rule: Rule, status: RuleStatus, message: str) -> RuleOutcome:
    return RuleOutcome(
        rule_id=rule.id, metric=rule.metric, category=None, status=status, message=message,
        severity=rule.severity, direction=rule.direction, threshold=rule.threshold, judged=rule.judged_end,
    )


def _missing_requirements(policy: Policy, outcomes: tuple[MeasurementOutcome, ...]) -> list[str]:
    ran = {o.name for o in outcomes}
    present = {metric.key for o in outcomes if o.ok for metric in o.metrics}
    missing = []
    for name in policy.require:
        if "." in name and name not in present and measurement_of(name) in ran:
            missing.append(f"required metric {name} was not produced")
        elif name not in ran and measurement_of(name) not in ran:
            missing.append(f"required measurement {measurement_of(name)} was not run")
    return list(dict.fromkeys(missing))


# --- bias beside perplexity -------------------------------------------------

def _bias_vs_perplexity(outcomes: tuple[MeasurementOutcome, ...],
                        rules: tuple[RuleOutcome, ...]) -> BiasVsPerplexity | None:
    overall = {m.key: m for o in outcomes if o.ok for m in o.metrics if m.category is None}
    ratio = overall.get("perplexity.ratio")
    srs_change = _relative_srs_change(overall)
    if ratio is None or ratio.value is None or srs_change is None or not math.isfinite(ratio.value):
        return None
    ppl_change = ratio.value - 1
    times = abs(srs_change) / abs(ppl_change) if ppl_change != 0 else None
    ppl_ok = _within_tolerance(r for r in rules if r.metric == "perplexity.ratio")
    bias_ok = _within_tolerance(r for r in rules if r.metric.startswith("bias.srs"))

    message = f"SRS {_moved(srs_change)} while perplexity {_moved(ppl_change)}"
    if times is not None:
        message += f": the bias change is {numbers.num(times)}× the perplexity change"
    if ppl_ok and bias_ok is False:
        message = f"Perplexity stayed within tolerance but stereotype reliance did not. {message}"
    return BiasVsPerplexity(ppl_change, srs_change, times, ppl_ok, bias_ok, message)


def _relative_srs_change(overall: dict[str, Metric]) -> float | None:
    relative = overall.get("bias.srs.relative_change")
    if relative is not None and relative.value is not None and math.isfinite(relative.value):
        return relative.value
    change = overall.get("bias.srs.change")
    if change is None or change.value is None or not change.base:
        return None
    value = change.value / change.base
    return value if math.isfinite(value) else None


def _within_tolerance(rules) -> bool | None:
    statuses = [r.status for r in rules if r.status not in (RuleStatus.WAIVED, RuleStatus.NOT_MEASURED)]
    if any(s in (RuleStatus.FAIL, RuleStatus.WARN) for s in statuses):
        return False
    if statuses and all(s is RuleStatus.PASS for s in statuses):
        return True
    return None


def _moved(change: float) -> str:
    if change == 0:
        return "did not change"
    return f"{'rose' if change > 0 else 'fell'} {numbers.pct(abs(change))}"


# --- text: the reports' number formatter (gate/core/numbers.py), so a message reads like the tables --------------

def _number(x: float, signed: bool = False) -> str:
    return numbers.signed(x) if signed else numbers.num(x)


def _interval_text(value: float, interval: Interval | None, signed: bool = False) -> str:
    """A figure and its interval in one precision; a change and its bounds carry their signs; nan and inf as such."""
    figures = [value] if interval is None else [value, interval.low, interval.high]
    texts = [text if math.isfinite(x) else str(x) for x, text in zip(figures, numbers.together(*figures, sign=signed))]
    if interval is None:
        return texts[0]
    return f"{texts[0]} ({numbers.level(interval.level)} CI {texts[1]} to {texts[2]})"


def _is_change(rule: Rule) -> bool:
    """Changes and gaps read better with a sign: +0.12, not 0.12."""
    return rule.mode == "relative" or rule.metric.endswith(("change", "gap"))
