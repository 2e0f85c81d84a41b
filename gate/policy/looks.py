"""The policy's side of early stopping: its deciding rules judged at a look, exactly as the verdict judges them.

`look_judge(policy, measurement)` gives the `LookJudge` (gate.core.looks) a
measurement's plan takes: None when the policy has no `sequential` block or
no deciding rule (severity fail, not waived) on that measurement.
"""

from __future__ import annotations

import math

from gate.core.looks import LookDecision, LookJudge, Shortfall
from gate.core.result import MeasurementOutcome
from gate.policy.schema import Policy, Rule, measurement_of
from gate.policy.verdict import RuleOutcome, RuleStatus, evaluate


def deciding_rules(policy: Policy, measurement: str) -> tuple[Rule, ...]:
    return tuple(rule for rule in policy.rules if measurement_of(rule.metric) == measurement
                 and rule.severity == "fail" and rule.waived is None)


def look_judge(policy: Policy | None, measurement: str) -> PolicyLooks | None:
    if policy is None or policy.sequential is None:
        return None
    rules = deciding_rules(policy, measurement)
    return PolicyLooks(policy, rules) if rules else None


def label(rule: RuleOutcome) -> str:
    return f"{rule.rule_id}[{rule.category}]" if rule.category else rule.rule_id


class PolicyLooks(LookJudge):
    def __init__(self, policy: Policy, rules: tuple[Rule, ...]) -> None:
        self.policy = policy
        self.rules = rules
        self.look_every = policy.sequential.look_every if policy.sequential else 0

    def rule_outcomes(self, outcome: MeasurementOutcome) -> tuple[RuleOutcome, ...]:
        """The deciding rules applied to `outcome`, as the verdict will apply them."""
        return evaluate(self.policy.model_copy(update={"rules": self.rules, "require": ()}), [outcome]).rules

    def decide(self, outcome: MeasurementOutcome) -> LookDecision:
        judged = self.rule_outcomes(outcome)
        failed = any(r.status is RuleStatus.FAIL for r in judged)
        open_figures = tuple(label(r) for r in judged if r.status is not RuleStatus.PASS)
        return LookDecision(failed or not open_figures, () if failed else open_figures)

    @property
    def deciding_metrics(self) -> frozenset[str]:
        return frozenset(rule.metric for rule in self.rules)

    def min_n(self, metric: str, per_category: bool) -> int:
        return max((self.policy.min_n_of(rule) for rule in self.rules
                    if rule.metric == metric and rule.per_category == per_category), default=0)

    def largest_threshold(self, metric: str, per_category: bool) -> float:
        return max((r.threshold for r in self.rules if r.metric == metric and r.per_category == per_category
                    and r.direction == "max" and r.mode == "absolute"), default=0.0)

    def shortfalls(self, outcome: MeasurementOutcome, items_asked: int) -> tuple[Shortfall, ...]:
        worst: dict[str, Shortfall] = {}
        for short in self._figure_shortfalls(outcome, items_asked):
            rule = short.rule.split("[")[0]
            held = worst.get(rule)
            if held is None or (held.items_more is not None and (short.items_more is None or short.items_more > held.items_more)):
                worst[rule] = short
        return tuple(worst.values())

    def _figure_shortfalls(self, outcome: MeasurementOutcome, items_asked: int) -> list[Shortfall]:
        """For each undecided figure, the items that would shrink its interval enough to decide it.

        Interval half-widths shrink about as 1/sqrt(items): the figure decides
        once the interval's side towards the threshold is shorter than the
        point's distance to it (and the interval within the rule's width
        limit); the same point estimate is assumed. Rounded up to whole looks,
        since the asking decides only at a look.
        """
        out = []
        for rule in self.rule_outcomes(outcome):
            if rule.status is not RuleStatus.INCONCLUSIVE:
                continue
            interval, value, threshold = rule.interval, rule.value, rule.threshold
            min_n = self.policy.min_n_of(self._rule(rule.rule_id))
            if rule.n is not None and 0 < rule.n < min_n:
                out.append(Shortfall(label(rule), math.ceil(items_asked * (min_n / rule.n - 1))))
                continue
            if interval is None or value is None or threshold is None:
                out.append(Shortfall(label(rule), None))
                continue
            # The side of a (possibly lopsided) interval that must clear the threshold.
            half = interval.high - value if value < threshold else value - interval.low
            wanted = abs(value - threshold)
            width_limit = self.policy.width_limit(self._rule(rule.rule_id))
            if width_limit is not None:
                wanted = min(wanted, width_limit / 2)
            if wanted <= 0 or half <= 0:
                out.append(Shortfall(label(rule), None))
                continue
            more = max(1, math.ceil(items_asked * ((half / wanted) ** 2 - 1)))
            look = max(1, self.look_every)
            out.append(Shortfall(label(rule), math.ceil(more / look) * look))
        return out

    def _rule(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)
