"""Glue between the CLI and the output formats: which reporter, which files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console

from gate.report.document import dumps, to_document
from gate.report.charts import srs_change_svg
from gate.report.html import HtmlFormat
from gate.report.junit import JUnitFormat
from gate.report.markdown import MarkdownFormat
from gate.report.terminal import TerminalFormat
from gate.core.files import write_text
from gate.report.write import chart_path
from gate.core.progress import NULL_REPORTER, Reporter
from gate.cli.progress_log import LogReporter
from gate.cli.progress_rich import RichReporter
from gate.cli.exits import one_line


def reporter_for(console: Console, quiet: bool) -> Reporter:
    """Live bars for a person watching a terminal, plain lines for a log (CI), nothing with --quiet."""
    if quiet:
        return NULL_REPORTER
    return RichReporter(console) if console.is_terminal else LogReporter(console.file)


def emit_reports(result, outputs: dict[str, Path | None], quiet: bool) -> None:
    emit_document(to_document(result), outputs, quiet)


def emit_document(doc: dict, outputs: dict[str, Path | None], quiet: bool, step_summary: bool = True) -> None:
    """Write the reports asked for; `step_summary` False keeps the Markdown out of $GITHUB_STEP_SUMMARY (a sweep
    writes its summary there instead of every candidate's report)."""
    step_summary = step_summary and bool(os.environ.get("GITHUB_STEP_SUMMARY"))
    if outputs.get("--json"):
        write_text(outputs["--json"], dumps(doc))
    if outputs.get("--markdown") or step_summary:
        markdown = MarkdownFormat().render(doc)
        if outputs.get("--markdown"):
            write_text(outputs["--markdown"], markdown)
            chart = srs_change_svg(doc)  # the Markdown's chart as an image too, for CI artifacts
            if chart is not None:
                write_text(chart_path(outputs["--markdown"]), chart)
        if step_summary:  # GitHub Actions shows this file on the run's page; append, as other steps do
            _append_step_summary(markdown)
    if outputs.get("--junit"):
        write_text(outputs["--junit"], JUnitFormat().render(doc))
    if outputs.get("--html"):
        write_text(outputs["--html"], HtmlFormat().render(doc))
    if not quiet:
        Console(file=sys.stdout, width=None if sys.stdout.isatty() else 120).print(TerminalFormat().render(doc))


def emit_summary(summary: dict, targets: list[tuple[str, Path]], quiet: bool, step_summary: bool = True) -> None:
    """Write the summary across candidates in each format asked for (rendered in memory first), append it to
    $GITHUB_STEP_SUMMARY in GitHub Actions (unless `step_summary` is False), and show its table unless quiet
    (then one line if not PASS)."""
    from gate.report.summary_files import summary_texts
    from gate.report.summary_markdown import SummaryMarkdownFormat
    from gate.report.summary_terminal import SummaryTerminalFormat
    from gate.report.summary_text import headline

    for path, text in summary_texts(summary, targets).items():
        write_text(path, text)
    if step_summary and os.environ.get("GITHUB_STEP_SUMMARY"):
        _append_step_summary(SummaryMarkdownFormat().render(summary))
    if not quiet:
        Console(file=sys.stdout, width=None if sys.stdout.isatty() else 120).print(
            SummaryTerminalFormat().render(summary))
    elif summary["worst_verdict"] != "PASS":
        click.echo(one_line(f"gate: {headline(summary)}"), err=True)


def _append_step_summary(markdown: str) -> None:
    with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as f:
        f.write(markdown)


def say_why(doc: dict) -> None:
    """--quiet still says, in one line on stderr, why a verdict is not PASS."""
    verdict = doc.get("verdict") or {}
    status = verdict.get("status", "INCONCLUSIVE")
    if status == "PASS":
        return
    errors = [f"{o['name']} failed: {o['error']}" for o in doc.get("outcomes", []) if o.get("error")]
    reasons = errors + list(verdict.get("reasons") or [])
    more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
    click.echo(one_line(f"gate: {status}: {reasons[0] if reasons else 'see the report'}{more}"), err=True)
