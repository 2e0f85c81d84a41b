"""The check result as a versioned JSON document.

Every output format renders this document, so `gate report RESULT.json`
re-renders a saved result exactly as `gate check` showed it, without running
any model. The document holds each dataclass's fields plus its public
properties (derived figures such as a sparsity), enums as their values,
non-finite floats as null, and every string valid Unicode (a lone surrogate,
from a file name that is not UTF-8, becomes U+FFFD) so the saved file reads back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gate.core.errors import ExitCode, InputError
from gate.core.safejson import load_json
from gate.core.serialize import to_jsonable

SCHEMA = "gate.check/v1"
# The exit code each verdict means: `gate report` derives it, never trusting a stored one.
VERDICT_EXIT_CODES = {"PASS": ExitCode.PASS, "FAIL": ExitCode.FAIL, "INCONCLUSIVE": ExitCode.INCONCLUSIVE}
_SEVERITIES = ("info", "warning", "error")


def to_document(result: Any) -> dict:
    """A `gate.run.check.CheckResult` as its gate.check/v1 document (typed Any: report sits below run)."""
    doc = to_jsonable(result)
    return {"schema": SCHEMA, **doc}


def dumps(document: dict) -> str:
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def load_document(path: Path) -> dict:
    """A saved result, checked against the parts of the schema every format reads; else one InputError."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"no such result file: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    doc = load_json(raw, str(path), InputError)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else None
        shown = repr(found)[:40] if isinstance(found, str) else type(found).__name__
        raise InputError(f"{path} is not a gate result (expected schema {SCHEMA!r}, found {shown})")
    problem = schema_problem(doc)
    if problem:
        raise InputError(f"{path} does not follow schema {SCHEMA}: {problem}")
    return doc


def exit_code_of(doc: dict) -> ExitCode:
    """The exit code of the verdict a document holds (its stored `exit_code` is not trusted)."""
    return VERDICT_EXIT_CODES[doc["verdict"]["status"]]


def schema_problem(doc: dict) -> str | None:
    """What is missing or of the wrong type in a result document, or None."""
    for role in ("candidate", "base"):
        problem = _fields(doc.get(role), role, {"spec": str, "path": str})
        if problem:
            return problem
    if not isinstance(doc.get("options", {}), dict):
        return "options is not an object"
    verdict = doc.get("verdict")
    problem = _fields(verdict, "verdict", {"status": str, "rules": list, "reasons": list})
    if problem:
        return problem
    if verdict["status"] not in VERDICT_EXIT_CODES:
        return f"verdict.status must be one of {', '.join(VERDICT_EXIT_CODES)}"
    if not all(isinstance(reason, str) for reason in verdict["reasons"]):
        return "verdict.reasons must be strings"
    for i, rule in enumerate(verdict["rules"]):
        problem = _fields(rule, f"verdict.rules[{i}]", {"rule_id": str, "metric": str, "status": str})
        if problem:
            return problem
    outcomes = doc.get("outcomes")
    if not isinstance(outcomes, list):
        return "outcomes is missing or not a list"
    for i, outcome in enumerate(outcomes):
        where = f"outcomes[{i}]"
        problem = _fields(outcome, where, {"name": str, "findings": list, "metrics": list})
        if problem:
            return problem
        if not isinstance(outcome.get("error"), (str, type(None))) or not isinstance(outcome.get("result"), (dict, type(None))):
            return f"{where}: error must be a string or null, result an object or null"
        for j, finding in enumerate(outcome["findings"]):
            problem = _fields(finding, f"{where}.findings[{j}]", {"severity": str, "code": str, "message": str})
            if problem:
                return problem
            if finding["severity"] not in _SEVERITIES or not isinstance(finding.get("subject"), (str, type(None))):
                return f"{where}.findings[{j}]: severity must be one of {', '.join(_SEVERITIES)}, subject a string or null"
    return None


def _fields(value: Any, where: str, types: dict[str, type]) -> str | None:
    if not isinstance(value, dict):
        return f"{where} is missing or not an object"
    for name, kind in types.items():
        if not isinstance(value.get(name), kind):
            return f"{where}.{name} is missing or not {_TYPE_NAMES[kind]}"
    return None


_TYPE_NAMES = {str: "a string", list: "a list", dict: "an object"}
