"""Running the model-based measurements, one model in memory at a time.

Every step plans first (from the base tokenizer), so bad input stops the run
before any weights load. Then, for each runtime the steps need, the base is
loaded, measured and freed, and the candidate after it: a 7B pair never has
to fit in memory twice. Finally each step compares its two runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from gate.run.cache import BaseRunCache, weights_digest
from gate.core.errors import BackendUnavailableError, GateError, InputError
from gate.core.progress import Reporter
from gate.inputs.refs import ModelRef
from gate.core.result import MeasurementOutcome
from gate.measurements.base import ModelStep, PairContext, failed_outcome, run_step


# Each model step by name, imported only when selected.
MODEL_STEPS = {
    "latency": ("gate.measurements.latency_step", "LatencyStep"),
    "perplexity": ("gate.measurements.perplexity_step", "PerplexityStep"),
    "bias": ("gate.measurements.bias.step", "BiasStep"),
}


def model_step(name: str) -> ModelStep:
    module, cls = MODEL_STEPS[name]
    return getattr(importlib.import_module(module), cls)()


def run_model_steps(names: list[str], candidate: ModelRef, base: ModelRef, options: Any,
                    reporter: Reporter, policy: Any = None) -> list[MeasurementOutcome]:
    from gate.runtime.select import load_tokenizer, set_cpu_threads

    if options.threads:
        set_cpu_threads(options.threads)
    steps = [model_step(n) for n in names]
    by_name = {s.name: s for s in steps}
    tokenizer = load_tokenizer(base.path)
    plans = {s.name: s.plan(tokenizer, options, policy) for s in steps}
    by_backend: dict[str, list[ModelStep]] = defaultdict(list)
    paired = []
    for s in steps:
        (paired if hasattr(s, "run_pair") else by_backend[s.backend(options)]).append(s)

    runs: dict[tuple[str, str], Any] = {}
    failures: dict[str, tuple[str, str]] = {}
    seconds: dict[str, float] = defaultdict(float)
    cache = BaseRunCache(enabled=options.extra.get("cache", True))
    keys = _cache_keys(cache, steps, base, options, plans)
    from_cache = set()
    for name, key in keys.items():
        hit = cache.get(key, by_name[name].run_type)
        if hit is not None:
            runs[name, "base"] = hit
            from_cache.add(name)
    for backend, group in by_backend.items():
        for role, ref in (("base", base), ("candidate", candidate)):
            live = [s for s in group if s.name not in failures and (s.name, role) not in runs]
            if live:
                _run_on_model(live, role, ref, backend, options, plans, reporter, runs, failures, seconds)
            if role == "base":  # stored before the candidate runs: a candidate that crashes or is stopped loses only its own work
                _store_base_runs(cache, keys, group, runs, failures, from_cache)
    same_weights = _same_model(base, candidate, cache) if paired else False
    for s in paired:
        cached = runs.pop((s.name, "base"), None)
        keep = (lambda run, s=s, cached=cached: _extend_cached(cache, keys[s.name], s, run, cached)) \
            if s.name in keys else (lambda run: None)
        _run_pair(s, base, candidate, options, plans[s.name], reporter, runs, failures, seconds,
                  cached_base=cached, same_weights=same_weights, keep_base=keep)

    outcomes = []
    for s in steps:
        if s.name in failures:
            kind, message = failures[s.name]
            outcomes.append(failed_outcome(s.name, kind, message, seconds[s.name]))
        else:
            outcome = run_step(s.name, lambda s=s: s.compare(runs[s.name, "base"], runs[s.name, "candidate"],
                                                              plans[s.name]), seconds[s.name])
            outcomes.append(dataclasses.replace(outcome, base_cached=s.name in from_cache))
    return outcomes


def _store_base_runs(cache: BaseRunCache, keys: dict[str, str], group: list, runs: dict, failures: dict,
                     from_cache: set) -> None:
    for s in group:
        run = runs.get((s.name, "base"))
        if s.name in keys and run is not None and s.name not in failures and s.name not in from_cache \
                and s.cacheable(run):
            cache.put(keys[s.name], run)


def _cache_keys(cache: BaseRunCache, steps: list, base: ModelRef, options: Any, plans: dict) -> dict[str, str]:
    """Cache keys of the base runs that can be cached (per-model and paired steps alike); none when the cache is off."""
    if not cache.enabled:
        return {}
    cacheable = [(s.backend(options), s) for s in steps if hasattr(s, "cache_key")]
    if not cacheable:
        return {}
    from gate.runtime.select import resolve_runtime

    base_id = weights_digest(fingerprint_files(base.path), cache.root.parent)
    runtimes = {b: resolve_runtime(b, options.device, options.dtype, options.extra.get("runtime"))
                for b, _ in cacheable}
    return {s.name: cache.key(s.name, s.cache_key(plans[s.name]), base_id, b, *runtimes[b]) for b, s in cacheable}


def fingerprint_files(path: Path) -> list[Path]:
    """What defines a model's answers: its weights, config, tokenizer and chat template."""
    from gate.inputs.checkpoint import open_checkpoint

    weights = list(open_checkpoint(path).weight_files)
    extras = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".json", ".jinja", ".model", ".txt"))
    return weights + extras


def _run_on_model(steps, role, ref, backend, options, plans, reporter, runs, failures, seconds) -> None:
    from gate.runtime.select import load_model

    t0 = time.perf_counter()
    try:
        with reporter.task(f"Loading the {role} with {backend}", total=None):
            handle = load_model(ref.path, backend=backend, device=options.device, dtype=options.dtype,
                                runtime=options.extra.get("runtime"))
    except (BackendUnavailableError, InputError):
        raise
    except Exception as exc:  # a checkpoint its runtime cannot load is a finding about the model
        message = f"the {role} could not be loaded with {backend}: {_first_line(exc)}"
        for s in steps:
            failures[s.name] = ("measurement", message)
        return
    load_seconds = time.perf_counter() - t0
    try:
        for s in steps:
            t1 = time.perf_counter()
            try:
                if role == "candidate" and hasattr(s, "run_against"):
                    runs[s.name, role] = s.run_against(handle, plans[s.name], runs[s.name, "base"], reporter)
                else:
                    runs[s.name, role] = s.run(handle, plans[s.name], reporter)
            except InputError:
                raise
            except GateError as exc:
                failures[s.name] = ("measurement", f"{role}: {exc}")
            except Exception as exc:
                failures[s.name] = ("internal", f"{role}: {type(exc).__name__}: {exc}")
            seconds[s.name] += time.perf_counter() - t1 + load_seconds / len(steps)
    finally:
        handle.close()


def _extend_cached(cache: BaseRunCache, key: str, step: Any, run: Any, cached: Any) -> None:
    """Store a base run that holds more answers than the cached one (a later candidate needed more)."""
    if step.cacheable(run) and (cached is None or len(run.answers) > len(cached.answers)):
        cache.put(key, run)


def _same_model(base: ModelRef, candidate: ModelRef, cache: BaseRunCache) -> bool:
    """Whether the two checkpoints are byte-identical in everything that defines their answers."""
    root = cache.root.parent
    try:
        return weights_digest(fingerprint_files(base.path), root) == weights_digest(fingerprint_files(candidate.path), root)
    except OSError:
        return False


def _run_pair(step, base, candidate, options, plan, reporter, runs, failures, seconds, **context: Any) -> None:
    """A step that decides itself how to hold the two models (latency alternates them when both fit).

    `context`: the `PairContext` fields other than `load`, which is made here.
    """
    from gate.runtime.select import load_model

    backend = step.backend(options)
    refs = {"base": base, "candidate": candidate}

    def load(role: str):
        with reporter.task(f"Loading the {role} with {backend}", total=None):
            return load_model(refs[role].path, backend=backend, device=options.device, dtype=options.dtype,
                              runtime=options.extra.get("runtime"))

    t0 = time.perf_counter()
    try:
        runs[step.name, "base"], runs[step.name, "candidate"] = step.run_pair(
            PairContext(load=load, **context), plan, reporter)
    except (BackendUnavailableError, InputError):
        raise
    except GateError as exc:
        failures[step.name] = ("measurement", str(exc))
    except Exception as exc:
        failures[step.name] = ("internal", f"{type(exc).__name__}: {exc}")
    seconds[step.name] += time.perf_counter() - t0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
