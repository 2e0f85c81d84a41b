"""Default budgets that fit the machine, scaled down out loud, never silently.

A measurement left at its default budget whose up-front estimate here is
over `TARGET_SECONDS` (a 7B pair on a laptop CPU, say) is planned again at
about that cost: fewer perplexity windows, fewer latency prompts and rounds.
The change is announced before any model loads and kept in the report as a
WARNING finding, since a smaller sample may leave a rule INCONCLUSIVE.
`--full-budgets` (CheckOptions.fit_to_machine off) measures the default plan
whatever it costs; a budget the user set is never changed. Bias needs none of
this: its default budget is already seconds of asking (5 minutes of the candidate's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from gate.core.result import Finding, Severity
from gate.run.estimate import Estimate, describe_seconds

if TYPE_CHECKING:
    from gate.core.looks import LookJudge
    from gate.core.tokenizer import Tokenizer
    from gate.measurements.base import ModelStep
    from gate.measurements.check_options import CheckOptions

TARGET_SECONDS = 300.0  # per measurement, both models: a default run ends in minutes


@dataclass(frozen=True)
class Fitted:
    plan: Any
    estimate: Estimate
    finding: Finding


def fit_to_machine(step: ModelStep, plan: Any, estimate: Estimate | None, options: CheckOptions, tokenizer: Tokenizer,
                   looks: LookJudge | None, estimate_plan: Callable[[Any], Estimate | None]) -> Fitted | None:
    """A smaller plan for `step` when its default one would take over the target here; None to keep the plan."""
    if not options.fit_to_machine or estimate is None or estimate.seconds <= TARGET_SECONDS:
        return None
    smaller = step.scaled_options(plan, options, TARGET_SECONDS / estimate.seconds)
    if smaller is None:
        return None
    new_plan = step.plan(tokenizer, smaller, looks)
    new_estimate = estimate_plan(new_plan)
    if new_estimate is None:
        return None
    message = (f"the default plan ({estimate.plan}) would take {describe_seconds(estimate.seconds)} here, over the "
               f"{describe_seconds(TARGET_SECONDS).removeprefix('about ')} a default measurement is allowed, so it "
               f"was scaled down to {new_estimate.plan} ({describe_seconds(new_estimate.seconds)}); a smaller sample "
               f"may leave its rules INCONCLUSIVE; --full-budgets measures the default plan")
    return Fitted(new_plan, new_estimate, Finding(Severity.WARNING, "budget-scaled-down", message))
