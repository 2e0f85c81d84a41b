"""Latency as a `gate check` step: BBQ chat prompts, both models timed, compared.

The runtime defaults to MLX, the paper's edge runtime, whatever `--backend
auto` picks for the other steps; an explicit `--backend` (or
`--latency-backend`) wins, except `--backend vllm`: latency then stays on
the edge runtime, and a finding says so. Without MLX installed and not asked for, the
step falls back to torch and says so. A `--device` that only torch knows
(cuda, mps) also means torch.

Each repeat is a round with fresh loads of both models (the load-to-load
spread of one checkpoint is as large as the effects looked for). Within a
round the step holds both models at once, and times them in turns, when a
second copy of the base's weights fits in the free memory; otherwise it times
them one after the other. Options: `LatencyOptions` (gate/measurements/options.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gate.core.errors import BackendUnavailableError, InputError
from gate.measurements.latency import (
    TEMPERATURE, LatencyComparison, LatencyRun, compare_latency, measure_latency, measure_latency_in_rounds,
)
from gate.measurements.options import (
    CPU_TORCH_WARMUP, DEFAULT_LATENCY_PROMPTS, DEFAULT_REPEATS, DEFAULT_WARMUP, LatencyOptions,
)
from gate.core.progress import Reporter
from gate.core.workload import Workload, WorkPlan
from gate.core.result import Finding, Severity
from gate.measurements.base import ModelStep, PairContext, StepResult

if TYPE_CHECKING:
    from gate.core.looks import LookJudge
    from gate.core.tokenizer import Tokenizer
    from gate.measurements.check_options import CheckOptions
    from gate.runtime.base import ModelHandle

SAMPLE_SOURCE = "bundled BBQ sample (600 items, stratified; gate/data/bbq/NOTICE.md)"

PROMPT_SEED = 0
_MLX_DEVICES = (None, "cpu", "gpu")
# A second model fits when free memory covers its weights with this margin, plus room for activations and cache.
_FIT_MARGIN = 1.25
_FIT_HEADROOM_BYTES = 512 << 20
MIN_SCALED_PROMPTS = 3  # the fewest prompts a default run is scaled down to on a slow machine (gate.run.fit)


@dataclass(frozen=True)
class LatencyPlan:
    prompts: tuple[tuple[int, ...], ...]
    item_ids: tuple[str, ...]  # the BBQ items behind the prompts
    source: str
    prompt_format: str
    repeats: int
    warmup: int
    max_new_tokens: int
    backend: str
    schedule: str  # "auto", "alternate" or "sequential", as asked
    findings: tuple[Finding, ...]  # e.g. the fallback to torch


@dataclass(frozen=True)
class LatencyResult:
    """What the report shows: how the timing was done, and the comparison."""

    source: str
    prompt_format: str
    prompt_tokens: tuple[int, ...]
    backend: str
    schedule: str  # what ran: "alternating" or "sequential"
    temperature: float
    max_new_tokens: int
    repeats: int
    warmup: int
    comparison: LatencyComparison


def choose_backend(options: CheckOptions) -> tuple[str, tuple[Finding, ...]]:
    """The runtime latency runs on, and a finding when it is not the one the user would expect."""
    requested = options.of(LatencyOptions).backend or options.backend
    if requested != "vllm":
        return _edge_backend(requested, options)
    # vLLM is a server engine for the quality measurements; latency describes the edge device.
    backend, findings = _edge_backend("auto", options)
    return backend, (Finding(
        Severity.INFO, "latency-edge-runtime",
        f"perplexity and bias ran on vLLM; latency was timed on the edge runtime ({backend}), not on vLLM, whose "
        "batched serving describes no single-user device"),) + findings


def _edge_backend(requested: str, options: CheckOptions) -> tuple[str, tuple[Finding, ...]]:
    from gate.runtime.registry import has_accelerator, install_hint, require_runtime, resolve_backend

    if requested != "auto":
        return resolve_backend(requested), ()
    if options.device not in _MLX_DEVICES:
        return "torch", ()  # a torch-only device (cuda, mps) was named
    try:
        require_runtime("mlx")
    except BackendUnavailableError:
        return "torch", (Finding(
            Severity.WARNING, "latency-mlx-missing",
            f"MLX is not installed, so latency was timed with torch instead of the paper's MLX runtime: "
            f"{install_hint('mlx')}"),)
    if not has_accelerator("mlx"):
        return "torch", (Finding(
            Severity.INFO, "latency-mlx-cpu-only",
            "MLX has no GPU here (its CPU backend takes about 13 s a call even for a 135M model and describes no "
            "edge device), so latency was timed with torch; --latency-backend mlx times MLX anyway"),)
    return "mlx", ()


def default_warmup(backend: str, options: CheckOptions) -> int:
    """Untimed calls per load: one for torch on a CPU, which compiles nothing; two where kernels compile or warm."""
    from gate.runtime.registry import resolve_runtime

    if backend == "torch" and resolve_runtime(backend, options.device, options.dtype)[0] == "cpu":
        return CPU_TORCH_WARMUP
    return DEFAULT_WARMUP


class LatencyStep(ModelStep[LatencyPlan, LatencyRun]):
    name = "latency"
    runs_pair = True  # fresh loads of both models every round, in turns when they fit

    def backend(self, options: CheckOptions) -> str:
        return choose_backend(options)[0]

    def plan(self, tokenizer: Tokenizer, options: CheckOptions, looks: LookJudge | None = None) -> LatencyPlan:
        from gate.runtime.registry import require_runtime
        from gate.measurements.bias.bbq import default_sample_path, load_bbq, sample_items
        from gate.measurements.bias.prompts import IDENTITY, prompt_format, render_prompt

        settings = options.of(LatencyOptions)
        backend, findings = choose_backend(options)
        require_runtime(backend)  # asked for explicitly but missing: say so before any model loads
        data = load_bbq(default_sample_path())  # the 600-item sample: prompts of every category, loaded fast
        items = sample_items(data.items, limit=settings.prompts, seed=PROMPT_SEED)
        if not items:
            raise InputError("no BBQ items to build latency prompts from")
        fmt = prompt_format(tokenizer)
        prompts = tuple(tuple(render_prompt(tokenizer, item, IDENTITY, fmt)) for item in items)
        warmup = settings.warmup if settings.warmup is not None else default_warmup(backend, options)
        return LatencyPlan(prompts=prompts, item_ids=tuple(item.item_id for item in items), source=SAMPLE_SOURCE,
                           prompt_format=fmt, repeats=settings.repeats, warmup=warmup,
                           max_new_tokens=settings.max_new_tokens, backend=backend, schedule=settings.schedule,
                           findings=findings)

    def scaled_options(self, plan: LatencyPlan, options: CheckOptions, fraction: float) -> CheckOptions | None:
        """Two rounds (each model loaded first once) and fewer prompts, at least MIN_SCALED_PROMPTS."""
        settings = options.of(LatencyOptions)
        if (settings.prompts, settings.repeats) != (DEFAULT_LATENCY_PROMPTS, DEFAULT_REPEATS):
            return None
        repeats = min(2, settings.repeats)
        prompts = min(settings.prompts, max(MIN_SCALED_PROMPTS, int(settings.prompts * settings.repeats / repeats * fraction)))
        if (prompts, repeats) == (settings.prompts, settings.repeats):
            return None
        return options.with_options(dataclasses.replace(settings, prompts=prompts, repeats=repeats))

    def run(self, handle: ModelHandle, plan: LatencyPlan, reporter: Reporter) -> LatencyRun:
        """One model on its own (the orchestrator calls `run_pair`)."""
        return measure_latency(handle, plan.prompts, plan.repeats, plan.warmup, plan.max_new_tokens, reporter)

    def run_pair(self, context: PairContext, plan: LatencyPlan, reporter: Reporter) -> tuple[LatencyRun, LatencyRun]:
        """Both models, fresh loads every round; in turns when they fit in memory together."""
        load = context.load
        hold_both = {"alternate": lambda first: True, "sequential": lambda first: False,
                     "auto": second_copy_fits}[plan.schedule]
        return measure_latency_in_rounds(load, plan.prompts, plan.repeats, plan.warmup, plan.max_new_tokens,
                                         hold_both, reporter)

    def workload(self, plan: LatencyPlan, tokenizer: Tokenizer) -> WorkPlan:
        """Every round loads both models afresh, makes the warm-up calls, then one call per prompt."""
        calls = plan.repeats * (plan.warmup + len(plan.prompts))
        tokens = plan.repeats * (sum(len(p) for p in plan.prompts) + plan.warmup * len(plan.prompts[0]))
        return WorkPlan(f"{len(plan.prompts)} prompts × {plan.repeats} rounds × 2 models",
                        Workload(tokens=tokens, logit_positions=calls, calls=calls,
                                 decode_steps=calls * plan.max_new_tokens),
                        loads=2 * plan.repeats)

    def compare(self, base_run: LatencyRun, candidate_run: LatencyRun, plan: LatencyPlan) -> StepResult:
        comparison = compare_latency(base_run, candidate_run)
        result = LatencyResult(
            source=plan.source, prompt_format=plan.prompt_format, prompt_tokens=tuple(len(p) for p in plan.prompts),
            backend=base_run.runtime.get("backend", plan.backend), schedule=base_run.schedule,
            temperature=TEMPERATURE, max_new_tokens=plan.max_new_tokens, repeats=plan.repeats, warmup=plan.warmup,
            comparison=comparison)
        return StepResult(result, tuple(comparison.metrics()), plan.findings + comparison.findings)


def second_copy_fits(handle: ModelHandle) -> bool:
    """Whether free memory holds another model as large as `handle` (the candidate has the base's shapes)."""
    weights = handle.weight_bytes()
    if weights is None:
        weights = handle.peak_memory_bytes()  # the runtime's footprint stands in for weights it cannot count
    free = handle.free_memory_bytes()
    if weights is None or free is None:
        return False
    return free >= _FIT_MARGIN * weights + _FIT_HEADROOM_BYTES


