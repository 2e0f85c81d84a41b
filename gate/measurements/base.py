"""The measurements `gate check` can run, behind two small interfaces.

A `CheckpointStep` reads weight files only (sparsity, size). A `ModelStep`
runs a model: it first makes a plan from the tokenizer and the options (so a
bad input is reported before any model loads), then runs on the base and on
the candidate, one model in memory at a time, and finally compares the two
runs. Adding a measurement means adding a step and registering it in
`STEPS`; the CLI and the orchestration do not change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from gate.inputs.checkpoint import Checkpoint
from gate.core.errors import GateError, InputError
from gate.measurements.scan import CheckpointScan, scan_checkpoint
from gate.measurements.size import SizeComparison, measure_size
from gate.measurements.sparsity import SparsityComparison, summarize_sparsity
from gate.core.progress import Reporter
from gate.core.result import Finding, MeasurementOutcome, Metric, Severity


@dataclass(frozen=True)
class StepResult:
    result: Any  # the measurement's own frozen dataclass (serialised into the JSON document)
    metrics: tuple[Metric, ...]
    findings: tuple[Finding, ...] = ()
    alpha: float | None = None  # see MeasurementOutcome.alpha


def run_step(name: str, run: Callable[[], StepResult], seconds: float = 0.0) -> MeasurementOutcome:
    """Run one measurement's final phase and record its outcome.

    Bad input propagates (exit 2). Anything else that breaks is recorded, so
    the rest of the report survives and the verdict cannot pass: a GateError
    as a finding about the model, any other exception as a bug (exit 4).
    """
    t0 = time.perf_counter()
    try:
        step = run()
    except InputError:
        raise
    except GateError as exc:
        return failed_outcome(name, "measurement", str(exc), seconds + time.perf_counter() - t0)
    except Exception as exc:
        return failed_outcome(name, "internal", f"{type(exc).__name__}: {exc}", seconds + time.perf_counter() - t0)
    return MeasurementOutcome(name, result=step.result, metrics=tuple(step.metrics), findings=tuple(step.findings),
                              seconds=seconds + time.perf_counter() - t0, alpha=step.alpha)


def failed_outcome(name: str, kind: str, message: str, seconds: float = 0.0) -> MeasurementOutcome:
    return MeasurementOutcome(name, error=message, error_kind=kind, seconds=seconds)


class Audit:
    """Both checkpoints, each scanned once however many steps need the scan."""

    def __init__(self, candidate: Checkpoint, base: Checkpoint, reporter: Reporter):
        self.candidate, self.base, self._reporter = candidate, base, reporter
        self._scans: dict[str, CheckpointScan] = {}

    def scan(self, role: str) -> CheckpointScan:
        if role not in self._scans:
            self._scans[role] = scan_checkpoint(getattr(self, role), self._reporter, label=role)
        return self._scans[role]


@dataclass(frozen=True)
class PairContext:
    """What the orchestration gives a step that runs both models itself (`run_pair`)."""

    load: Callable[[str], Any]  # "base" or "candidate" -> a freshly loaded model handle
    cached_base: Any | None = None  # the base's cached run for this plan (steps with a cache key)
    same_weights: bool = False  # candidate and base are byte-identical: weights, config, tokenizer
    # Keeps the base's run (in the cache) as soon as it is known, even if the candidate then fails.
    keep_base: Callable[[Any], None] = lambda run: None


def runtime_findings(runtimes: dict[str, dict[str, Any] | None]) -> tuple[Finding, ...]:
    """An INFO for each model measured on vLLM, naming its version, hardware and parallelism, so that a
    report says which engine produced the quality figures (latency never runs on vLLM)."""
    found = []
    for subject, runtime in runtimes.items():
        if runtime and runtime.get("backend") == "vllm":
            found.append(Finding(Severity.INFO, "vllm-runtime", (
                f"measured on vLLM {runtime.get('vllm_version')} ({runtime.get('device')}: "
                f"{runtime.get('device_description')}, {runtime.get('dtype')}, tensor parallel "
                f"{runtime.get('tensor_parallel_size')}, pipeline parallel {runtime.get('pipeline_parallel_size')})"),
                subject))
    return tuple(found)


class CheckpointStep(Protocol):
    name: str

    def run(self, audit: Audit, options: Any) -> StepResult: ...


class ModelStep(Protocol):
    name: str

    def backend(self, options: Any) -> str:
        """The runtime this step runs on ("torch" or "mlx"), resolved from the options."""
        ...

    def plan(self, tokenizer: Any, options: Any, policy: Any = None) -> Any:
        """Everything the runs need, from the base tokenizer (and the policy, where the step
        stops early once the policy is decided); bad input raises here, before any model loads."""
        ...

    def run(self, handle: Any, plan: Any, reporter: Reporter) -> Any: ...

    # Optional: `run_pair(context: PairContext, plan, reporter) -> (base_run, candidate_run)`
    # runs both models itself (latency alternates them; bias asks both until the policy is decided).

    def compare(self, base_run: Any, candidate_run: Any, plan: Any) -> StepResult: ...


class SparsityStep:
    name = "sparsity"

    def run(self, audit: Audit, options: Any) -> StepResult:
        comparison = SparsityComparison(
            candidate=summarize_sparsity(audit.scan("candidate")),
            base=summarize_sparsity(audit.scan("base")),
            expected=options.expect_sparsity,
            tolerance=options.sparsity_tolerance,
        )
        return StepResult(comparison, comparison.metrics(), comparison.findings())


class SizeStep:
    name = "size"

    def run(self, audit: Audit, options: Any) -> StepResult:
        comparison = SizeComparison(
            candidate=measure_size(audit.candidate, audit.scan("candidate")),
            base=measure_size(audit.base, audit.scan("base")),
        )
        return StepResult(comparison, comparison.metrics())


CHECKPOINT_STEPS: dict[str, CheckpointStep] = {"sparsity": SparsityStep(), "size": SizeStep()}
