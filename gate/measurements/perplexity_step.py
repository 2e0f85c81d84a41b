"""Perplexity as a `gate check` step: plan the windows, score each model, compare."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gate.measurements.options import PerplexityOptions
from gate.measurements.perplexity import (
    DEFAULT_MAX_TOKENS, PerplexityComparison, PerplexityRun, TokenizerCheck, Windows, align_windows, check_tokenizers_match,
    compare_perplexity, make_windows, measure_perplexity,
)
from gate.core.progress import Reporter
from gate.core.workload import WorkPlan, sequences_workload
from gate.measurements.base import ModelStep, StepResult, runtime_findings

MIN_SCALED_WINDOWS = 4  # the fewest windows a default run is scaled down to on a slow machine (gate.run.fit)

if TYPE_CHECKING:
    from gate.core.looks import LookJudge
    from gate.core.tokenizer import Tokenizer
    from gate.measurements.check_options import CheckOptions
    from gate.runtime.base import ModelHandle


@dataclass(frozen=True)
class PerplexityPlan:
    corpus: str  # where the text came from
    license: str
    windows: Windows
    base_tokenizer: Tokenizer


@dataclass(frozen=True)
class ScoredRun:
    run: PerplexityRun
    tokenizer_check: TokenizerCheck
    runtime: dict[str, Any] | None = None  # ModelHandle.runtime_info() of the model scored


@dataclass(frozen=True)
class PerplexityResult:
    """What the report shows: the corpus, the windows, and the comparison."""

    corpus: str
    license: str
    ctx: int
    windows: int
    text_tokens: int
    comparison: PerplexityComparison
    runtime: dict[str, Any] | None = None  # {"base": runtime_info, "candidate": runtime_info}


class PerplexityStep(ModelStep[PerplexityPlan, ScoredRun]):
    name = "perplexity"
    run_type = ScoredRun

    def cache_key(self, plan: PerplexityPlan) -> str:
        return f"windows={plan.windows.fingerprint}"

    def cacheable(self, run: ScoredRun) -> bool:
        return run.run.finite

    def plan(self, tokenizer: Tokenizer, options: CheckOptions, looks: LookJudge | None = None) -> PerplexityPlan:
        from gate.inputs.corpus import load_text

        settings = options.of(PerplexityOptions)
        corpus = load_text(settings.text)
        windows = make_windows(tokenizer, corpus.text, ctx=settings.ctx, max_tokens=settings.max_tokens or DEFAULT_MAX_TOKENS)
        return PerplexityPlan(corpus=f"{corpus.name} ({corpus.source})", license=corpus.license_note, windows=windows,
                              base_tokenizer=tokenizer)

    def scaled_options(self, plan: PerplexityPlan, options: CheckOptions, fraction: float) -> CheckOptions | None:
        """The first windows of the default plan, at least MIN_SCALED_WINDOWS (a paired interval needs a few)."""
        settings = options.of(PerplexityOptions)
        windows = max(MIN_SCALED_WINDOWS, int(len(plan.windows) * fraction))
        if settings.max_tokens is not None or windows >= len(plan.windows):
            return None
        return options.with_options(dataclasses.replace(settings, max_tokens=windows * plan.windows.ctx))

    def run(self, handle: ModelHandle, plan: PerplexityPlan, reporter: Reporter) -> ScoredRun:
        windows = plan.windows
        # Same vocabulary is not enough: merges or normalisation may still split the text differently.
        check = check_tokenizers_match(plan.base_tokenizer, handle.tokenizer, "".join(windows.texts))
        if not check.matches:
            # Score the same text spans with this model's own tokens; only bits per byte compares then.
            windows = align_windows(windows, handle.tokenizer)
        return ScoredRun(measure_perplexity(handle, windows, reporter=reporter), check, handle.runtime_info())

    def workload(self, plan: PerplexityPlan, tokenizer: Tokenizer) -> WorkPlan:
        """What the runs will cost: every window through both models, logits at every position."""
        windows = plan.windows
        return WorkPlan(f"{len(windows)} windows × {windows.ctx} tokens × 2 models",
                        sequences_workload(len(w) for w in windows.token_ids))

    def compare(self, base: ScoredRun, candidate: ScoredRun, plan: PerplexityPlan) -> StepResult:
        comparison = compare_perplexity(base.run, candidate.run, tokenizer_check=candidate.tokenizer_check)
        runtime = {"base": base.runtime, "candidate": candidate.runtime}
        result = PerplexityResult(corpus=plan.corpus, license=plan.license, ctx=plan.windows.ctx,
                                  windows=len(plan.windows), text_tokens=plan.windows.text_tokens, comparison=comparison,
                                  runtime=runtime)
        return StepResult(result, tuple(comparison.metrics()), tuple(comparison.findings) + runtime_findings(runtime))
