"""What a measurement will ask of a model, in units a cost model can price (see gate.run.estimate).

Each measurement says what its plan amounts to (`workload(plan, tokenizer)`);
the orchestration prices it for the machine before any model loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Workload:
    """What one measurement will ask of one model, in the units the cost model prices."""

    tokens: int = 0  # tokens through the blocks, in large batches
    logit_positions: int = 0  # positions whose next-token logits are computed
    attention_pairs: int = 0  # sum over sequences of (length² / 2)
    decode_steps: int = 0  # new tokens generated one at a time
    calls: int = 0  # separate model calls (each with a fixed cost, e.g. a prompt's prefill at batch 1)


@dataclass(frozen=True)
class FirstLook:
    """Where a run that stops once decided looks first: the least it can do."""

    words: str  # "8 windows", "24 items"
    per_model: Workload


@dataclass(frozen=True)
class WorkPlan:
    """A measurement's whole plan: its work on each model and how often models are loaded."""

    summary: str  # e.g. "32 windows × 512 tokens × 2 models"
    per_model: Workload
    models: int = 2  # models that do the work (1 when the base's run is cached)
    loads: int = 2  # model loads
    cap_seconds: float | None = None  # a time budget per model that ends the work early (the bias budget)
    units: int | None = None  # the items the work covers ("up to 11,956 items"): how far a time budget reaches is said in them
    stops_early: bool = False  # it ends once the policy's rules are decided: estimated at its longest
    first_look: FirstLook | None = None  # with stops_early: the work to the first look that can decide


def sequences_workload(lengths: Iterable[int], logits: str = "all") -> Workload:
    """Sequences scored in large batches: every position's logits ("all") or the last one's ("last")."""
    lengths = list(lengths)
    tokens = sum(lengths)
    positions = tokens if logits == "all" else len(lengths)
    return Workload(tokens=tokens, logit_positions=positions, attention_pairs=sum(n * n // 2 for n in lengths))
