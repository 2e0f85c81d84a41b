"""Many check results as one summary: a row per candidate, the worst verdict as one exit code.

The summary is a document of its own (schema gate.summary/v1), built from
gate.check/v1 documents by picking figures out of them, never by computing
new ones: the shape of a paper's results table (methods × sparsities), with
each figure's interval and the status of the rule that judged it. The summary
formats (summary_markdown.py, summary_html.py, summary_terminal.py) render it
as the single-result formats render a check document.

A candidate that could not be gated at all (a bad checkpoint, a bug) is a row
too, with its error and exit code, so a sweep's summary still lists it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from gate import __version__
from gate.core.errors import ExitCode, InputError
from gate.report.document import VERDICT_EXIT_CODES, load_document

SCHEMA = "gate.summary/v1"
ERROR = "ERROR"  # the verdict of a row whose candidate could not be gated
# The lot's exit code is its worst row's: a bug, then a candidate not gated at all, then the verdicts.
WORST_FIRST = (ExitCode.INTERNAL, ExitCode.USAGE, ExitCode.FAIL, ExitCode.INCONCLUSIVE, ExitCode.PASS)
# The figures of a row: its column name and the metric key it comes from (category None: overall).
FIGURES = {"sparsity": "sparsity.actual", "size_ratio": "size.ratio", "perplexity_ratio": "perplexity.ratio",
           "latency_ratio": "latency.ratio", "srs_change": "bias.srs.change"}
# A figure judged by a rule on another metric: the actual sparsity, by the declared-sparsity rule.
JUDGED_BY = {"sparsity.actual": "sparsity.declared_gap"}
PER_CATEGORY = "bias.srs.change"
_RULE_SEVERITY = ("fail", "inconclusive", "warn", "pass", "waived", "not-measured")


@dataclass(frozen=True)
class Unchecked:
    """A candidate that has no result document: why, and the exit code that stands for it."""

    candidate: str
    base: str
    message: str
    exit_code: ExitCode


def load_documents(paths: Sequence[Path]) -> list[dict]:
    """Saved check results, each checked as `gate report` checks one; the first bad one is an InputError."""
    if not paths:
        raise InputError("no result files given to summarize")
    return [load_document(Path(path)) for path in paths]


def build_summary(entries: Sequence[dict | Unchecked], sources: Sequence[str | None] | None = None) -> dict:
    """The summary document of check documents (and candidates not gated), rows in the order given."""
    sources = list(sources) if sources is not None else [None] * len(entries)
    rows = [_error_row(e) if isinstance(e, Unchecked) else _row(e) for e in entries]
    for row, source in zip(rows, sources):
        row["source"] = source
    categories = list(dict.fromkeys(c for row in rows for c in row["srs_change_by_category"]))
    worst = min(rows, key=lambda row: WORST_FIRST.index(ExitCode(row["exit_code"])), default=None)
    bases = list(dict.fromkeys(row["base"] for row in rows))
    policies = list(dict.fromkeys(row["policy"] for row in rows if row["policy"] is not None))
    return {
        "schema": SCHEMA, "gate_version": __version__, "rows": rows, "categories": categories,
        "bases": bases, "mixed_bases": len(bases) > 1, "policies": policies, "mixed_policies": len(policies) > 1,
        "thresholds": {"perplexity_ratio": _common(rows, lambda row: row["perplexity_ratio"]),
                       "srs_change": _srs_thresholds(rows, categories)},
        "interval_levels": sorted({iv["level"] for row in rows for iv in _intervals(row) if iv["level"] is not None}),
        "counts": {v: sum(row["verdict"] == v for row in rows) for v in (*VERDICT_EXIT_CODES, ERROR)},
        "worst_verdict": worst["verdict"] if worst else None,
        "exit_code": int(worst["exit_code"]) if worst else int(ExitCode.USAGE),
    }


# --- one row -------------------------------------------------------------------

def _row(doc: dict) -> dict:
    metrics = _metrics(doc)
    rules = _rules(doc)

    def cell(key: str, category: str | None = None) -> dict:
        metric, rule = metrics.get((key, category)) or {}, rules.get((JUDGED_BY.get(key, key), category)) or {}
        return {"value": _number(metric.get("value")), "interval": _interval(metric.get("interval")),
                "status": rule.get("status"), "threshold": _number(rule.get("threshold"))}

    categories = [category for key, category in metrics if key == PER_CATEGORY and category is not None]
    outcomes = [o for o in doc["outcomes"] if isinstance(o, dict)]
    status = doc["verdict"]["status"]
    internal = any(o.get("error_kind") == "internal" for o in outcomes)
    return {
        "candidate": doc["candidate"]["spec"], "base": doc["base"]["spec"], "policy": _text(doc["verdict"].get("policy")),
        "verdict": status,
        "exit_code": int(ExitCode.INTERNAL if internal else VERDICT_EXIT_CODES[status]),
        "error": None,
        "reasons": list(doc["verdict"]["reasons"]),
        "declared_sparsity": _declared_sparsity(outcomes),
        **{name: cell(key) for name, key in FIGURES.items()},
        "srs_change_by_category": {category: cell(PER_CATEGORY, category) for category in categories},
        "failed": [o["name"] for o in outcomes if o.get("error")],
        "base_cached": [o["name"] for o in outcomes if o.get("base_cached") is True],
        "seconds": _number(doc.get("seconds")),
    }


def _declared_sparsity(outcomes: list[dict]) -> float | None:
    """The sparsity the candidate was declared to have, as the sparsity measurement recorded it."""
    sparsity = next((o for o in outcomes if o.get("name") == "sparsity" and not o.get("error")), None)
    result = (sparsity or {}).get("result")
    return _number(result.get("expected")) if isinstance(result, dict) else None


def _error_row(entry: Unchecked) -> dict:
    empty = {"value": None, "interval": None, "status": None, "threshold": None}
    return {"candidate": entry.candidate, "base": entry.base, "policy": None, "verdict": ERROR,
            "exit_code": int(entry.exit_code), "error": entry.message, "reasons": [], "declared_sparsity": None,
            **{name: dict(empty) for name in FIGURES}, "srs_change_by_category": {}, "failed": [],
            "base_cached": [], "seconds": None}


def _metrics(doc: dict) -> dict[tuple[str, str | None], dict]:
    """Every metric of the measurements that ran, by (key, category); the first of a repeated key wins."""
    found: dict[tuple[str, str | None], dict] = {}
    for outcome in doc["outcomes"]:
        if outcome.get("error"):
            continue
        for metric in outcome["metrics"]:
            if isinstance(metric, dict) and isinstance(metric.get("key"), str):
                found.setdefault((metric["key"], _text(metric.get("category"))), metric)
    return found


def _rules(doc: dict) -> dict[tuple[str, str | None], dict]:
    """The rule that judged each (metric, category); where several did, the one with the worst status."""
    found: dict[tuple[str, str | None], dict] = {}
    for rule in doc["verdict"]["rules"]:
        where = (rule["metric"], _text(rule.get("category")))
        if where not in found or _severity(rule) < _severity(found[where]):
            found[where] = rule
    return found


def _severity(rule: dict) -> int:
    status = rule.get("status")
    return _RULE_SEVERITY.index(status) if status in _RULE_SEVERITY else len(_RULE_SEVERITY)


def _srs_thresholds(rows: list[dict], categories: list[str]) -> dict[str, float]:
    """The SRS-change threshold per category ("overall" for all of them) where the rows agree on one."""
    picks = [("overall", lambda row: row["srs_change"])]
    picks += [(c, lambda row, c=c: row["srs_change_by_category"].get(c)) for c in categories]
    found = {label: _common(rows, pick) for label, pick in picks}
    return {label: value for label, value in found.items() if value is not None}


def _common(rows: list[dict], pick) -> float | None:
    """The threshold every row that was judged on a figure shares; None if none was, or they differ."""
    values = {(pick(row) or {}).get("threshold") for row in rows} - {None}
    return values.pop() if len(values) == 1 else None


def _intervals(row: dict) -> list[dict]:
    cells = [row[name] for name in FIGURES] + list(row["srs_change_by_category"].values())
    return [cell["interval"] for cell in cells if cell["interval"] is not None]


def _number(value) -> float | None:
    """A finite number from the document, else None (a document is input: anything may stand there)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def _interval(value) -> dict | None:
    if not isinstance(value, dict):
        return None
    low, high = _number(value.get("low")), _number(value.get("high"))
    if low is None or high is None:
        return None
    return {"low": low, "high": high, "level": _number(value.get("level"))}


def _text(value) -> str | None:
    return value if isinstance(value, str) else None
