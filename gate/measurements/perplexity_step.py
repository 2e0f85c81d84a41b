"""Perplexity as a `gate check` step: plan the windows, score both models, compare.

Base and candidate score the same windows in turns, a few at a time. Where
the policy decides on perplexity (a `sequential` block and a failing rule on
a perplexity figure), the deciding rules are judged after 8 windows, then 16,
32 and so on up to the plan's last window, and the scoring stops at the
first look where they are decided. Each look's interval has level
1 - 0.05/K for K planned looks (Bonferroni), so the chance that any look
decides wrongly stays at most 5%; a clear case (a pruned model 50% worse, or
one within a hair of its base) is decided after 8 of the default 32 windows.
The base's scores are cached window by window, so a later candidate reuses
them and extends them when it needs more.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from gate.core.looks import DECIDED, EXHAUSTED
from gate.core.progress import Reporter
from gate.core.result import Finding, MeasurementOutcome, Severity
from gate.core.workload import FirstLook, WorkPlan, sequences_workload
from gate.measurements.base import ModelStep, PairContext, StepResult, runtime_findings
from gate.measurements.options import PerplexityOptions
from gate.measurements.pair import HeldPair
from gate.measurements.perplexity import (
    DEFAULT_MAX_TOKENS, LEVEL, PerplexityComparison, PerplexityRun, TokenizerCheck, Windows, align_windows,
    check_tokenizers_match, compare_perplexity, make_windows, score_windows, summarise,
)

MIN_SCALED_WINDOWS = 4  # the fewest windows a default run is scaled down to on a slow machine (gate.run.fit)
FIRST_LOOK = 8  # windows at the first look; each later look doubles them, the last is at the plan's size

if TYPE_CHECKING:
    from gate.core.looks import LookJudge
    from gate.core.tokenizer import Tokenizer
    from gate.measurements.check_options import CheckOptions
    from gate.runtime.base import ModelHandle


def look_points(windows: int, first: int = FIRST_LOOK) -> tuple[int, ...]:
    """Window counts at which a sequential run looks: first, doubling, and always the last window."""
    points = []
    count = first
    while count < windows:
        points.append(count)
        count *= 2
    return (*points, windows)


@dataclass(frozen=True)
class PerplexityPlan:
    corpus: str  # where the text came from
    license: str
    windows: Windows
    base_tokenizer: Tokenizer
    looks: tuple[int, ...] = ()  # window counts after which the deciding rules are judged; (): score every window
    judge: LookJudge | None = None

    @property
    def level(self) -> float:
        """Of every interval: 95% for one look, 1 - 0.05/K for K planned looks (Bonferroni)."""
        return 1 - (1 - LEVEL) / max(1, len(self.looks))


@dataclass(frozen=True)
class ScoredRun:
    """One model's scores on (a prefix of) the plan's windows: what the cache keeps of the base."""

    run: PerplexityRun
    tokenizer_check: TokenizerCheck
    runtime: dict[str, Any] | None = None  # ModelHandle.runtime_info() of the model scored


@dataclass(frozen=True)
class CandidateScoring:
    """The candidate's scores and how the scoring ended."""

    scored: ScoredRun
    looks: tuple[int, ...]  # window counts at the looks taken
    stop: str  # DECIDED or EXHAUSTED (every window of the plan scored)


@dataclass(frozen=True)
class PerplexityResult:
    """What the report shows: the corpus, the windows, and the comparison."""

    corpus: str
    license: str
    ctx: int
    windows: int  # scored by both models
    text_tokens: int
    comparison: PerplexityComparison
    runtime: dict[str, Any] | None = None  # {"base": runtime_info, "candidate": runtime_info}
    windows_planned: int | None = None
    looks: tuple[int, ...] = ()  # window counts at the looks taken; () for a fixed-size run
    stop: str | None = None
    level: float = LEVEL  # of the intervals


class PerplexityStep(ModelStep[PerplexityPlan, ScoredRun]):
    name = "perplexity"
    runs_pair = True  # both models score window by window until the policy is decided
    run_type = ScoredRun

    def cache_key(self, plan: PerplexityPlan) -> str:
        return f"windows={plan.windows.fingerprint}"

    def cacheable(self, run: ScoredRun) -> bool:
        return run.run.finite

    def supersedes(self, run: ScoredRun, cached: ScoredRun) -> bool:
        return len(run.run) > len(cached.run)  # a later candidate needed more of the base's windows

    def plan(self, tokenizer: Tokenizer, options: CheckOptions, looks: LookJudge | None = None) -> PerplexityPlan:
        from gate.inputs.corpus import load_text

        settings = options.of(PerplexityOptions)
        corpus = load_text(settings.text)
        windows = make_windows(tokenizer, corpus.text, ctx=settings.ctx, max_tokens=settings.max_tokens or DEFAULT_MAX_TOKENS)
        points = look_points(len(windows))
        # One look (a plan of FIRST_LOOK windows or fewer) is a fixed-size run.
        sequential = looks is not None and settings.sequential and len(points) > 1
        return PerplexityPlan(corpus=f"{corpus.name} ({corpus.source})", license=corpus.license_note, windows=windows,
                              base_tokenizer=tokenizer, looks=points if sequential else (),
                              judge=looks if sequential else None)

    def scaled_options(self, plan: PerplexityPlan, options: CheckOptions, fraction: float) -> CheckOptions | None:
        """The first windows of the default plan, at least MIN_SCALED_WINDOWS (a paired interval needs a few)."""
        settings = options.of(PerplexityOptions)
        windows = max(MIN_SCALED_WINDOWS, int(len(plan.windows) * fraction))
        if settings.max_tokens is not None or windows >= len(plan.windows):
            return None
        return options.with_options(dataclasses.replace(settings, max_tokens=windows * plan.windows.ctx))

    def workload(self, plan: PerplexityPlan, tokenizer: Tokenizer) -> WorkPlan:
        """What the runs will cost at most: every window through both models, logits at every position."""
        windows = plan.windows
        first = None
        if plan.looks:
            count = plan.looks[0]
            first = FirstLook(f"{count} windows", sequences_workload(len(w) for w in windows.token_ids[:count]))
        return WorkPlan(f"{'up to ' if plan.looks else ''}{len(windows)} windows × {windows.ctx} tokens × 2 models",
                        sequences_workload(len(w) for w in windows.token_ids), stops_early=bool(plan.looks),
                        first_look=first)

    def run_pair(self, context: PairContext, plan: PerplexityPlan, reporter: Reporter
                 ) -> tuple[ScoredRun, CandidateScoring]:
        scorer = _Scorer(context, plan)
        looks: list[int] = []
        stop = EXHAUSTED
        try:
            with reporter.task("perplexity", total=scorer.windows_to_score(), stops_early=bool(plan.looks)) as task:
                for count in plan.looks or (len(plan.windows),):
                    scorer.score_to(count, task.advance)
                    looks.append(count)
                    if count < len(plan.windows) and scorer.decided(count):
                        stop = DECIDED
                        break
        finally:
            scorer.close()
            if scorer.scored_base:  # kept even when the candidate failed or the run was stopped
                context.keep_base(scorer.base_run())
        return scorer.base_run(), CandidateScoring(scorer.candidate_run(), tuple(looks) if plan.looks else (), stop)

    def compare(self, base: ScoredRun, candidate: CandidateScoring, plan: PerplexityPlan) -> StepResult:
        count = len(candidate.scored.run)
        comparison = _compare(base.run, candidate.scored, plan, count)
        runtime = {"base": base.runtime, "candidate": candidate.scored.runtime}
        result = PerplexityResult(corpus=plan.corpus, license=plan.license, ctx=plan.windows.ctx, windows=count,
                                  text_tokens=plan.windows.text_tokens, comparison=comparison, runtime=runtime,
                                  windows_planned=len(plan.windows), looks=candidate.looks, stop=candidate.stop,
                                  level=plan.level)
        found = tuple(comparison.findings) + runtime_findings(runtime)
        if plan.looks:
            found += (_scoring_finding(plan, candidate),)
        return StepResult(result, tuple(comparison.metrics()), found)


def _compare(base: PerplexityRun, candidate: ScoredRun, plan: PerplexityPlan, count: int) -> PerplexityComparison:
    """Both runs over the candidate's first `count` windows, at the plan's level."""
    return compare_perplexity(base.first(plan.windows.first(count)), candidate.run,
                              tokenizer_check=candidate.tokenizer_check, level=plan.level)


def _scoring_finding(plan: PerplexityPlan, candidate: CandidateScoring) -> Finding:
    where = ", ".join(str(n) for n in plan.looks)
    how = (f"looks after {where} windows, each interval at {plan.level:.1%} so that all of them together err at "
           f"most {1 - LEVEL:.0%}")
    if candidate.stop == DECIDED:
        said = f"the perplexity rules were decided after {candidate.looks[-1]} of {len(plan.windows)} windows"
    else:
        said = f"all {len(plan.windows)} windows scored before the perplexity rules were decided"
    return Finding(Severity.INFO, "perplexity-sequential",
                   f"{said} ({how}); --no-ppl-sequential scores every window at 95%")


class _Scorer:
    """Scores both models window by window, holding them as memory allows, and keeps their scores."""

    def __init__(self, context: PairContext, plan: PerplexityPlan):
        self._context, self._plan = context, plan
        cached: ScoredRun | None = context.cached_base
        self._base_nll = list(cached.run.nll) if cached is not None else []
        self._base_tokens = list(cached.run.tokens) if cached is not None else []
        self._base_runtime = cached.runtime if cached is not None else None
        self._candidate_nll: list[float] = []
        self._candidate_tokens: list[int] = []
        self._candidate_windows: Windows | None = None  # the plan's windows, or the text re-cut by its tokenizer
        self._check = TokenizerCheck(True)
        self._candidate_runtime: dict[str, Any] | None = None
        self._models = HeldPair(context.load, before_candidate=self._stage_base)
        self._advance: Callable[[int], None] = lambda done: None
        self._count = 0  # windows both models have scored
        self.scored_base = False

    def windows_to_score(self) -> int:
        total = len(self._plan.windows)
        return total - min(total, len(self._base_nll)) + (0 if self._context.same_weights else total)

    def score_to(self, count: int, advance: Callable[[int], None]) -> None:
        """Both models' scores on the first `count` windows."""
        self._advance = advance
        self._score_base(count)
        self._count = count
        if self._context.same_weights:
            return
        handle = self._models.get("candidate")
        if self._candidate_windows is None:
            self._candidate_windows = self._candidate_windows_for(handle)
            self._candidate_runtime = handle.runtime_info()
        done = len(self._candidate_nll)
        nll, tokens = score_windows(handle, self._candidate_windows.token_ids[done:count], advance=advance)
        self._candidate_nll += nll.tolist()
        self._candidate_tokens += tokens.tolist()

    def _score_base(self, count: int) -> None:
        done = len(self._base_nll)
        if done >= count:
            return
        handle = self._models.get("base")
        self._base_runtime = handle.runtime_info()
        nll, tokens = score_windows(handle, self._plan.windows.token_ids[done:count], advance=self._advance)
        self._base_nll += nll.tolist()
        self._base_tokens += tokens.tolist()
        self.scored_base = True

    def _stage_base(self) -> None:
        """Both models do not fit at once: the base scores every window of the plan before it makes room."""
        self._score_base(len(self._plan.windows))

    def _candidate_windows_for(self, handle: ModelHandle) -> Windows:
        windows = self._plan.windows
        # Same vocabulary is not enough: merges or normalisation may still split the text differently.
        self._check = check_tokenizers_match(self._plan.base_tokenizer, handle.tokenizer, "".join(windows.texts))
        # Otherwise the same text spans with this model's own tokens; only bits per byte compares then.
        return windows if self._check.matches else align_windows(windows, handle.tokenizer)

    def decided(self, count: int) -> bool:
        judge = self._plan.judge
        if judge is None:
            return False
        comparison = _compare(self.base_run().run, self.candidate_run(), self._plan, count)
        return judge.decide(MeasurementOutcome("perplexity", metrics=tuple(comparison.metrics()))).decided

    def base_run(self) -> ScoredRun:
        windows = self._plan.windows.first(len(self._base_nll))
        run = summarise(np.array(self._base_nll), np.array(self._base_tokens), windows)
        return ScoredRun(run, TokenizerCheck(True), self._base_runtime)

    def candidate_run(self) -> ScoredRun:
        if self._context.same_weights:  # byte-identical: its scores are the base's
            base = self.base_run()
            return dataclasses.replace(base, run=base.run.first(self._plan.windows.first(self._count)))
        windows = (self._candidate_windows or self._plan.windows).first(len(self._candidate_nll))
        run = summarise(np.array(self._candidate_nll), np.array(self._candidate_tokens), windows)
        return ScoredRun(run, self._check, self._candidate_runtime)

    def close(self) -> None:
        self._models.close()
