"""The contract every measurement's step keeps, and the two weights-only steps.

A `CheckpointStep` reads weight files only (sparsity, size). A `ModelStep`
runs a model: it first makes a plan from the tokenizer and the options (so a
bad input is reported before any model loads), then runs on the base and on
the candidate, one model in memory at a time, and finally compares the two
runs. What else a model step can do it declares, never left to be probed:
`runs_pair` (it holds both models itself: `run_pair`), `run_against` (the
candidate's run given the base's), and `cache_key` (its base run may be
cached; None: never). Each measurement registers its step once, in
gate.measurements.registry; the CLI and the orchestration do not change.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Generic, TypeVar

from gate.inputs.checkpoint import Checkpoint
from gate.core.errors import GateError, InputError
from gate.measurements.options import SparsityOptions
from gate.measurements.scan import CheckpointScan
from gate.measurements.scan_input import scan_model_input
from gate.measurements.size import SizeComparison, measure_size
from gate.measurements.sparsity import SparsityComparison, summarize_sparsity
from gate.core.progress import Reporter
from gate.core.result import Finding, MeasurementOutcome, Metric, Severity

if TYPE_CHECKING:
    from gate.core.workload import WorkPlan
    from gate.core.looks import LookJudge
    from gate.core.tokenizer import Tokenizer
    from gate.measurements.check_options import CheckOptions
    from gate.runtime.base import ModelHandle

T = TypeVar("T")
Plan = TypeVar("Plan")
Run = TypeVar("Run")


@dataclass(frozen=True)
class StepResult:
    result: Any  # the measurement's own frozen dataclass (serialised into the JSON document)
    metrics: tuple[Metric, ...]
    findings: tuple[Finding, ...] = ()
    alpha: float | None = None  # see MeasurementOutcome.alpha


@dataclass(frozen=True)
class Failure:
    """Why a measurement phase broke: "measurement" (a finding about the model) or "internal" (a bug)."""

    kind: str
    message: str


def attempt(work: Callable[[], T], prefix: str = "", passthrough: tuple[type[BaseException], ...] = (InputError,)
            ) -> T | Failure:
    """Run one phase of a measurement; what breaks is recorded so the rest of the report survives.

    Bad input (`passthrough`) propagates (exit 2). Anything else that breaks
    makes the verdict fail: a GateError as a finding about the model, any
    other exception as a bug (exit 4). `prefix` says where (e.g. "base: ").
    """
    try:
        return work()
    except passthrough:
        raise
    except GateError as exc:
        return Failure("measurement", f"{prefix}{exc}")
    except Exception as exc:
        return Failure("internal", f"{prefix}{type(exc).__name__}: {exc}")


def run_step(name: str, run: Callable[[], StepResult], seconds: float = 0.0) -> MeasurementOutcome:
    """Run one measurement's final phase and record its outcome (see `attempt`)."""
    t0 = time.perf_counter()
    step = attempt(run)
    spent = seconds + time.perf_counter() - t0
    if isinstance(step, Failure):
        return failed_outcome(name, step.kind, step.message, spent)
    return MeasurementOutcome(name, result=step.result, metrics=tuple(step.metrics), findings=tuple(step.findings),
                              seconds=spent, alpha=step.alpha)


def failed_outcome(name: str, kind: str, message: str, seconds: float = 0.0) -> MeasurementOutcome:
    return MeasurementOutcome(name, error=message, error_kind=kind, seconds=seconds)


class Audit:
    """Both checkpoints, each scanned once however many steps need the scan."""

    def __init__(self, candidate: Checkpoint, base: Checkpoint, reporter: Reporter):
        self.candidate, self.base, self._reporter = candidate, base, reporter
        self._scans: dict[str, CheckpointScan] = {}

    def scan(self, role: str) -> CheckpointScan:
        if role not in self._scans:
            self._scans[role] = scan_model_input(getattr(self, role), self._reporter, label=role)
        return self._scans[role]


@dataclass(frozen=True)
class PairContext:
    """What the orchestration gives a step that runs both models itself (`run_pair`)."""

    load: Callable[[str], "ModelHandle"]  # "base" or "candidate" -> a freshly loaded model handle
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


class CheckpointStep(ABC):
    """A measurement of the weight files alone; both checkpoints are scanned once for all such steps."""

    name: ClassVar[str]

    @abstractmethod
    def run(self, audit: Audit, options: CheckOptions) -> StepResult: ...


class ModelStep(ABC, Generic[Plan, Run]):
    """A measurement that runs the models; see the module docstring for the order of the calls."""

    name: ClassVar[str]
    runs_pair: ClassVar[bool] = False  # True: `run_pair` holds both models itself; `run` is not called
    run_type: ClassVar[type | None] = None  # the type of a cached base run (steps with a cache key)

    def backend(self, options: CheckOptions) -> str:
        """The runtime this step runs on ("torch" or "mlx"), resolved from the options."""
        from gate.runtime.registry import resolve_backend

        return resolve_backend(options.backend)

    @abstractmethod
    def plan(self, tokenizer: Tokenizer, options: CheckOptions, looks: LookJudge | None = None) -> Plan:
        """Everything the runs need, from the base tokenizer (and, for a step that stops early once the
        policy is decided, the policy's judge of its rules); bad input raises here, before any model loads."""

    def scaled_options(self, plan: Plan, options: CheckOptions, fraction: float) -> CheckOptions | None:
        """Options for a smaller plan of about `fraction` of this one's work, where this machine is too slow for
        the default budget (gate.run.fit); None where the user set the budget, the step has no budget to scale
        (or bounds itself), or it is at its floor already."""
        return None

    def run(self, handle: ModelHandle, plan: Plan, reporter: Reporter) -> Run:
        """One model's run (the base's, and the candidate's unless `run_against` says otherwise)."""
        raise NotImplementedError(f"{self.name} runs both models itself (run_pair)")

    def run_against(self, handle: ModelHandle, plan: Plan, base_run: Run, reporter: Reporter) -> Run:
        """The candidate's run, given the base's; by default the same as the base's."""
        return self.run(handle, plan, reporter)

    def run_pair(self, context: PairContext, plan: Plan, reporter: Reporter) -> tuple[Run, Run]:
        """Both models' runs, the step deciding how to hold them (`runs_pair` steps only)."""
        raise NotImplementedError(f"{self.name} runs one model at a time (run)")

    def cache_key(self, plan: Plan) -> str | None:
        """What, besides the base model and its runtime, defines the base's run; None: never cached."""
        return None

    def cacheable(self, run: Run) -> bool:
        """Whether this base run may be stored (a broken one may not)."""
        return True

    def supersedes(self, run: Run, cached: Run) -> bool:
        """Whether a new base run should replace the cached one (it holds more)."""
        return False

    def workload(self, plan: Plan, tokenizer: Tokenizer) -> WorkPlan | None:
        """What the plan will ask of the models, for the up-front estimate; None: no estimate."""
        return None

    @abstractmethod
    def compare(self, base_run: Run, candidate_run: Run, plan: Plan) -> StepResult: ...


class SparsityStep(CheckpointStep):
    name = "sparsity"

    def run(self, audit: Audit, options: CheckOptions) -> StepResult:
        settings = options.of(SparsityOptions)
        comparison = SparsityComparison(
            candidate=summarize_sparsity(audit.scan("candidate")),
            base=summarize_sparsity(audit.scan("base")),
            expected=settings.expected,
            tolerance=settings.tolerance,
        )
        return StepResult(comparison, comparison.metrics(), comparison.findings())


class SizeStep(CheckpointStep):
    name = "size"

    def run(self, audit: Audit, options: CheckOptions) -> StepResult:
        comparison = SizeComparison(
            candidate=measure_size(audit.candidate, audit.scan("candidate")),
            base=measure_size(audit.base, audit.scan("base")),
        )
        return StepResult(comparison, comparison.metrics())
