"""`gate check`: resolve both models, run the selected measurements, decide.

The core returns a `CheckResult` and never prints or exits; the CLI renders
the result and exits once. Bad input raises a `GateError` before any model is
loaded. A measurement that breaks later is recorded as a failed outcome, so
the rest of the report survives and the verdict cannot be PASS.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, TypeVar

from gate import __version__
from gate.inputs.checkpoint import Checkpoint, open_checkpoint
from gate.inputs.compat import check_compatible
from gate.core.errors import ExitCode, InputError
from gate.core.progress import NULL_REPORTER, Reporter
from gate.inputs.refs import ModelRef, resolve_model
from gate.core.result import MeasurementOutcome
from gate.measurements.base import Audit, run_step
from gate.measurements.options import MeasurementOptions, SparsityOptions, flags
from gate.measurements.registry import get_measurement, load_step, measurement_names, measurements

if TYPE_CHECKING:
    from gate.policy.schema import Policy
    from gate.policy.verdict import Verdict

O = TypeVar("O", bound=MeasurementOptions)


def all_metrics() -> tuple[str, ...]:
    """Every registered measurement: what `gate check` runs by default."""
    return measurement_names()


@dataclass(frozen=True)
class CheckOptions:
    metrics: tuple[str, ...] = field(default_factory=all_metrics)
    policy: str = "default"
    backend: str = "auto"
    device: str | None = None
    dtype: str | None = None
    threads: int | None = None  # CPU threads for torch; None: torch's own choice
    cache: bool = True  # reuse and store the base's cached runs
    # Each measurement's typed options by its name; one left out takes its defaults. The JSON
    # document keeps them under "extra", as gate.check/v1 always has (see `extra`).
    settings: Mapping[str, MeasurementOptions] = field(default_factory=dict, metadata={"json": False})

    def __post_init__(self) -> None:
        for name, value in self.settings.items():
            wanted = get_measurement(name).options
            if not isinstance(value, wanted):
                raise InputError(f"options of {name} must be {wanted.__name__}, got {type(value).__name__}")

    def of(self, options_class: type[O]) -> O:
        """The options of the measurement whose options class this is (its defaults when none were given)."""
        found = next((v for v in self.settings.values() if type(v) is options_class), None)
        return found if found is not None else options_class()

    @property
    def expect_sparsity(self) -> float | None:  # gate.check/v1 readers find these at the top level
        return self.of(SparsityOptions).expected

    @property
    def sparsity_tolerance(self) -> float:
        return self.of(SparsityOptions).tolerance

    @property
    def extra(self) -> dict:
        """Every measurement's options by name (defaults included), and the cache switch: as gate.check/v1 has them."""
        chosen = {m.name: self.of(m.options) for m in measurements() if flags(m.options)}
        return {**chosen, "cache": self.cache}


@dataclass(frozen=True)
class ModelInfo:
    spec: str
    path: str
    source: str
    repo_id: str | None
    model_type: str | None
    architectures: tuple[str, ...]
    weight_files: int
    tensors: int


@dataclass(frozen=True)
class CheckResult:
    candidate: ModelInfo
    base: ModelInfo
    options: CheckOptions
    outcomes: tuple[MeasurementOutcome, ...]
    verdict: Verdict
    exit_code: ExitCode
    gate_version: str = __version__
    started: str = ""
    seconds: float = 0.0
    host: dict = field(default_factory=dict)


def validate_metrics(names: tuple[str, ...]) -> tuple[str, ...]:
    for name in names:
        get_measurement(name)  # an unknown name is one InputError listing the known ones
    if not names:
        raise InputError("no metric selected")
    return tuple(dict.fromkeys(names))


def output_dir_flags() -> tuple[str, ...]:
    """The measurement options that name a directory to write into (bias: --records)."""
    return tuple(flag.name for m in measurements() for _, flag in flags(m.options)
                 if flag.role == "output-dir" and flag.name)


def run_check(candidate_spec: str, base_spec: str, options: CheckOptions, reporter: Reporter = NULL_REPORTER,
              outputs: Mapping[str, Path | None] | None = None) -> CheckResult:
    """`outputs` (option -> path) are checked again once aliases and hub ids are resolved to directories."""
    started, t0 = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.perf_counter()
    metrics = validate_metrics(options.metrics)
    policy = _load_policy(options.policy)
    cand_ref, base_ref = resolve_model(candidate_spec, reporter), resolve_model(base_spec, reporter)
    if outputs:
        from gate.report.write import check_output_paths, check_records_dir

        models, dirs = [cand_ref.path, base_ref.path], output_dir_flags()
        check_output_paths({k: v for k, v in outputs.items() if k not in dirs}, models)
        for flag in dirs:
            check_records_dir(flag, outputs.get(flag), models)
    candidate, base = open_checkpoint(cand_ref.path), open_checkpoint(base_ref.path)
    check_compatible(candidate, base)

    outcomes = []
    audit = Audit(candidate, base, reporter)
    for name in metrics:
        if get_measurement(name).kind == "checkpoint":
            outcomes.append(run_step(name, lambda name=name: load_step(name).run(audit, options)))
    model_steps = [n for n in metrics if get_measurement(n).kind == "model"]
    if model_steps:
        from gate.run.schedule import run_model_steps

        outcomes.extend(run_model_steps(model_steps, cand_ref, base_ref, options, reporter, policy))

    outcomes = [dataclasses.replace(o, title=get_measurement(o.name).title) for o in outcomes]
    verdict = _evaluate(policy, outcomes)
    return CheckResult(
        candidate=_info(cand_ref, candidate), base=_info(base_ref, base), options=options,
        outcomes=tuple(outcomes), verdict=verdict, exit_code=_exit_code(verdict, outcomes),
        started=started, seconds=time.perf_counter() - t0,
        host={"python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine()},
    )


def _info(ref: ModelRef, checkpoint: Checkpoint) -> ModelInfo:
    # config.json is input: only the string values it should hold reach the report.
    model_type = checkpoint.model_type if isinstance(checkpoint.model_type, str) else None
    architectures = checkpoint.config.get("architectures")
    architectures = tuple(a for a in architectures if isinstance(a, str)) if isinstance(architectures, list) else ()
    return ModelInfo(
        spec=ref.spec, path=str(ref.path), source=ref.source, repo_id=ref.repo_id,
        model_type=model_type, architectures=architectures,
        weight_files=len(checkpoint.weight_files), tensors=len(checkpoint.tensors),
    )


def _load_policy(name: str) -> Policy:
    from gate.policy.loader import load_policy

    return load_policy(name)


def _evaluate(policy: Policy, outcomes: list[MeasurementOutcome]) -> Verdict:
    from gate.policy.verdict import evaluate

    return evaluate(policy, outcomes)


def _exit_code(verdict: Verdict, outcomes: list[MeasurementOutcome]) -> ExitCode:
    if any(o.error_kind == "internal" for o in outcomes):
        return ExitCode.INTERNAL
    from gate.policy.verdict import exit_code

    return exit_code(verdict)

