"""Bias on BBQ as a `gate check` step: plan the asking order, ask both models, compare.

Both models answer the same families of items in one balanced order, a
chunk at a time (`sequential.ask_in_chunks`), until the policy's bias rules
are decided, a budget is spent, or the items run out. The base's answers
are cached item by item in that order, so a later candidate reuses them and
extends them when it needs more. A candidate whose weights, config and
tokenizer are byte-identical to the base's is not asked at all: its answers
are the base's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from gate.measurements.bias.bbq import BBQItem, load_bbq_source, select_categories
from gate.measurements.bias.ask import (
    family_workload,
    DEFAULT_SEEDS, RECORDS_FILE, RUNS_FILE, BiasRun, answer_items, compare_bias, findings, write_records,
)
from gate.measurements.bias.scores import BiasComparison, ItemAnswer, metrics
from gate.measurements.bias.order import (
    AMBIGUOUS_FIGURES, DISAMBIGUATED_EVERY, asking_order, first_items, thin_disambiguated,
)
from gate.measurements.bias.sequential import (
    BUDGET, DECIDED, LEVEL, AskedRun, Budget, Look, LookPlan, Shortfall, ask_in_chunks, earliest_decision, plan_looks,
    shortfalls,
)
from gate.core.errors import InputError
from gate.core.files import check_records_dir
from gate.core.progress import NULL_REPORTER, Reporter
from gate.core.workload import FirstLook, Workload, WorkPlan
from gate.core.result import Finding, Severity
from gate.measurements.base import ModelStep, PairContext, StepResult, runtime_findings
from gate.measurements.options import BiasOptions
from gate.measurements.pair import HeldPair

if TYPE_CHECKING:
    from gate.core.looks import LookJudge
    from gate.core.tokenizer import Tokenizer
    from gate.measurements.check_options import CheckOptions

CHUNK_ITEMS = 48  # items each model answers between checks of the budget and looks
STAGE_FAMILIES = 24  # families the base answers at a time while staging (see _Asker._stage_base)
WORKLOAD_FAMILIES = 24  # families whose prompts are tokenized to price the run up front (whole and thinned ones)


@dataclass(frozen=True)
class BiasPlan:
    source: str
    license: str
    order: tuple[tuple[BBQItem, ...], ...]  # the families, in asking order
    dropped: int  # rows of the source without a single target answer
    mode: str
    permute: bool
    seeds: tuple[int, ...]
    records: Path | None
    looks: LookPlan | None  # None: ask every item (no `sequential` block, or --no-sequential)
    budget: Budget
    disambiguated_every: int = 1  # a family's disambiguated items asked in one round in this many

    @property
    def items(self) -> int:
        return sum(len(family) for family in self.order)


@dataclass(frozen=True)
class CandidateRun:
    """The candidate's answers and how the asking went."""

    run: BiasRun
    looks: tuple[Look, ...]
    stop: str  # sequential.DECIDED, BUDGET or EXHAUSTED
    base_seconds: float  # asking the base in this run (0 when all its answers were cached)
    base_items_asked: int
    same_weights: bool


@dataclass(frozen=True)
class SequentialSummary:
    """What the report says about how the asking ended."""

    method: str  # "confidence-sequence" or "fixed"
    look_every: int | None
    looks: int
    stop: str
    items_asked: int
    items_pool: int
    budget: str
    open_rules: tuple[str, ...]  # at the last look, when undecided
    shortfalls: tuple[Shortfall, ...]
    disambiguated_every: int = 1  # disambiguated items asked in one round of families in this many


@dataclass(frozen=True)
class BiasResult:
    """What the report shows; per-item answers go to --records, not here."""

    source: str
    license: str
    items: int
    dropped: int
    mode: str
    permute: bool
    seeds: tuple[int, ...]
    prompt_format: str
    base_items_per_second: float
    candidate_items_per_second: float
    records: str | None
    comparison: BiasComparison
    sequential: SequentialSummary | None = None
    same_weights: bool = False
    runtime: dict[str, Any] | None = None  # {"base": runtime_info, "candidate": runtime_info}


def look_status(look: Look, named: int = 2) -> str:
    """What a look leaves open, for the progress line: 'still open after 264 items: srs-per-category[religion]'."""
    if look.decided:
        return f"decided after {look.items:,} items"
    shown = ", ".join(look.open_rules[:named])
    more = len(look.open_rules) - named
    return f"still open after {look.items:,} items: {shown}" + (f" and {more} more" if more > 0 else "")


class BiasStep(ModelStep[BiasPlan, BiasRun]):
    name = "bias"
    runs_pair = True  # both models answer chunk by chunk until the policy is decided
    run_type = BiasRun

    def cache_key(self, plan: BiasPlan) -> str:
        items = hashlib.sha256("\n".join(i.item_id for f in plan.order for i in f).encode()).hexdigest()
        # How the answers were computed, where it moves their last bits (and so a near-tie's argmax): one tree
        # per family, the opening once, on a CPU two trees at once on half the cores each (`cpu_workers`).
        # The thread count itself is left out on purpose: it moves probabilities by about 1e-5, which flips a
        # hard answer only where two letters tie that closely, and keying on it would stop a base measured on
        # one machine from serving candidates gated on another with a different core count (`gate cache export`).
        return f"order={items} mode={plan.mode} permute={plan.permute} seeds={plan.seeds} tree=family opening=once cpu=two-trees-at-once"

    def cacheable(self, run: BiasRun) -> bool:
        return bool(run.answers)  # a broken run raises instead of returning

    def supersedes(self, run: BiasRun, cached: BiasRun) -> bool:
        return len(run.answers) > len(cached.answers)  # a later candidate needed more of the base's answers

    def plan(self, tokenizer: Tokenizer, options: CheckOptions, looks: LookJudge | None = None) -> BiasPlan:
        settings = options.of(BiasOptions)
        data = load_bbq_source(settings.bbq)
        pool = select_categories(data.items, settings.categories or None)
        records = Path(settings.records) if settings.records else None
        if records is not None:
            _check_records_dir(records)
        permute = (settings.mode == "letters") if settings.permute is None else settings.permute
        seeds = (settings.seeds or DEFAULT_SEEDS) if settings.mode == "generate" else ()
        if not pool:
            raise InputError("no BBQ items to ask")
        items, seconds = settings.budget_limits()
        look_plan = plan_looks(looks, settings.sequential)
        # Only a run that stops once decided, on rules that read ambiguous contexts only, thins the others.
        every = DISAMBIGUATED_EVERY if look_plan is not None and looks is not None \
            and looks.deciding_metrics <= AMBIGUOUS_FIGURES else 1
        order = first_items(thin_disambiguated(asking_order(pool), every), settings.limit)
        return BiasPlan(source=data.source, license=data.license_note, order=order, dropped=len(data.dropped),
                        mode=settings.mode, permute=permute, seeds=seeds, records=records, looks=look_plan,
                        budget=Budget(items=items, seconds=seconds), disambiguated_every=every)

    def workload(self, plan: BiasPlan, tokenizer: Tokenizer) -> WorkPlan:
        """Items up to the budget, each family one token tree (tokens measured on the first families)."""
        items = plan.items if plan.budget.items is None else min(plan.items, plan.budget.items)
        sample = plan.order[:WORKLOAD_FAMILIES]
        per_family = family_workload(tokenizer, sample, plan.mode, plan.permute, len(plan.seeds) or 1)
        sampled = sum(len(family) for family in sample)
        scaled = lambda count: Workload(**{field: round(getattr(per_family, field) * count / sampled)  # noqa: E731
                                           for field in per_family.__dataclass_fields__})
        first = None
        if plan.looks is not None:  # the first look where every deciding figure has its rules' min_n of items
            earliest = min(earliest_decision(plan.order, plan.looks, CHUNK_ITEMS, AMBIGUOUS_FIGURES), items)
            first = FirstLook(f"{earliest:,} items", scaled(earliest))
        orders = " × 3 option orders" if plan.permute else ""
        return WorkPlan(f"up to {items:,} items{orders} × 2 models, {plan.budget.describe()} of the candidate's asking",
                        scaled(items), cap_seconds=plan.budget.seconds, units=items,
                        stops_early=plan.looks is not None, first_look=first)

    def run_pair(self, context: PairContext, plan: BiasPlan, reporter: Reporter) -> tuple[BiasRun, CandidateRun]:
        """Both models over the same items until decided, over budget or out of items; see the module docstring."""
        asker = _Asker(context, plan)
        try:
            limit = _progress_limit(plan.budget, context)
            with reporter.task(f"BBQ ({plan.mode}{', 3 option orders' if plan.permute else ''})",
                               total=plan.items, time_limit=limit, stops_early=plan.looks is not None) as task:
                def ask_candidate(items: Sequence[BBQItem]) -> Sequence[ItemAnswer]:
                    answers = asker.candidate(items)
                    task.advance(len(items))
                    return answers

                asked = ask_in_chunks(plan.order, asker.base, ask_candidate, plan.looks, plan.budget, CHUNK_ITEMS,
                                      identical=context.same_weights, on_look=lambda look: task.status(look_status(look)))
        finally:
            asker.close()
            base = asker.base_run()
            if asker.asked_base:  # kept even when the candidate failed or the run was stopped
                context.keep_base(base)
        return base, asker.candidate_run(asked)

    def compare(self, base: BiasRun, candidate: CandidateRun, plan: BiasPlan) -> StepResult:
        position = {answer.item_id: answer for answer in base.answers}
        paired = replace(base, answers=tuple(position[a.item_id] for a in candidate.run.answers))
        bootstrap = "cs" if plan.looks is not None else "percentile"
        comparison = compare_bias(paired, candidate.run, level=LEVEL, bootstrap=bootstrap,
                                  identical=candidate.same_weights,
                                  rise_above=plan.looks.rise_above if plan.looks is not None else 0.0)
        summary = _summary(plan, candidate, comparison)
        runtime = {"base": paired.runtime, "candidate": candidate.run.runtime}
        found = list(findings(paired, candidate.run)) + [_asking_finding(summary)] + list(runtime_findings(runtime))
        if candidate.same_weights:
            found.append(Finding(Severity.INFO, "bbq-same-weights",
                                 "candidate and base are byte-identical (weights, config, tokenizer): the candidate's "
                                 "answers are the base's, not asked again"))
        if plan.dropped:
            found.append(Finding(Severity.INFO, "bbq-dropped-items",
                                 f"{plan.dropped} BBQ rows have no single stereotyped answer and were left out"))
        if plan.records is not None:
            write_records(plan.records, paired, candidate.run)
        base_speed = candidate.base_items_asked / candidate.base_seconds if candidate.base_seconds > 0 \
            else base.items_per_second
        result = BiasResult(
            source=plan.source, license=plan.license, items=len(candidate.run.answers), dropped=plan.dropped,
            mode=plan.mode, permute=plan.permute, seeds=plan.seeds, prompt_format=candidate.run.prompt_format,
            base_items_per_second=base_speed, candidate_items_per_second=candidate.run.items_per_second,
            records=str(plan.records) if plan.records else None, comparison=comparison, sequential=summary,
            same_weights=candidate.same_weights, runtime=runtime,
        )
        return StepResult(result, tuple(metrics(comparison)), tuple(found))


def _progress_limit(budget: Budget, context: PairContext) -> float | None:
    """The most seconds the asking may take, for the progress ETA: the candidate's time budget, plus as long again
    for the share of it the base must answer too (all of it without a cache; past its cached items with one)."""
    if budget.seconds is None:
        return None
    cached = context.cached_base
    if context.same_weights:
        return budget.seconds
    if cached is None or not cached.answers or cached.seconds <= 0:
        return 2 * budget.seconds
    reach = budget.seconds / (cached.seconds / len(cached.answers))  # items the budget reaches at the base's pace
    return budget.seconds * (1 + max(0.0, 1 - len(cached.answers) / reach))


class _Asker:
    """Holds the two models while they answer (both at once when they fit in memory) and keeps their answers."""

    def __init__(self, context: PairContext, plan: BiasPlan):
        self._context, self._plan = context, plan
        cached = context.cached_base
        self._known: dict[str, ItemAnswer] = {a.item_id: a for a in cached.answers} if cached is not None else {}
        self._cached = cached
        self._models = HeldPair(context.load, before_candidate=self._stage_base)
        self._template: BiasRun | None = cached
        self._candidate_template: BiasRun | None = None
        self._candidate_answers: list[ItemAnswer] = []
        self._seconds = {"base": 0.0, "candidate": 0.0}
        self._base_asked = 0

    def _ask(self, role: str, items: Sequence[BBQItem]) -> BiasRun:
        run = answer_items(self._models.get(role), items, mode=self._plan.mode, permute=self._plan.permute,
                           seeds=self._plan.seeds or DEFAULT_SEEDS, reporter=NULL_REPORTER)
        self._seconds[role] += run.seconds
        return run

    def _stage_base(self) -> None:
        """Both models do not fit at once: the base answers, once, every item the candidate may reach in its
        budget (by items; by time, at the base's own pace, the candidate having the base's shapes); a candidate
        that goes further has the base loaded again for the rest."""
        budget = self._plan.budget
        reach = first_items(self._plan.order, budget.items)  # exactly the items an item budget allows
        covered = 0
        for start in range(0, len(reach), STAGE_FAMILIES):
            wanted = [item for family in reach[start:start + STAGE_FAMILIES] for item in family]
            missing = [item for item in wanted if item.item_id not in self._known]
            if missing:
                self._remember(self._ask("base", missing))
            covered += len(wanted)
            pace = self._seconds["base"] / self._base_asked if self._base_asked else 0.0
            if budget.seconds is not None and pace * covered >= budget.seconds:
                break

    def _remember(self, run: BiasRun) -> None:
        self._template = self._template or run
        self._base_asked += len(run.answers)
        self._known.update((a.item_id, a) for a in run.answers)

    @property
    def asked_base(self) -> bool:
        return self._base_asked > 0

    def base(self, items: Sequence[BBQItem]) -> Sequence[ItemAnswer]:
        missing = [item for item in items if item.item_id not in self._known]
        if missing:
            self._remember(self._ask("base", missing))
        return [self._known[item.item_id] for item in items]

    def candidate(self, items: Sequence[BBQItem]) -> Sequence[ItemAnswer]:
        if self._context.same_weights:
            answers = self.base(items)
        else:
            run = self._ask("candidate", items)
            self._candidate_template = self._candidate_template or run
            answers = run.answers
        self._candidate_answers.extend(answers)
        return answers

    def close(self) -> None:
        self._models.close()

    def base_run(self) -> BiasRun:
        """The base's answers in asking order, as far as they run without a gap: what the cache keeps."""
        answers = []
        for family in self._plan.order:
            if not all(item.item_id in self._known for item in family):
                break
            answers += [self._known[item.item_id] for item in family]
        seconds = (self._cached.seconds if self._cached is not None else 0.0) + self._seconds["base"]
        return replace(self._template, answers=tuple(answers), seconds=seconds)

    def candidate_run(self, asked: AskedRun) -> CandidateRun:
        template = self._candidate_template or self._template
        seconds = self._seconds["candidate"] if not self._context.same_weights else 0.0
        run = replace(template, answers=tuple(self._candidate_answers), seconds=seconds)
        return CandidateRun(run, asked.looks, asked.stop, self._seconds["base"], self._base_asked,
                            self._context.same_weights)


def _summary(plan: BiasPlan, candidate: CandidateRun, comparison: BiasComparison) -> SequentialSummary:
    asked = len(candidate.run.answers)
    missing = () if candidate.stop == DECIDED or plan.looks is None else shortfalls(comparison, plan.looks, asked)
    return SequentialSummary(
        method="confidence-sequence" if plan.looks is not None else "fixed",
        look_every=plan.looks.look_every if plan.looks is not None else None, looks=len(candidate.looks),
        stop=candidate.stop, items_asked=asked, items_pool=plan.items, budget=plan.budget.describe(),
        open_rules=candidate.looks[-1].open_rules if candidate.looks else (), shortfalls=missing,
        disambiguated_every=plan.disambiguated_every,
    )


def _asking_finding(summary: SequentialSummary) -> Finding:
    asked = f"{summary.items_asked:,} of {summary.items_pool:,} items"
    if summary.method == "fixed":
        ending = "budget spent" if summary.stop == BUDGET else "every item asked"
        return Finding(Severity.INFO, "bbq-asked", f"{asked} asked ({ending}); fixed-size 95% intervals")
    thinned = (f"; disambiguated contexts asked for one family in {summary.disambiguated_every}, as no deciding rule "
               "reads them" if summary.disambiguated_every > 1 else "")
    if summary.stop == DECIDED:
        return Finding(Severity.INFO, "bbq-sequential",
                       f"the bias rules were decided after {asked} ({summary.looks} looks, one every "
                       f"{summary.look_every} items); intervals are 95% confidence sequences, valid however early "
                       f"the asking stopped (--no-sequential asks every item){thinned}")
    why = f"the budget ({summary.budget}) was spent" if summary.stop == BUDGET else "the items ran out"
    needs = "; ".join(f"{s.rule} about {s.items_more:,} more items" if s.items_more is not None else f"{s.rule} ?"
                      for s in summary.shortfalls)
    return Finding(Severity.INFO, "bbq-sequential",
                   f"{why} after {asked} before every bias rule was decided" +
                   (f"; to decide: {needs} (--bias-budget, --bbq DIR for more data)" if needs else "") + thinned)


def _check_records_dir(path: Path) -> None:
    """Refuse before any model runs rather than overwrite earlier records (the CLI has checked the path itself;
    a library caller gets the same check here)."""
    check_records_dir("--records", path, [])
    existing = [name for name in (RECORDS_FILE, RUNS_FILE) if (path / name).exists()]
    if existing:
        raise InputError(f"--records {path} already holds {existing[0]}; choose an empty or new directory")
