"""Bias on BBQ as a `gate check` step: choose the items, ask each model, compare."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gate.bias.bbq import BBQItem, load_bbq_source, sample_items
from gate.bias.measure import (
    DEFAULT_SEEDS, RECORDS_FILE, RUNS_FILE, BiasRun, answer_items, compare_bias, findings, write_records,
)
from gate.bias.metrics import BiasComparison, metrics
from gate.bias.sequential import (
    LookPlan, SequentialRun, SequentialSummary, answer_in_looks, final_level, paired_answers, plan_looks, summary,
)
from gate.errors import InputError
from gate.formats.text import level as level_text
from gate.progress import Reporter
from gate.result import Finding, Severity
from gate.steps import StepResult

SAMPLE_SEED = 0


@dataclass(frozen=True)
class BiasPlan:
    source: str
    license: str
    items: tuple[BBQItem, ...]
    dropped: int  # rows of the source without a single target answer
    mode: str
    permute: bool
    seeds: tuple[int, ...]
    records: Path | None
    looks: LookPlan | None = None  # where the candidate may stop early (the policy's `sequential` block)
    policy_alpha: float = 0.05


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
    sequential: SequentialSummary | None = None  # set when the policy let the candidate stop early


class BiasStep:
    name = "bias"
    run_type = BiasRun

    def cache_key(self, plan: BiasPlan) -> str:
        items = hashlib.sha256("\n".join(item.item_id for item in plan.items).encode()).hexdigest()
        return f"items={items} mode={plan.mode} permute={plan.permute} seeds={plan.seeds}"

    def cacheable(self, run: BiasRun) -> bool:
        return True  # a broken run raises instead of returning

    def backend(self, options: Any) -> str:
        from gate.backends.select import resolve_backend

        return resolve_backend(options.backend)

    def plan(self, tokenizer: Any, options: Any, policy: Any = None) -> BiasPlan:
        settings = options.extra.get("bias", {})
        data = load_bbq_source(settings.get("bbq"))
        items = sample_items(data.items, limit=settings.get("limit"), seed=SAMPLE_SEED,
                             categories=settings.get("categories") or None)
        records = Path(settings["records"]) if settings.get("records") else None
        if records is not None:
            _check_records_dir(records)
        mode = settings.get("mode") or "letters"
        seeds = tuple(settings.get("seeds") or DEFAULT_SEEDS) if mode == "generate" else ()
        return BiasPlan(source=data.source, license=data.license_note, items=items, dropped=len(data.dropped),
                        mode=mode, permute=bool(settings.get("permute")), seeds=seeds, records=records,
                        looks=_usable_looks(items, policy, settings.get("sequential", True)),
                        policy_alpha=policy.alpha if policy is not None else 0.05)

    def run(self, handle: Any, plan: BiasPlan, reporter: Reporter) -> BiasRun:
        return self._ask(handle, plan, plan.items, reporter)

    def run_against(self, handle: Any, plan: BiasPlan, base: BiasRun, reporter: Reporter) -> BiasRun | SequentialRun:
        """The candidate: every item, or look by look when the policy allows stopping early."""
        if plan.looks is None:
            return self.run(handle, plan, reporter)
        return answer_in_looks(lambda items: self._ask(handle, plan, items, reporter), base, plan.looks)

    def _ask(self, handle: Any, plan: BiasPlan, items, reporter: Reporter) -> BiasRun:
        return answer_items(handle, items, mode=plan.mode, permute=plan.permute,
                            seeds=plan.seeds or DEFAULT_SEEDS, reporter=reporter)

    def compare(self, base: BiasRun, candidate: BiasRun | SequentialRun, plan: BiasPlan) -> StepResult:
        sequential, alpha, base_speed = None, None, base.items_per_second
        if isinstance(candidate, SequentialRun):  # asked look by look: judged at what the looks left
            level, alpha, bootstrap = final_level(candidate, plan.policy_alpha)
            sequential = summary(candidate, level, alpha)
            stopped, candidate = candidate.stopped_comparison, candidate.run
            base = replace(base, answers=paired_answers(base.answers, candidate.answers)[0])
            comparison = stopped or compare_bias(base, candidate, level=level, bootstrap=bootstrap)
        else:
            comparison = compare_bias(base, candidate)
        found = list(findings(base, candidate))
        if sequential is not None:
            found.append(_sequential_finding(sequential))
        if plan.dropped:
            found.append(Finding(Severity.INFO, "bbq-dropped-items",
                                 f"{plan.dropped} BBQ rows have no single stereotyped answer and were left out"))
        if plan.records is not None:
            plan.records.mkdir(parents=True, exist_ok=True)
            write_records(plan.records, base, candidate)
        result = BiasResult(
            source=plan.source, license=plan.license, items=len(candidate.answers), dropped=plan.dropped,
            mode=plan.mode, permute=plan.permute, seeds=plan.seeds, prompt_format=candidate.prompt_format,
            base_items_per_second=base_speed, candidate_items_per_second=candidate.items_per_second,
            records=str(plan.records) if plan.records else None, comparison=comparison, sequential=sequential,
        )
        return StepResult(result, tuple(metrics(comparison)), tuple(found), alpha=alpha)


def _usable_looks(items, policy: Any, allowed: bool) -> LookPlan | None:
    """The policy's looks that can decide on these items; None when there are none (or --no-sequential)."""
    if policy is None or not allowed:
        return None
    looks = plan_looks(items, policy, SAMPLE_SEED)
    return looks if looks is not None and looks.sizes else None


def _sequential_finding(seq: SequentialSummary) -> Finding:
    if seq.stopped:
        message = (f"the bias rules were decided after {seq.items_asked:,} of {seq.items_planned:,} items "
                   f"(look {len(seq.looks)} of {len(seq.looks_planned)}), so the candidate stopped there; figures "
                   f"on those items at the {level_text(seq.level)} level the looks are judged at (--no-sequential asks all)")
    else:
        message = (f"{len(seq.looks_planned)} sequential looks did not settle the bias rules; all {seq.items_planned:,} "
                   f"items asked, judged at the {level_text(seq.level)} level and Holm alpha {seq.alpha:.3g} that the "
                   f"looks left")
    return Finding(Severity.INFO, "bbq-sequential", message)


def _check_records_dir(path: Path) -> None:
    """Refuse before any model runs rather than overwrite earlier records."""
    if path.exists() and not path.is_dir():
        raise InputError(f"--records {path} is a file; give a directory")
    existing = [name for name in (RECORDS_FILE, RUNS_FILE) if (path / name).exists()]
    if existing:
        raise InputError(f"--records {path} already holds {existing[0]}; choose an empty or new directory")
    if not path.exists() and not path.parent.is_dir():
        raise InputError(f"--records {path}: directory {path.parent} does not exist")
