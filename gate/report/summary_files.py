"""Which text goes to which file for a summary: the format from the file's suffix, the chart beside the Markdown.

Rendering happens here, in memory, before anything is written, so a summary
that a format cannot render writes no file at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from gate.core.errors import InputError
from gate.report.document import dumps
from gate.report.summary_charts import srs_svg
from gate.report.summary_html import SummaryHtmlFormat
from gate.report.summary_markdown import SummaryMarkdownFormat
from gate.report.write import chart_path

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html", ".json": "json"}


def format_of(option: str, path: Path) -> str:
    """The summary format a file name asks for, by its suffix; anything else is an input error."""
    found = SUFFIXES.get(Path(path).suffix.lower())
    if found is None:
        raise InputError(f"{option} {path}: the suffix chooses the format; use .md, .html or .json")
    return found


def summary_texts(summary: dict, targets: Iterable[tuple[str, Path]]) -> dict[Path, str]:
    """Each target file's text; `targets` pairs a format (markdown, html, json) with a path. A Markdown file gets
    its chart beside it as SVG (summary.md -> summary.svg), as the single report's does."""
    texts: dict[Path, str] = {}
    for kind, path in targets:
        if kind == "markdown":
            texts[Path(path)] = SummaryMarkdownFormat().render(summary)
            chart = srs_svg(summary)
            if chart is not None:
                texts[chart_path(path)] = chart
        elif kind == "html":
            texts[Path(path)] = SummaryHtmlFormat().render(summary)
        elif kind == "json":
            texts[Path(path)] = dumps(summary)
        else:
            raise ValueError(f"unknown summary format {kind!r}")
    return texts
