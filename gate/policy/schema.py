"""The policy schema: what a YAML policy may say, and nothing else.

Unknown keys are rejected (a typo must never silently drop a rule), every
model is frozen, and the defaults are the cautious ones.

How a rule reads its metric
---------------------------
- `direction: max`: the figure must stay at or below `threshold`;
  `direction: min`: at or above it.
- `mode: absolute`: the metric's value and interval are compared as they are.
  `mode: relative`: both are first divided by the metric's `base` figure (the
  base model's own level), so `threshold: 0.10` on `bias.srs.change` reads
  "SRS may rise by at most 10% of the base model's SRS". The base figure is
  taken as fixed; a metric without a usable base figure makes the rule
  inconclusive. Ratios (`perplexity.ratio`) are already relative: use absolute.
- `judge`: which figure is compared: the interval's `upper` or `lower` end, or
  the `point` estimate. The default is the unsafe end (upper for max, lower
  for min), so a rule passes only when the whole interval is on the safe side.
  Deterministic figures without an interval (size, sparsity) use `point`.
- `per_category: true` judges each category's figure (BBQ categories) and
  Holm-adjusts their p-values; otherwise the overall figure (no category).
- `require` names measurements (`bias`) or metric keys (`bias.srs.change`)
  that must be present. A missing one makes the verdict INCONCLUSIVE: absent
  evidence is not evidence of harm, but it is never a PASS either.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, field_validator, model_validator

from gate.measurements.registry import measurement_names, owner_of

_METRIC_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def measurement_of(metric_key: str) -> str:
    """The measurement that produces a metric, from its key's first part (as registered)."""
    return owner_of(metric_key) or metric_key.split(".", 1)[0]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Waiver(_Strict):
    """Switches a rule off; the written reason is shown in every report."""

    reason: str = Field(min_length=1)

    @field_validator("reason")
    @classmethod
    def _reason_is_written(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("a waiver needs a written reason")
        return reason.strip()


class Rule(_Strict):
    id: str
    metric: str
    direction: Literal["max", "min"]
    threshold: FiniteFloat
    mode: Literal["absolute", "relative"] = "absolute"
    judge: Literal["upper", "lower", "point"] | None = None
    per_category: bool = False
    min_n: int | None = Field(default=None, ge=1)
    max_interval_width: FiniteFloat | None = Field(default=None, gt=0)
    severity: Literal["fail", "warn"] = "fail"
    # The metric exists only on request (e.g. sparsity.declared_gap needs a
    # declared target): its absence is "not measured" rather than inconclusive.
    optional: bool = False
    waived: Waiver | None = None
    description: str = ""

    @field_validator("id")
    @classmethod
    def _id_is_a_name(cls, value: str) -> str:
        if not _RULE_ID.match(value):
            raise ValueError(f"rule id {value!r} must be letters, digits, '_', '.' or '-'")
        return value

    @field_validator("metric")
    @classmethod
    def _metric_is_known(cls, value: str) -> str:
        if not _METRIC_KEY.match(value):
            raise ValueError(f"metric {value!r} is not a metric key like 'perplexity.ratio'")
        if owner_of(value) is None:
            raise ValueError(f"metric {value!r} names no measurement (one of {', '.join(measurement_names())})")
        return value

    @property
    def judged_end(self) -> Literal["upper", "lower", "point"]:
        """The figure compared with the threshold; by default the unsafe end."""
        if self.judge is not None:
            return self.judge
        return "upper" if self.direction == "max" else "lower"


class Sequential(_Strict):
    """Looking at the BBQ answers while they come in, and stopping once the bias rules are decided.

    Base and candidate answer the items in the same balanced order; after
    every `look_every` items the deciding bias rules are judged on the paired
    answers so far. Intervals are confidence sequences (anytime-valid: they
    hold at every look at once), so the run may stop at the first look that
    decides with the error rate of a single fixed-size test kept; see
    gate.measurements.bias.sequential.
    """

    look_every: int = Field(default=24, ge=4, le=100_000)


class Policy(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    version: int = Field(default=1, ge=1)
    require: tuple[str, ...] = ()
    # Defaults for rules that set none; min_n applies only where a metric reports its n.
    min_n: int = Field(default=1, ge=1)
    max_interval_width: FiniteFloat | None = Field(default=None, gt=0)
    # Family-wise error rate for per-category failures (Holm across categories).
    alpha: FiniteFloat = Field(default=0.05, gt=0, lt=1)
    rules: tuple[Rule, ...] = Field(min_length=1)
    # Early stopping of the candidate's bias measurement; absent: every item is asked.
    sequential: Sequential | None = None

    def min_n_of(self, rule: Rule) -> int:
        """The fewest items `rule` judges a figure on: its own minimum, else the policy's default."""
        return rule.min_n if rule.min_n is not None else self.min_n

    def width_limit(self, rule: Rule) -> float | None:
        """The widest interval `rule` accepts: its own limit, else the policy's default."""
        return rule.max_interval_width if rule.max_interval_width is not None else self.max_interval_width

    @field_validator("require")
    @classmethod
    def _requirements_are_known(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if owner_of(name) is None:
                raise ValueError(f"require names {name!r}, not one of {', '.join(measurement_names())}")
            if "." in name and not _METRIC_KEY.match(name):
                raise ValueError(f"require names {name!r}, not a metric key like 'bias.srs.change'")
        return names

    @model_validator(mode="after")
    def _rule_ids_are_unique(self) -> "Policy":
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} appears twice")
            seen.add(rule.id)
        return self
