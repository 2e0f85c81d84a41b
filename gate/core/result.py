"""Result types shared by every measurement, the policy and the reports.

Each measurement returns its own frozen dataclass, which exposes what a policy
can judge as `Metric`s and what must never pass silently as `Finding`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float = 0.95
    method: str = ""  # "wilson", "newcombe", "paired-bootstrap", "delta", ...


@dataclass(frozen=True)
class Metric:
    """One figure a policy rule can judge.

    `key` names the figure ("perplexity.ratio", "bias.srs.change", ...);
    `category` is set for per-category bias figures. `value` is the judged
    figure (a ratio, a difference, a rate); None means undefined, which a rule
    must never treat as a pass.
    """

    key: str
    value: float | None
    base: float | None = None
    candidate: float | None = None
    interval: Interval | None = None
    n: int | None = None  # sample size behind the figure (items, windows, prompts)
    category: str | None = None
    unit: str = ""
    p_value: float | None = None


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"  # blocks a PASS whatever the policy says


@dataclass(frozen=True)
class Finding:
    """A fact the report must show; ERROR findings keep the verdict from passing."""

    severity: Severity
    code: str  # stable identifier, e.g. "nonfinite-weights"
    message: str
    subject: str | None = None  # "candidate", "base", a tensor name, ...


@dataclass(frozen=True)
class MeasurementOutcome:
    """A measurement's result, or the error that stopped it (fail closed)."""

    name: str
    result: object | None = None
    error: str | None = None
    error_kind: str | None = None  # "measurement" (a finding about the model) or "internal" (a bug)
    metrics: tuple[Metric, ...] = field(default_factory=tuple)
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    seconds: float = 0.0
    base_cached: bool = False  # the base's run came from the cache (see gate.run.cache)
    # The level its p-values are judged at, when it spent part of the policy's
    # alpha on sequential looks (gate.measurements.bias.sequential); None: the policy's alpha.
    alpha: float | None = None
    # Said before any model loaded (gate.run.estimate): the plan in words and its estimated seconds, to be
    # compared with `seconds`; None for measurements that give no estimate.
    plan: str | None = None
    estimated_seconds: float | None = None
    # A run that stops once decided: the estimate to its first look that can decide (a clear case ends there); the real
    # time lies between this and `estimated_seconds`.
    estimated_first_look_seconds: float | None = None
    title: str = ""  # the report section's title, from the measurement's registration

    @property
    def ok(self) -> bool:
        return self.error is None
