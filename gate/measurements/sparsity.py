"""Weight sparsity over the prunable scope: overall, per layer, per module kind, N:M.

Sparsity = exact zeros / elements over the 2-D weights of the linear layers
inside the transformer blocks (see `scan.PRUNABLE_KINDS`); embeddings, the LM
head, norms and biases are outside it. The checkpoint-wide zero and
non-finite counts are kept beside it: a NaN anywhere blocks a pass.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from gate.core.numbers import pct
from gate.measurements.options import DEFAULT_TOLERANCE
from gate.measurements.scan import NM_PATTERNS, PRUNABLE_KINDS, CheckpointScan, TensorScan
from gate.core.result import Finding, Metric, Severity

# A module kind this much sparser than a pruned model's overall scope reads as "left dense".
DENSE_KIND_MAX = 0.01
# How far the actual sparsity may fall from a declared one (absolute).


@dataclass(frozen=True)
class ZeroCount:
    label: str
    numel: int
    zeros: int

    @property
    def sparsity(self) -> float | None:
        return self.zeros / self.numel if self.numel else None


@dataclass(frozen=True)
class NMSummary:
    pattern: str  # "2:4"
    conforming: int  # prunable tensors that conform
    applicable: int  # prunable tensors whose rows the pattern tiles

    @property
    def all_conform(self) -> bool:
        return self.applicable > 0 and self.conforming == self.applicable


@dataclass(frozen=True)
class ModelSparsity:
    overall: ZeroCount  # the prunable scope
    by_layer: tuple[ZeroCount, ...]
    by_kind: tuple[ZeroCount, ...]
    nm: tuple[NMSummary, ...]
    checkpoint: ZeroCount  # every tensor, scope or not
    nonfinite: int
    nonfinite_tensors: tuple[str, ...]
    quantized_tensors: int  # packed prunable tensors whose sparsity cannot be read

    @property
    def dense_kinds(self) -> tuple[str, ...]:
        """Module kinds left dense in a model that is otherwise pruned."""
        overall = self.overall.sparsity or 0.0
        if overall < 2 * DENSE_KIND_MAX:
            return ()
        return tuple(k.label for k in self.by_kind if (k.sparsity or 0.0) < DENSE_KIND_MAX)


def summarize_sparsity(scan: CheckpointScan) -> ModelSparsity:
    prunable = scan.prunable
    layers: dict[int, list[TensorScan]] = defaultdict(list)
    kinds: dict[str, list[TensorScan]] = defaultdict(list)
    for t in prunable:
        layers[t.layer].append(t)
        kinds[t.kind].append(t)
    nonfinite = [t for t in scan.tensors if t.nonfinite]
    return ModelSparsity(
        overall=_count("prunable", prunable),
        by_layer=tuple(_count(str(i), layers[i]) for i in sorted(layers)),
        by_kind=tuple(_count(k, kinds[k]) for k in PRUNABLE_KINDS if k in kinds),
        nm=tuple(_nm_summary(f"{n}:{m}", prunable) for n, m in NM_PATTERNS),
        checkpoint=_count("checkpoint", scan.tensors),
        nonfinite=sum(t.nonfinite for t in nonfinite),
        nonfinite_tensors=tuple(t.name for t in nonfinite),
        quantized_tensors=sum(1 for t in scan.tensors if t.prunable and t.quantized),
    )


def _count(label: str, tensors) -> ZeroCount:
    return ZeroCount(label=label, numel=sum(t.numel for t in tensors), zeros=sum(t.zeros for t in tensors))


def _nm_summary(pattern: str, tensors: tuple[TensorScan, ...]) -> NMSummary:
    verdicts = [t.conforms(pattern) for t in tensors]
    return NMSummary(pattern, conforming=sum(v is True for v in verdicts), applicable=sum(v is not None for v in verdicts))


@dataclass(frozen=True)
class SparsityComparison:
    candidate: ModelSparsity
    base: ModelSparsity
    expected: float | None = None  # the declared target (--expect-sparsity)
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def declared_gap(self) -> float | None:
        actual = self.candidate.overall.sparsity
        if self.expected is None or actual is None:
            return None
        return self.expected - actual

    def metrics(self) -> tuple[Metric, ...]:
        cand, base = self.candidate.overall, self.base.overall
        metrics = [Metric("sparsity.actual", cand.sparsity, base=base.sparsity, candidate=cand.sparsity, n=cand.numel)]
        if self.declared_gap is not None:
            metrics.append(Metric("sparsity.declared_gap", self.declared_gap, candidate=cand.sparsity, n=cand.numel))
        return tuple(metrics)

    def findings(self) -> tuple[Finding, ...]:
        found = []
        for role, model in (("candidate", self.candidate), ("base", self.base)):
            if model.nonfinite:
                names = ", ".join(model.nonfinite_tensors[:3]) + (" …" if len(model.nonfinite_tensors) > 3 else "")
                found.append(Finding(Severity.ERROR, "nonfinite-weights",
                                     f"{role} has {model.nonfinite:,} non-finite weights (NaN/Inf) in {names}", role))
            if model.overall.numel == 0:
                found.append(Finding(Severity.WARNING, "no-prunable-weights",
                                     f"{role} has no float linear-layer weights inside its blocks: sparsity cannot be measured", role))
            if model.quantized_tensors:
                found.append(Finding(Severity.INFO, "quantized-weights",
                                     f"{role} has {model.quantized_tensors} packed quantized weights whose sparsity is not measured", role))
        dense = self.candidate.dense_kinds
        if dense:
            found.append(Finding(Severity.WARNING, "dense-module-kinds",
                                 f"candidate is pruned but leaves {', '.join(dense)} dense", "candidate"))
        gap = self.declared_gap
        if gap is not None and abs(gap) > self.tolerance:
            actual = self.candidate.overall.sparsity
            if gap > 0:
                why = f"; dense module kinds: {', '.join(dense)}" if dense else ""
                found.append(Finding(Severity.ERROR, "declared-sparsity-not-met",
                                     f"declared sparsity {pct(self.expected)} but the weights are {pct(actual)} sparse{why}", "candidate"))
            else:
                found.append(Finding(Severity.WARNING, "sparser-than-declared",
                                     f"declared sparsity {pct(self.expected)} but the weights are {pct(actual)} sparse", "candidate"))
        return tuple(found)
