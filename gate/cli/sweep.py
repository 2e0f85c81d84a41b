"""The command-line side of `gate check C1 C2 … --base B`: paths checked up front, a line per candidate, the summary.

Every report path, records directory and summary file of every candidate is
checked before any model runs (gate/run/sweep.py fills in `{name}`). Each
candidate is then gated as `gate check` gates one; its reports go to its own
files, and the terminal gets one line per candidate and the summary table at
the end instead of each candidate's full report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import click

from gate.cli.exits import one_line
from gate.core.progress import Reporter
from gate.report.summary import Unchecked, build_summary
from gate.core.files import check_records_dir
from gate.report.write import chart_path, check_output_paths, claim_path
from gate.run.sweep import SweepPlan, run_sweep


def summary_targets(option: str, paths: Iterable[Path]) -> list[tuple[str, Path]]:
    """(format, path) of each --summary file; its suffix chooses the format."""
    from gate.report.summary_files import format_of

    return [(format_of(option, path), Path(path)) for path in paths]


def check_sweep_paths(plan: SweepPlan, targets: Sequence[tuple[str, Path]], directory_flags: Sequence[str],
                      protected: list[Path]) -> None:
    """Every file and directory the sweep will write: usable, outside the inputs, and no two the same."""
    claimed: dict[Path, str] = {}
    for outputs in plan.outputs:
        files = {option: path for option, path in outputs.items() if option not in directory_flags}
        check_output_paths(files, protected)
        for flag in directory_flags:
            check_records_dir(flag, outputs.get(flag), protected)
        for option, path in files.items():
            _claim(claimed, option, path)
            if option == "--markdown" and path is not None:
                _claim(claimed, "--markdown's chart", chart_path(path))
        for flag in directory_flags:
            _claim(claimed, flag, outputs.get(flag))
    summaries: dict[str, Path] = {}
    for kind, path in targets:
        summaries[f"--summary {path}"] = path
        if kind == "markdown":
            summaries[f"--summary {path}'s chart"] = chart_path(path)
    check_output_paths(summaries, protected)
    for option, path in summaries.items():
        _claim(claimed, option, path)


def _claim(claimed: dict[Path, str], option: str, path: Path | None) -> None:
    if path is not None:
        claim_path(claimed, option, path)


def sweep(plan: SweepPlan, base: str, options, reporter: Reporter, quiet: bool) -> dict:
    """Gate each candidate in turn, writing its reports; the summary document of the lot."""
    from gate.cli.render import emit_document
    from gate.report.document import to_document
    from gate.run.check import run_check

    total = len(plan.candidates)

    def gate_one(candidate: str, outputs: dict) -> dict:
        number = plan.candidates.index(candidate) + 1
        if not quiet:
            click.echo(one_line(f"gate: candidate {number} of {total}: {candidate}"), err=True)
        doc = to_document(run_check(candidate, base, options, reporter, outputs=outputs))
        emit_document(doc, outputs, quiet=True, step_summary=False)
        _say_verdict(doc, quiet)
        return doc

    entries = run_sweep(plan, base, gate_one)
    for entry in entries:
        if isinstance(entry, Unchecked):
            click.echo(one_line(f"gate: error: {entry.candidate} not gated: {entry.message}"), err=True)
    return build_summary(entries, [None if o.get("--json") is None else str(o["--json"]) for o in plan.outputs])


def _say_verdict(doc: dict, quiet: bool) -> None:
    """One line per candidate: its verdict and first reason (with --quiet, only when it is not PASS)."""
    verdict = doc["verdict"]
    if quiet and verdict["status"] == "PASS":
        return
    errors = [f"{o['name']} failed: {o['error']}" for o in doc["outcomes"] if o.get("error")]
    reasons = errors + list(verdict["reasons"])
    cached = [o["name"] for o in doc["outcomes"] if o.get("base_cached")]
    why = f": {reasons[0]}" + (f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else "") if reasons else ""
    note = f" [base from the cache: {', '.join(cached)}]" if cached and not quiet else ""
    click.echo(one_line(f"gate: {doc['candidate']['spec']}: {verdict['status']}{why}{note}"), err=True)
