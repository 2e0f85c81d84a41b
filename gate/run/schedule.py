"""Running the model-based measurements, one model in memory at a time.

Every step plans first (from the base tokenizer), so bad input stops the run
before any weights load. Then, for each runtime the steps need, the base is
loaded, measured and freed, and the candidate after it: a 7B pair never has
to fit in memory twice. Finally each step compares its two runs.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gate.run.cache import BaseRunCache, weights_digest
from gate.run.estimate import Estimate, estimate_plans
from gate.core.errors import BackendUnavailableError, InputError, first_line
from gate.core.progress import Reporter
from gate.inputs.refs import ModelRef
from gate.core.result import Finding, MeasurementOutcome
from gate.measurements.base import Failure, ModelStep, PairContext, attempt, failed_outcome, run_step
from gate.measurements.registry import get_measurement, load_step
from gate.policy.looks import look_judge
from gate.run.fit import fit_to_machine

if TYPE_CHECKING:
    from gate.core.tokenizer import Tokenizer
    from gate.policy.schema import Policy
    from gate.measurements.check_options import CheckOptions


def model_step(name: str) -> ModelStep:
    """The registered step of a model measurement, imported now."""
    step = load_step(name)
    if get_measurement(name).kind != "model" or not isinstance(step, ModelStep):
        raise TypeError(f"measurement {name!r} does not register a ModelStep")
    return step


class _Runs:
    """What the runs have produced so far: each step's base and candidate runs, failures and time spent."""

    def __init__(self) -> None:
        self.runs: dict[tuple[str, str], Any] = {}
        self.failures: dict[str, Failure] = {}
        self.seconds: dict[str, float] = defaultdict(float)
        self.from_cache: set[str] = set()
        self.estimates: dict[str, Estimate] = {}  # said up front, recorded beside the real time
        self.findings: dict[str, tuple[Finding, ...]] = {}  # about the plan itself (a budget scaled down)


def run_model_steps(names: list[str], candidate: ModelRef, base: ModelRef, options: CheckOptions,
                    reporter: Reporter, policy: Policy | None = None) -> list[MeasurementOutcome]:
    from gate.runtime.common import load_tokenizer
    from gate.runtime.host import set_cpu_threads

    if options.threads:
        set_cpu_threads(options.threads)
    steps = [model_step(n) for n in names]
    inputs, refs = _runnable_refs(steps, base, candidate, options, reporter)
    tokenizer = load_tokenizer(inputs.tokenizer_path("base"))
    state = _Runs()
    cache = BaseRunCache(enabled=options.cache)
    plans, keys = _plan(steps, refs, options, policy, tokenizer, cache, state, reporter)
    by_backend: dict[str, list[ModelStep]] = defaultdict(list)
    for s in steps:
        if not s.runs_pair:
            by_backend[s.backend(options)].append(s)
    for backend, group in by_backend.items():
        for role, ref in zip(("base", "candidate"), refs[backend]):
            live = [s for s in group if s.name not in state.failures and (s.name, role) not in state.runs]
            if live:
                _run_on_model(live, role, ref, backend, options, plans, reporter, state)
            if role == "base":  # stored before the candidate runs: a candidate that crashes or is stopped loses only its own work
                _store_base_runs(cache, keys, group, state)
    paired = [s for s in steps if s.runs_pair]
    for s in paired:
        cached = state.runs.pop((s.name, "base"), None)
        keep = (lambda run, s=s, cached=cached: _extend_cached(cache, keys[s.name], s, run, cached)) \
            if s.name in keys else (lambda run: None)
        same_weights = _same_model(*refs[s.backend(options)], cache)
        _run_pair(s, *refs[s.backend(options)], options, plans[s.name], reporter, state,
                  cached_base=cached, same_weights=same_weights, keep_base=keep)
    # Which runtime measured which form of each model, and why (quantized inputs only).
    return [dataclasses.replace(o, findings=state.findings.get(s.name, ()) + o.findings + inputs.findings(s.backend(options)))
            for s, o in ((s, _outcome(s, plans[s.name], state)) for s in steps)]


def _plan(steps: list[ModelStep], refs: dict[str, tuple[ModelRef, ModelRef]], options: CheckOptions,
          policy: Policy | None, tokenizer: Tokenizer, cache: BaseRunCache, state: _Runs,
          reporter: Reporter) -> tuple[dict[str, Any], dict[str, str]]:
    """Each step's plan and base-run cache key, the cached base runs, and the estimates said up front; a default
    plan this machine is too slow for is scaled down here (gate.run.fit), announced with its estimate."""
    judges = {s.name: look_judge(policy, s.name) for s in steps}
    plans = {s.name: s.plan(tokenizer, options, judges[s.name]) for s in steps}
    base_path = next(iter(refs.values()))[0].path
    keys, hits = _cached(cache, steps, refs, options, plans)
    state.estimates = estimate_plans(steps, plans, tokenizer, base_path, options, hits)
    for s in steps:
        def estimate_plan(plan: Any, s: ModelStep = s) -> Estimate | None:
            hit = _cached(cache, [s], refs, options, {s.name: plan})[1]
            return estimate_plans([s], {s.name: plan}, tokenizer, base_path, options, hit).get(s.name)

        fitted = fit_to_machine(s, plans[s.name], state.estimates.get(s.name), options, tokenizer, judges[s.name],
                                estimate_plan)
        if fitted is not None:
            plans[s.name], state.estimates[s.name] = fitted.plan, fitted.estimate
            state.findings[s.name] = (fitted.finding,)
            reporter.note(f"warning: {s.name}: {fitted.finding.message}")
    if state.findings:
        keys, hits = _cached(cache, steps, refs, options, plans)
    for name, run in hits.items():
        state.runs[name, "base"] = run
        state.from_cache.add(name)
    for name, estimate in state.estimates.items():
        reporter.note(f"{name}: {estimate.plan}; {estimate.describe()}")
    return plans, keys


def _cached(cache: BaseRunCache, steps: list[ModelStep], refs: dict[str, tuple[ModelRef, ModelRef]],
            options: CheckOptions, plans: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """The base-run cache keys of these plans, and the base runs the cache holds, by step."""
    keys = _cache_keys(cache, steps, refs, options, plans)
    hits = {s.name: cache.get(keys[s.name], s.run_type) for s in steps if s.name in keys}
    return keys, {name: run for name, run in hits.items() if run is not None}


def _runnable_refs(steps: list[ModelStep], base: ModelRef, candidate: ModelRef, options: CheckOptions,
                   reporter: Reporter) -> tuple[Any, dict[str, tuple[ModelRef, ModelRef]]]:
    """What each backend loads for the base and the candidate: dense copies of quantized inputs are made here,
    before any model runs, so a combination that cannot run stops with one line."""
    from gate.run.runnable import RunnableInputs

    inputs = RunnableInputs({"base": base.path, "candidate": candidate.path}, options, reporter)
    refs = {}
    for backend in dict.fromkeys(s.backend(options) for s in steps):
        refs[backend] = (dataclasses.replace(base, path=inputs.path("base", backend)),
                         dataclasses.replace(candidate, path=inputs.path("candidate", backend)))
    return inputs, refs


def _outcome(step: ModelStep, plan: Any, state: _Runs) -> MeasurementOutcome:
    failure = state.failures.get(step.name)
    if failure is not None:
        return _with_estimate(failed_outcome(step.name, failure.kind, failure.message, state.seconds[step.name]),
                              state)
    outcome = run_step(step.name, lambda: step.compare(state.runs[step.name, "base"], state.runs[step.name, "candidate"],
                                                       plan), state.seconds[step.name])
    return _with_estimate(dataclasses.replace(outcome, base_cached=step.name in state.from_cache), state)


def _with_estimate(outcome: MeasurementOutcome, state: _Runs) -> MeasurementOutcome:
    estimate = state.estimates.get(outcome.name)
    if estimate is None:
        return outcome
    # A run that stops once decided was estimated at its longest: the plan says so beside the figure.
    plan = f"{estimate.plan}; estimated at most (it stops once its rules are decided)" if estimate.most else estimate.plan
    return dataclasses.replace(outcome, plan=plan, estimated_seconds=estimate.seconds,
                               estimated_first_look_seconds=estimate.least)


def _store_base_runs(cache: BaseRunCache, keys: dict[str, str], group: list[ModelStep], state: _Runs) -> None:
    for s in group:
        run = state.runs.get((s.name, "base"))
        if s.name in keys and run is not None and s.name not in state.failures and s.name not in state.from_cache \
                and s.cacheable(run):
            cache.put(keys[s.name], run)


def _cache_keys(cache: BaseRunCache, steps: list[ModelStep], refs: dict[str, tuple[ModelRef, ModelRef]],
                options: CheckOptions, plans: dict[str, Any]) -> dict[str, str]:
    """Cache keys of the base runs that can be cached (per-model and paired steps alike); none when the cache is off."""
    if not cache.enabled:
        return {}
    own = {s.name: s.cache_key(plans[s.name]) for s in steps}
    cacheable = [(s.backend(options), s) for s in steps if own[s.name] is not None]
    if not cacheable:
        return {}
    from gate.runtime.registry import resolve_runtime

    # The form each runtime loads: a quantized base's dense copy is keyed by its own files.
    base_ids = {b: weights_digest(fingerprint_files(refs[b][0].path), cache.root.parent) for b, _ in cacheable}
    runtimes = {b: resolve_runtime(b, options.device, options.dtype, options.runtime) for b, _ in cacheable}
    return {s.name: cache.key(s.name, own[s.name], base_ids[b], b, *runtimes[b]) for b, s in cacheable}


def fingerprint_files(path: Path) -> list[Path]:
    """What defines a model's answers: its weights, config, tokenizer and chat template."""
    from gate.inputs.checkpoint import open_checkpoint

    weights = list(open_checkpoint(path).weight_files)
    extras = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".json", ".jinja", ".model", ".txt"))
    return weights + extras


def _run_on_model(steps: list[ModelStep], role: str, ref: ModelRef, backend: str, options: CheckOptions,
                  plans: dict[str, Any], reporter: Reporter, state: _Runs) -> None:
    from gate.runtime.registry import load_model

    t0 = time.perf_counter()
    try:
        with reporter.task(f"Loading the {role} with {backend}", total=None):
            handle = load_model(ref.path, backend=backend, device=options.device, dtype=options.dtype,
                                runtime=options.runtime)
    except (BackendUnavailableError, InputError):
        raise
    except Exception as exc:  # a checkpoint its runtime cannot load is a finding about the model
        message = f"the {role} could not be loaded with {backend}: {first_line(exc)}"
        for s in steps:
            state.failures[s.name] = Failure("measurement", message)
        return
    load_seconds = time.perf_counter() - t0
    try:
        for s in steps:
            t1 = time.perf_counter()
            if role == "candidate":
                run = attempt(lambda s=s: s.run_against(handle, plans[s.name], state.runs[s.name, "base"], reporter),
                              prefix=f"{role}: ")
            else:
                run = attempt(lambda s=s: s.run(handle, plans[s.name], reporter), prefix=f"{role}: ")
            if isinstance(run, Failure):
                state.failures[s.name] = run
            else:
                state.runs[s.name, role] = run
            state.seconds[s.name] += time.perf_counter() - t1 + load_seconds / len(steps)
    finally:
        handle.close()


def _extend_cached(cache: BaseRunCache, key: str, step: ModelStep, run: Any, cached: Any) -> None:
    """Store a base run that holds more than the cached one (a later candidate needed more)."""
    if step.cacheable(run) and (cached is None or step.supersedes(run, cached)):
        cache.put(key, run)


def _same_model(base: ModelRef, candidate: ModelRef, cache: BaseRunCache) -> bool:
    """Whether the two checkpoints are byte-identical in everything that defines their answers."""
    root = cache.root.parent
    try:
        return weights_digest(fingerprint_files(base.path), root) == weights_digest(fingerprint_files(candidate.path), root)
    except OSError:
        return False


def _run_pair(step: ModelStep, base: ModelRef, candidate: ModelRef, options: CheckOptions, plan: Any,
              reporter: Reporter, state: _Runs, **context: Any) -> None:
    """A step that decides itself how to hold the two models (latency alternates them when both fit).

    `context`: the `PairContext` fields other than `load`, which is made here.
    """
    from gate.runtime.registry import load_model

    backend = step.backend(options)
    refs = {"base": base, "candidate": candidate}

    def load(role: str):
        with reporter.task(f"Loading the {role} with {backend}", total=None):
            return load_model(refs[role].path, backend=backend, device=options.device, dtype=options.dtype,
                              runtime=options.runtime)

    t0 = time.perf_counter()
    runs = attempt(lambda: step.run_pair(PairContext(load=load, **context), plan, reporter),
                   passthrough=(BackendUnavailableError, InputError))
    if isinstance(runs, Failure):
        state.failures[step.name] = runs
    else:
        state.runs[step.name, "base"], state.runs[step.name, "candidate"] = runs
    state.seconds[step.name] += time.perf_counter() - t0

