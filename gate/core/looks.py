"""What a measurement that stops early asks of the policy, as a contract.

A measurement that can stop once the policy is decided (bias, perplexity) takes a
`LookJudge` in its plan: how often to look, the figures each look judges, and
what an undecided run lacks. The policy implements it (`gate.policy.looks`),
so measurements judge exactly as the verdict will without importing it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from gate.core.result import MeasurementOutcome

# Why a measurement that stops early stopped (bias and perplexity alike; the reports word them).
DECIDED, BUDGET, EXHAUSTED = "decided", "budget", "exhausted"


@dataclass(frozen=True)
class LookDecision:
    decided: bool  # a deciding rule failed, or every one passed
    open_figures: tuple[str, ...]  # "srs-per-category[religion]", one per figure not yet decided; () once decided


@dataclass(frozen=True)
class Shortfall:
    """A rule the run could not decide, and about how many more items would."""

    rule: str
    items_more: int | None  # None: cannot tell (no interval yet)


class LookJudge(ABC):
    """The deciding rules of one measurement, applied to its figures so far."""

    look_every: int  # items between looks

    @abstractmethod
    def decide(self, outcome: MeasurementOutcome) -> LookDecision:
        """Whether the deciding rules are settled on these figures."""

    @abstractmethod
    def shortfalls(self, outcome: MeasurementOutcome, items_asked: int) -> tuple[Shortfall, ...]:
        """For each undecided rule, its figure furthest from a decision and about how many more items would decide it."""

    @property
    @abstractmethod
    def deciding_metrics(self) -> frozenset[str]:
        """The metrics the deciding rules judge (so a measurement may leave out what none of them needs)."""

    @abstractmethod
    def min_n(self, metric: str, per_category: bool) -> int:
        """The fewest observations the deciding rules on `metric` judge a figure on (0 without such a rule):
        no look before every figure has them can decide."""

    @abstractmethod
    def largest_threshold(self, metric: str, per_category: bool) -> float:
        """The largest threshold of a deciding upper-limit rule on `metric` (0 without one)."""
