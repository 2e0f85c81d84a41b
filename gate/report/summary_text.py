"""The cells of the summary's tables, the same in every summary format (Markdown, HTML, terminal).

Each figure is its value and interval in one precision (core/numbers.py),
with the status of the policy rule that judged it so a format can mark it;
names stay raw here and each format escapes them its own way.
"""

from __future__ import annotations

from dataclasses import dataclass

from gate.report import text as fmt

# (header, row field, how the figure is written) of the main table, after verdict and candidate.
_FIGURE_COLUMNS = (("sparsity", "sparsity", "rate"), ("size ratio", "size_ratio", "plain"),
                   ("perplexity ratio [CI]", "perplexity_ratio", "plain"),
                   ("latency ratio [CI]", "latency_ratio", "plain"), ("SRS change, pp [CI]", "srs_change", "pp"))
MARKED = ("fail", "inconclusive")  # rule statuses a format marks on the figure they judged


@dataclass(frozen=True)
class Cell:
    text: str
    status: str | None = None  # the status of the rule that judged the figure, if one did
    # "figure": our own text (numbers, headers); "verdict": a row's verdict; "name": a name from an input
    # (a model, a category); "text": words from an input (measurement names)
    kind: str = "figure"


def main_headers(summary: dict) -> list[Cell]:
    base = ["base"] if summary["mixed_bases"] else []
    return [Cell(header) for header in ["verdict", "candidate", *base, "declared", *(h for h, _, _ in _FIGURE_COLUMNS),
                                        "base cached", "seconds"]]


def main_cells(summary: dict, row: dict) -> list[Cell]:
    base = [Cell(row["base"], kind="name")] if summary["mixed_bases"] else []
    figures = [figure(row[field], kind) for _, field, kind in _FIGURE_COLUMNS]
    return [Cell(row["verdict"], row["verdict"], kind="verdict"), Cell(row["candidate"], kind="name"), *base,
            Cell(fmt.pct(row["declared_sparsity"])), *figures, Cell(cached(row), kind="text"),
            Cell(fmt.seconds(row["seconds"]))]


def category_headers(summary: dict) -> list[Cell]:
    return [Cell("candidate"), *(Cell(c, kind="name") for c in summary["categories"]), Cell("overall")]


def category_cells(summary: dict, row: dict) -> list[Cell]:
    by_category = row["srs_change_by_category"]
    return ([Cell(row["candidate"], kind="name")] + [figure(by_category.get(c), "pp") for c in summary["categories"]]
            + [figure(row["srs_change"], "pp")])


def figure(cell: dict | None, kind: str) -> Cell:
    """A figure with its interval: a rate in percent, a change in percentage points, or a plain number."""
    if not cell or fmt.missing(cell.get("value")):
        return Cell(fmt.DASH, (cell or {}).get("status"))
    value, interval = cell["value"], cell.get("interval")
    if kind == "rate":
        text = fmt.pct(value) + ("" if interval is None else " " + fmt.pct_interval(interval, ""))
    elif kind == "pp":
        text = fmt.signed_pct(value).removesuffix(" pp") + ("" if interval is None else " " + fmt.pct_interval(interval, ""))
    else:
        shown, bounds = fmt.figure(value, interval)
        text = shown if interval is None else f"{shown} {bounds}"
    return Cell(text, cell.get("status"))


def cached(row: dict) -> str:
    """Which measurements took the base's figures from the cache."""
    if row["error"]:
        return fmt.DASH
    return ", ".join(row["base_cached"]) or "no"


def headline(summary: dict) -> str:
    """"4 candidates: 1 PASS, 2 FAIL, 1 INCONCLUSIVE; the lot: FAIL (exit code 1)"."""
    rows = summary["rows"]
    counts = ", ".join(f"{n} {verdict}" for verdict, n in summary["counts"].items() if n)
    noun = "candidate" if len(rows) == 1 else "candidates"
    return f"{len(rows)} {noun}: {counts}; the lot: {summary['worst_verdict']} (exit code {summary['exit_code']})"


def notes(summary: dict) -> list[str]:
    """What a reader must know before comparing rows: mixed bases or policies, candidates not gated, broken runs."""
    out = []
    if summary["mixed_bases"]:
        out.append("Warning: the candidates were gated against different bases (" + ", ".join(summary["bases"])
                   + "); compare rows of the same base only.")
    if summary["mixed_policies"]:
        out.append("Warning: the results were judged by different policies (" + ", ".join(summary["policies"])
                   + "); verdicts and marks follow each row's own policy.")
    for row in summary["rows"]:
        if row["error"]:
            out.append(f"{row['candidate']}: not gated (exit code {row['exit_code']}): {row['error']}")
        elif row["failed"]:
            out.append(f"{row['candidate']}: measurement failed: {', '.join(row['failed'])} (its figures show as "
                       f"{fmt.DASH})")
    return out


def levels(summary: dict) -> str:
    """The confidence levels of the intervals shown: "95%", or "95%, 99%" where results differ."""
    return ", ".join(fmt.level(level) for level in summary["interval_levels"]) or fmt.DASH


def legend(summary: dict, fail_mark: str = "✘", inconclusive_mark: str = "?") -> str:
    intervals = f"Intervals [CI]: {levels(summary)}. " if summary["interval_levels"] else ""
    return (f"{intervals}SRS changes in percentage points. A figure marked {fail_mark} failed its policy rule; one "
            f"marked {inconclusive_mark} lacks the evidence to pass it.")
