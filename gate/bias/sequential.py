"""Stopping the candidate's BBQ run once the policy's bias rules are decided.

A group-sequential test with Bonferroni (Haybittle–Peto style) spending. The
base answers every item (its run is cached and reused by every later
candidate). The candidate is asked in a seeded order whose every prefix is
spread evenly over category x condition x polarity, and at each planned look
(a fraction of the items, from the policy's `sequential` block) the deciding
bias rules are judged on the items answered so far, paired with the base's
answers to the same items, with intervals at level 1 - a and Holm at a
(a = `alpha_per_look`). If one of them fails, or all pass, the verdict on bias
is settled and the candidate stops there; its figures are reported as judged
at that look.

Why the error rates hold. A rule errs only when the interval it was judged on
misses the true value (or, for a per-category failure, when a Holm-adjusted
p-value clears its level under the null). A look at level 1 - a errs with
probability at most a; a run that reaches the end is judged at level
1 - (0.05 - k a) and Holm at alpha - k a, where k is the number of looks that
could decide. By the union bound over the looks the chance of a wrong
decision stays at most 0.05 (alpha for Holm) however the run ends, whatever
the correlation between looks. Looks that cannot decide (too few items behind
some rule's `min_n`, known before any answer) are dropped from the plan and
spend nothing, so a run with no usable look is judged exactly as without a
sequential block.

Interim intervals use the paired bootstrap's standard error (point +- z SE):
at 99.9% the percentiles of 2,000 resamples are too thin to read, while the
standard error is estimated to within about 2%.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Sequence

from gate.bias.bbq import BBQItem, cell_of
from gate.bias.measure import BiasRun
from gate.bias.metrics import BiasComparison, ItemAnswer, compare, metrics
from gate.policy.schema import Policy, Rule, measurement_of
from gate.result import MeasurementOutcome
from gate.verdict import RuleStatus, evaluate

# 1 - the level of every reported interval when no look has been spent.
INTERVAL_BUDGET = 0.05
INTERIM_BOOTSTRAP = "normal"


@dataclass(frozen=True)
class LookPlan:
    """When to look and what to judge, fixed before any answer is seen."""

    order: tuple[BBQItem, ...]  # the candidate's asking order
    sizes: tuple[int, ...]  # items answered at each look that can decide; increasing, below len(order)
    alpha_per_look: float
    policy: Policy
    rules: tuple[Rule, ...]  # the deciding bias rules

    @property
    def spent(self) -> float:
        return len(self.sizes) * self.alpha_per_look


@dataclass(frozen=True)
class Look:
    items: int
    decided: bool
    statuses: tuple[str, ...]  # "srs-overall: pass", one per judged figure
    seconds: float  # judging only


@dataclass(frozen=True)
class SequentialRun:
    """The candidate's answers (in plan order) and the looks taken on the way."""

    run: BiasRun
    looks: tuple[Look, ...]
    plan: LookPlan
    stopped_comparison: BiasComparison | None  # the figures that decided, when it stopped early

    @property
    def stopped(self) -> bool:
        return self.stopped_comparison is not None


@dataclass(frozen=True)
class SequentialSummary:
    """What the report says about the looks."""

    looks_planned: tuple[int, ...]
    looks: tuple[Look, ...]
    stopped: bool
    items_asked: int
    items_planned: int
    alpha_per_look: float
    alpha_spent: float
    level: float  # of the reported intervals
    alpha: float  # what the reported p-values are judged at (Holm)


def deciding_bias_rules(policy: Policy) -> tuple[Rule, ...]:
    return tuple(rule for rule in policy.rules if measurement_of(rule.metric) == "bias"
                 and rule.severity == "fail" and rule.waived is None)


def look_order(items: Sequence[BBQItem], seed: int) -> tuple[BBQItem, ...]:
    """The items in a seeded order whose every prefix spreads evenly over the strata.

    Each (category, condition, polarity) cell is shuffled and its members
    placed at evenly spaced fractions (with a random offset), then all cells
    are merged by fraction: after any n items each cell has given its share,
    within one item.
    """
    cells: dict[tuple[str, str, str], list[BBQItem]] = defaultdict(list)
    for item in items:
        cells[cell_of(item)].append(item)
    rng = random.Random(seed)
    placed = []
    for key in sorted(cells):
        members = list(cells[key])
        rng.shuffle(members)
        offset = rng.random()
        placed += [((rank + offset) / len(members), key, rank, member) for rank, member in enumerate(members)]
    placed.sort(key=lambda entry: entry[:3])
    return tuple(entry[3] for entry in placed)


def plan_looks(items: Sequence[BBQItem], policy: Policy, seed: int) -> LookPlan | None:
    """The looks that can decide every deciding bias rule; None when the policy has no looks to take."""
    rules = deciding_bias_rules(policy)
    if policy.sequential is None or not rules:
        return None
    order = look_order(items, seed)
    categories = sorted({item.category for item in items})
    sizes = []
    for fraction in policy.sequential.looks:
        size = round(fraction * len(order))
        if 0 < size < len(order) and (not sizes or size > sizes[-1]) and all(
                _items_behind(rule, order[:size], categories) >= _min_n(rule, policy) for rule in rules):
            sizes.append(size)
    return LookPlan(order, tuple(sizes), policy.sequential.alpha_per_look, policy, rules)


def _min_n(rule: Rule, policy: Policy) -> int:
    return rule.min_n if rule.min_n is not None else policy.min_n


def _items_behind(rule: Rule, items: Sequence[BBQItem], categories: Sequence[str]) -> int:
    """At most how many items stand behind the rule's figure (its smallest category for per-category rules).

    Ambiguous items for SRS, USR, s_AMB and the like, disambiguated ones for
    s_DIS and disambiguated accuracy, all items for the parse-failure rate.
    An upper bound: parse failures and emergence's eligibility only shrink it.
    """
    key = rule.metric
    if "parse_failure" in key:
        relevant = list(items)
    else:
        condition = "disambig" if "_dis" in key else "ambig"
        relevant = [item for item in items if item.condition == condition]
    if not rule.per_category:
        return len(relevant)
    return min(sum(item.category == category for item in relevant) for category in categories)


def judge_look(base: Sequence[ItemAnswer], candidate: Sequence[ItemAnswer], plan: LookPlan) -> tuple[bool, BiasComparison, tuple[str, ...]]:
    """Whether the bias verdict is settled on these paired answers, at the interim level."""
    alpha = plan.alpha_per_look
    comparison = compare(base, candidate, level=1 - alpha, bootstrap=INTERIM_BOOTSTRAP)
    outcome = MeasurementOutcome("bias", metrics=tuple(metrics(comparison)), alpha=alpha)
    judged = evaluate(plan.policy.model_copy(update={"rules": plan.rules, "require": ()}), [outcome]).rules
    statuses = tuple(f"{r.rule_id}{f'[{r.category}]' if r.category else ''}: {r.status.value}" for r in judged)
    failed = any(r.status is RuleStatus.FAIL for r in judged)
    passed = all(r.status is RuleStatus.PASS for r in judged)
    return failed or passed, comparison, statuses


def answer_in_looks(ask: Callable[[Sequence[BBQItem]], BiasRun], base: BiasRun, plan: LookPlan) -> SequentialRun:
    """Ask the candidate look by look (via `ask`) until the bias rules are decided or the items run out."""
    order, runs, looks = plan.order, [], []
    stopped: BiasComparison | None = None
    start = 0
    for end in (*plan.sizes, len(order)):
        runs.append(ask(order[start:end]))
        start = end
        paired_base, paired_candidate = paired_answers(base.answers, [a for run in runs for a in run.answers])
        if end == len(order):
            break
        t0 = time.perf_counter()
        decided, comparison, statuses = judge_look(paired_base, paired_candidate, plan)
        looks.append(Look(end, decided, statuses, time.perf_counter() - t0))
        if decided:
            stopped = comparison
            break
    merged = dataclasses.replace(runs[0], answers=paired_candidate, seconds=sum(run.seconds for run in runs))
    return SequentialRun(merged, tuple(looks), plan, stopped)


def paired_answers(base: Sequence[ItemAnswer], candidate: Sequence[ItemAnswer]) -> tuple[tuple[ItemAnswer, ...], tuple[ItemAnswer, ...]]:
    """The base's answers to the items the candidate answered, both in the base's order."""
    position = {answer.item_id: index for index, answer in enumerate(base)}
    ordered = sorted(candidate, key=lambda answer: position[answer.item_id])
    return tuple(base[position[answer.item_id]] for answer in ordered), tuple(ordered)


def final_level(run: SequentialRun, policy_alpha: float) -> tuple[float, float, str]:
    """(interval level, Holm alpha, bootstrap method) the candidate's figures are reported and judged at."""
    if run.stopped:
        return 1 - run.plan.alpha_per_look, run.plan.alpha_per_look, INTERIM_BOOTSTRAP
    return 1 - (INTERVAL_BUDGET - run.plan.spent), policy_alpha - run.plan.spent, "percentile"


def summary(run: SequentialRun, level: float, alpha: float) -> SequentialSummary:
    return SequentialSummary(
        looks_planned=run.plan.sizes, looks=run.looks, stopped=run.stopped, items_asked=len(run.run.answers),
        items_planned=len(run.plan.order), alpha_per_look=run.plan.alpha_per_look, alpha_spent=run.plan.spent,
        level=level, alpha=alpha,
    )
