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
from typing import TYPE_CHECKING, Mapping

from gate import __version__
from gate.inputs.checkpoint import Checkpoint, open_checkpoint
from gate.inputs.compat import check_compatible
from gate.core.errors import ExitCode, InputError
from gate.core.progress import NULL_REPORTER, Reporter
from gate.inputs.refs import ModelRef, resolve_model
from gate.core.result import MeasurementOutcome
from gate.measurements.base import Audit, run_step
from gate.measurements.check_options import CheckOptions  # noqa: F401 (gate.run.check.CheckOptions, as before)
from gate.measurements.options import flags
from gate.measurements.registry import get_measurement, load_step, measurements

if TYPE_CHECKING:
    from gate.policy.schema import Policy
    from gate.policy.verdict import Verdict

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
    from gate.demo.build import ensure_demo_checkpoint

    cand_ref, base_ref = (resolve_model(spec, reporter, build_demo=ensure_demo_checkpoint)
                          for spec in (candidate_spec, base_spec))
    if outputs:
        from gate.core.files import check_records_dir
        from gate.report.write import check_output_paths

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

