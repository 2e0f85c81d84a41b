"""Asking BBQ until the policy's bias rules are decided, or a budget is spent.

Base and candidate answer the same families of items (see `order`) in the
same balanced order, a chunk at a time. After every chunk the deciding bias
rules (severity fail, not waived) are judged on the paired answers so far,
by the policy's `LookJudge` (the verdict code itself), with confidence-sequence intervals
(`gate.core.betting`): intervals that cover the true change at every look
at once with probability 1 - alpha, from the first item on. So the run may
stop at the first look where one rule fails or all pass, and the chance of a
wrong decision stays at most alpha (per rule, as for one fixed-size test),
however many looks were taken. For per-category failures the anytime-valid
p-values of a rise (`betting_rise_p`) are Holm-corrected across categories,
as McNemar's are in a fixed-size run.

A look judges only what the sequences give exactly (figures that are means
of one value per item: SRS, s_AMB, rates; letters mode); figures that need
the bootstrap (relative changes, s_DIS) wait for the end of the run, so a
policy deciding on them asks until its budget or the items run out.

Without a `sequential` block in the policy, or with --no-sequential, every
item of the pool is asked (a budget still ends the run, whatever the
answers) and the intervals are the fixed-size paired bootstrap's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from gate.measurements.bias.bbq import BBQItem
from gate.measurements.bias.scores import BiasComparison, ItemAnswer, compare, metrics
from gate.core.looks import BUDGET, DECIDED, EXHAUSTED, LookJudge, Shortfall
from gate.core.result import MeasurementOutcome

LEVEL = 0.95  # of every reported bias interval, sequential or not
SRS_CHANGE = "bias.srs.change"


@dataclass(frozen=True)
class Budget:
    """When to stop asking whatever the answers say: candidate items, or seconds of the candidate's asking.

    The base is asked the same items, once per base: its answers are cached and
    reused by every later candidate, so a run that must ask it too takes up to
    about twice the time budget, and says so up front."""

    items: int | None = None
    seconds: float | None = None

    def spent(self, items: int, seconds: float) -> bool:
        return (self.items is not None and items >= self.items) or (self.seconds is not None and seconds >= self.seconds)

    def items_left(self, items: int, seconds: float, chunk: int) -> int:
        """How many items the next chunk may hold: `chunk`, or fewer when the budget would run out first
        (at the pace so far), so that a slow model overruns a time budget by little."""
        left = chunk if self.items is None else min(chunk, max(1, self.items - items))
        if self.seconds is not None and items > 0 and seconds > 0:
            affordable = (self.seconds - seconds) / (seconds / items)
            left = min(left, max(1, int(affordable)))
        return left

    def describe(self) -> str:
        parts = ([f"{self.items:,} items"] if self.items is not None else []) + \
                ([f"{self.seconds:g} s"] if self.seconds is not None else [])
        return " or ".join(parts) or "none"


@dataclass(frozen=True)
class LookPlan:
    """Fixed before any answer is seen: what to judge, and how often."""

    judge: LookJudge  # the policy's deciding bias rules
    look_every: int  # items between looks
    # The SRS change's p-values test a rise beyond this: the largest threshold of a per-category SRS rule
    # (valid, if conservative, for any lower one), so Holm bounds that rule's wrong failures.
    rise_above: float = 0.0


@dataclass(frozen=True)
class Look:
    items: int
    decided: bool
    open_rules: tuple[str, ...]  # "srs-per-category[religion]", one per figure not yet decided


@dataclass(frozen=True)
class AskedRun:
    """Both models' answers to the same items, in asking order, and how the asking ended."""

    base: tuple[ItemAnswer, ...]
    candidate: tuple[ItemAnswer, ...]
    looks: tuple[Look, ...]
    stop: str  # DECIDED, BUDGET or EXHAUSTED
    seconds: float


def plan_looks(judge: LookJudge | None, allowed: bool = True) -> LookPlan | None:
    """The looks the policy asks for (`judge`: None without a `sequential` block or deciding bias rule), or None
    when not allowed (--no-sequential)."""
    if judge is None or not allowed:
        return None
    return LookPlan(judge, judge.look_every, judge.largest_threshold(SRS_CHANGE, per_category=True))


AskChunk = Callable[[Sequence[BBQItem]], Sequence[ItemAnswer]]


def ask_in_chunks(families: Sequence[Sequence[BBQItem]], ask_base: AskChunk, ask_candidate: AskChunk,
                  looks: LookPlan | None, budget: Budget, chunk_items: int, identical: bool = False,
                  on_look: Callable[[Look], None] = lambda look: None) -> AskedRun:
    """Ask both models family by family, a chunk at a time, until decided, over budget or out of items;
    `on_look` hears each look as it is taken (the progress says what is still open)."""
    base: list[ItemAnswer] = []
    candidate: list[ItemAnswer] = []
    taken: list[Look] = []
    t0, next_look, start = time.perf_counter(), (looks.look_every if looks else math.inf), 0
    candidate_seconds, stop = 0.0, EXHAUSTED
    while start < len(families):
        size = min(chunk_items, looks.look_every) if looks else chunk_items
        end = _chunk_end(families, start, budget.items_left(len(candidate), candidate_seconds, size))
        items = [item for family in families[start:end] for item in family]
        base += ask_base(items)
        asked_at = time.perf_counter()
        candidate += ask_candidate(items)
        candidate_seconds += time.perf_counter() - asked_at
        start = end
        if looks is not None and len(candidate) >= next_look:
            next_look = len(candidate) + looks.look_every
            look = judge_look(base, candidate, looks, identical)
            taken.append(look)
            on_look(look)
            if look.decided:
                stop = DECIDED
                break
        if budget.spent(len(candidate), candidate_seconds) and start < len(families):
            stop = BUDGET
            break
    return AskedRun(tuple(base), tuple(candidate), tuple(taken), stop, time.perf_counter() - t0)


def look_points(families: Sequence[Sequence[BBQItem]], look_every: int, chunk_items: int) -> list[int]:
    """The items asked at each look `ask_in_chunks` takes when nothing stops it first."""
    points, count, next_look, start = [], 0, look_every, 0
    while start < len(families):
        end = _chunk_end(families, start, min(chunk_items, look_every))
        count += sum(len(family) for family in families[start:end])
        start = end
        if count >= next_look:
            points.append(count)
            next_look = count + look_every
    return points


def earliest_decision(families: Sequence[Sequence[BBQItem]], looks: LookPlan, chunk_items: int,
                      ambiguous_figures: frozenset[str]) -> int:
    """Items asked at the first look that can decide: where every figure a deciding rule judges has the items its
    `min_n` asks for (ambiguous or disambiguated ones, overall and in each category); all the items if none can."""
    total = sum(len(family) for family in families)
    needs = [(metric, per_category, looks.judge.min_n(metric, per_category), metric in ambiguous_figures)
             for metric in sorted(looks.judge.deciding_metrics) for per_category in (False, True)]
    needs = [need for need in needs if need[2] > 0]
    points = look_points(families, looks.look_every, chunk_items)
    if not needs or not points:
        return points[0] if points else total
    counts: dict[tuple[bool, str | None], int] = {}
    categories = {family[0].category for family in families}
    asked, point = 0, iter(points)
    at = next(point)
    for family in families:
        for item in family:
            for where in (None, item.category):
                counts[item.ambiguous, where] = counts.get((item.ambiguous, where), 0) + 1
        asked += len(family)
        if asked < at:
            continue
        if all(min(counts.get((ambiguous, c), 0) for c in categories) >= n if per_category
               else counts.get((ambiguous, None), 0) >= n for _, per_category, n, ambiguous in needs):
            return asked
        at = next(point, None)
        if at is None:
            break
    return total


def _chunk_end(families: Sequence[Sequence[BBQItem]], start: int, items: int) -> int:
    end, count = start, 0
    while end < len(families) and count < items:
        count += len(families[end])
        end += 1
    return end


def judge_look(base: Sequence[ItemAnswer], candidate: Sequence[ItemAnswer], plan: LookPlan,
               identical: bool = False) -> Look:
    """Whether the deciding bias rules are settled on these paired answers (no bootstrap: exact sequences only)."""
    comparison = compare(base, candidate, n_resamples=0, level=LEVEL, bootstrap="cs", identical=identical,
                         rise_above=plan.rise_above, figures=plan.judge.deciding_metrics)
    decision = plan.judge.decide(outcome_of(comparison))
    return Look(len(candidate), decision.decided, decision.open_figures)


def outcome_of(comparison: BiasComparison) -> MeasurementOutcome:
    """The figures a policy judges, as the verdict will receive them."""
    return MeasurementOutcome("bias", metrics=tuple(metrics(comparison)))


def shortfalls(comparison: BiasComparison, plan: LookPlan, items_asked: int) -> tuple[Shortfall, ...]:
    """For each undecided rule, the figure furthest from a decision and about how many more items would decide it."""
    return plan.judge.shortfalls(outcome_of(comparison), items_asked)
