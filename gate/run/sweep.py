"""Several candidates gated against one base: `gate check C1 C2 … --base B`.

Each candidate is gated in turn as `gate check` gates one; the base's
perplexity and bias runs come from the base-run cache after the first
candidate, so the base is measured once (with --no-cache, a temporary cache
directory serves the sweep and is removed after it). Each candidate's reports
go to paths made from the options' `{name}` placeholder; a candidate that
cannot be gated becomes a row of the summary with its error, and the sweep
goes on with the next one.
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from gate.core.errors import ExitCode, GateError, InputError
from gate.report.summary import Unchecked
from gate.run.cache import using_cache_root

NAME = "{name}"
log = logging.getLogger("gate.run.sweep")


@dataclass(frozen=True)
class SweepPlan:
    candidates: tuple[str, ...]
    outputs: tuple[dict[str, Path | None], ...]  # per candidate: report option -> path, {name} filled in


def report_name(spec: str) -> str:
    """What `{name}` becomes for a candidate: a local directory's own name, else the spec (an alias, a hub id),
    with every character a file name should not hold as "-": demo:wanda50 -> demo-wanda50."""
    path = Path(spec).expanduser()
    try:
        stem = path.resolve().name if path.exists() else spec
    except (OSError, ValueError):
        stem = spec
    return re.sub(r"[^A-Za-z0-9._@+-]+", "-", stem).strip("-.") or "candidate"


def plan_sweep(candidates: Sequence[str], outputs: Mapping[str, Path | None]) -> SweepPlan:
    """The report paths of each candidate; with several candidates, every path given must hold {name}."""
    if not candidates:
        raise InputError("no candidate given")
    if len(candidates) == 1:  # one candidate: exactly as before, a path is taken as written
        return SweepPlan(tuple(candidates), (dict(outputs),))
    given = {option: path for option, path in outputs.items() if path is not None}
    for option, path in given.items():
        if NAME not in str(path):
            raise InputError(f"{option} {path}: with several candidates each report path needs {NAME}, "
                             f"e.g. {option} out/{NAME}{Path(str(path)).suffix}")
    names: dict[str, str] = {}
    for candidate in candidates:
        name = report_name(candidate)
        if name in names:
            raise InputError(f"candidates {names[name]} and {candidate} would write the same reports ({NAME} = "
                             f"{name}); give each candidate once, under distinct names")
        names[name] = candidate
    per_candidate = tuple({option: None if path is None else Path(str(path).replace(NAME, name))
                           for option, path in outputs.items()} for name in names)
    return SweepPlan(tuple(candidates), per_candidate)


@contextlib.contextmanager
def sweep_cache_root(no_cache: bool, several: bool) -> Iterator[Path | None]:
    """Where the sweep's base runs are cached: None (the user's cache, as always) unless --no-cache with several
    candidates, where a temporary directory, removed after the sweep, keeps the base measured once."""
    if not (no_cache and several):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="gate-sweep-cache-") as root, using_cache_root(Path(root)):
        yield Path(root)


def resolve_candidates(candidates: Sequence[str], reporter=None) -> None:
    """Every candidate names a model (a directory, an alias, a hub id) before the first is gated: a typo in the
    last one is one line and exit 2 at the start, not after hours of measuring the others."""
    from gate.core.progress import NULL_REPORTER
    from gate.demo.build import ensure_demo_checkpoint
    from gate.inputs.refs import resolve_model

    for candidate in candidates:  # as run_check resolves them: demo aliases are built where missing
        resolve_model(candidate, reporter or NULL_REPORTER, build_demo=ensure_demo_checkpoint)


def run_sweep(plan: SweepPlan, base: str, gate_one: Callable[[str, dict], dict]) -> list[dict | Unchecked]:
    """Each candidate's result document, in order; a candidate that cannot be gated becomes an Unchecked entry.

    `gate_one(candidate, outputs)` gates one candidate and returns its document (writing its reports).
    Ctrl-C and SIGTERM stop the whole sweep: they are not caught here.
    """
    entries: list[dict | Unchecked] = []
    for candidate, outputs in zip(plan.candidates, plan.outputs):
        try:
            entries.append(gate_one(candidate, outputs))
        except GateError as exc:
            entries.append(Unchecked(candidate, base, str(exc), exc.exit_code))
        except Exception as exc:  # a bug while gating one candidate: the others are still gated, the lot exits 4
            log.debug("internal error gating %s", candidate, exc_info=True)
            entries.append(Unchecked(candidate, base, f"internal error: {type(exc).__name__}: {exc}",
                                     ExitCode.INTERNAL))
    return entries
