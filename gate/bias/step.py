"""Bias on BBQ as a `gate check` step: choose the items, ask each model, compare."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gate.bias.bbq import BBQItem, load_bbq_source, sample_items
from gate.bias.measure import (
    DEFAULT_SEEDS, RECORDS_FILE, RUNS_FILE, BiasRun, answer_items, compare_bias, findings, write_records,
)
from gate.bias.metrics import BiasComparison, metrics
from gate.errors import InputError
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

    def plan(self, tokenizer: Any, options: Any) -> BiasPlan:
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
                        mode=mode, permute=bool(settings.get("permute")), seeds=seeds, records=records)

    def run(self, handle: Any, plan: BiasPlan, reporter: Reporter) -> BiasRun:
        return answer_items(handle, plan.items, mode=plan.mode, permute=plan.permute,
                            seeds=plan.seeds or DEFAULT_SEEDS, reporter=reporter)

    def compare(self, base: BiasRun, candidate: BiasRun, plan: BiasPlan) -> StepResult:
        comparison = compare_bias(base, candidate)
        found = list(findings(base, candidate))
        if plan.dropped:
            found.append(Finding(Severity.INFO, "bbq-dropped-items",
                                 f"{plan.dropped} BBQ rows have no single stereotyped answer and were left out"))
        if plan.records is not None:
            plan.records.mkdir(parents=True, exist_ok=True)
            write_records(plan.records, base, candidate)
        result = BiasResult(
            source=plan.source, license=plan.license, items=len(plan.items), dropped=plan.dropped, mode=plan.mode,
            permute=plan.permute, seeds=plan.seeds, prompt_format=candidate.prompt_format,
            base_items_per_second=base.items_per_second, candidate_items_per_second=candidate.items_per_second,
            records=str(plan.records) if plan.records else None, comparison=comparison,
        )
        return StepResult(result, tuple(metrics(comparison)), tuple(found))


def _check_records_dir(path: Path) -> None:
    """Refuse before any model runs rather than overwrite earlier records."""
    if path.exists() and not path.is_dir():
        raise InputError(f"--records {path} is a file; give a directory")
    existing = [name for name in (RECORDS_FILE, RUNS_FILE) if (path / name).exists()]
    if existing:
        raise InputError(f"--records {path} already holds {existing[0]}; choose an empty or new directory")
    if not path.exists() and not path.parent.is_dir():
        raise InputError(f"--records {path}: directory {path.parent} does not exist")
