"""The summary's charts across candidates, as inline SVG (matplotlib, drawn as report/charts.py draws).

Two charts: the SRS change per BBQ category with one point and interval per
candidate, against the policy threshold; and the perplexity ratio against the
actual sparsity, the paper's trade-off. Every candidate keeps one colour and
one marker in both, so they read in grey too. Drawing computes nothing: every
point is a figure of the summary document.
"""

from __future__ import annotations

from dataclasses import dataclass

from gate.report import escape
from gate.report.charts import THRESHOLD_COLOUR, ZERO_COLOUR, _draw, _iv, _panel

COLOURS = ("#1d4ed8", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d", "#4b5563")
MARKERS = ("s", "o", "D", "^", "v", "P", "X", "h")
_LOG_SPAN = 10  # a perplexity ratio axis spanning more than this factor is drawn on a log scale


@dataclass(frozen=True)
class SummaryChart:
    key: str
    title: str
    caption: str = ""
    panel: str = ""  # the inline SVG; "" when absent
    absent: str = ""


def summary_charts(summary: dict) -> list[SummaryChart]:
    return [srs_chart(summary), perplexity_chart(summary)]


def srs_svg(summary: dict) -> str | None:
    """The per-category SRS chart alone, for the file beside the Markdown summary; None without bias results."""
    return srs_chart(summary).panel or None


def style(index: int) -> dict:
    """The colour and marker of the index-th candidate, the same in every chart."""
    return {"color": COLOURS[index % len(COLOURS)], "marker": MARKERS[(index // len(COLOURS) + index) % len(MARKERS)],
            "linestyle": "none"}


def srs_chart(summary: dict) -> SummaryChart:
    title = "SRS change per BBQ category, every candidate"
    rows = [(i, row) for i, row in enumerate(summary["rows"]) if row["srs_change"]["value"] is not None]
    if not rows:
        return SummaryChart("summary-srs", title, absent="No candidate has a bias result.")
    groups = [*summary["categories"], "overall"]
    thresholds = summary["thresholds"]["srs_change"]

    def draw():
        figure, ax = _panel(1.4 + len(groups) * (0.22 + 0.07 * len(rows)), width=5.6)
        band = 0.8 / max(len(rows), 1)
        for slot, (i, row) in enumerate(rows):
            offset = 0.4 - band * (slot + 0.5)
            for y, group in zip(range(len(groups))[::-1], groups):
                cell = row["srs_change"] if group == "overall" else row["srs_change_by_category"].get(group)
                _point(ax, cell, y + offset, style(i), escape.chart_label(row["candidate"]) if y == len(groups) - 1 else None)
        ax.axvline(0, color=ZERO_COLOUR, linewidth=0.9)
        marks = [(y, thresholds[g] * 100) for y, g in zip(range(len(groups))[::-1], groups) if g in thresholds]
        for n, (y, x) in enumerate(marks):
            ax.plot([x, x], [y - 0.45, y + 0.45], color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.4,
                    label="policy threshold" if n == 0 else None)
        if len(groups) > 1:
            ax.axhline(0.5, color="#9ca3af", linewidth=0.8)
        ax.set_yticks(range(len(groups))[::-1], [escape.chart_label(g) for g in groups])
        ax.set_xlabel("SRS change, candidate − base (percentage points)")
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8.5)
        return [figure]

    return SummaryChart(
        "summary-srs", title, panel=_draw("summary-srs", draw)[0],
        caption=("Each point is one candidate's change in stereotype reliance against the base, per BBQ category "
                 "and overall, with its interval. Points right of 0 pick the stereotyped answer more often than the "
                 "base; a dashed red mark is the policy's threshold, which an interval must stay left of to pass."))


def perplexity_chart(summary: dict) -> SummaryChart:
    title = "Perplexity ratio against actual sparsity"
    rows = [(i, row) for i, row in enumerate(summary["rows"])
            if row["perplexity_ratio"]["value"] is not None and row["sparsity"]["value"] is not None]
    if not rows:
        return SummaryChart("summary-perplexity", title,
                            absent="No candidate has both a perplexity and a sparsity result.")
    limit = summary["thresholds"]["perplexity_ratio"]

    def draw():
        figure, ax = _panel(3.4, width=5.6)
        values = []
        for i, row in rows:
            cell, x = row["perplexity_ratio"], row["sparsity"]["value"] * 100
            bounds = _iv(cell["interval"])
            err = None if bounds is None else [[max(cell["value"] - bounds[0], 0)], [max(bounds[1] - cell["value"], 0)]]
            ax.errorbar([x], [cell["value"]], yerr=err, capsize=2.5, markersize=6, elinewidth=1.3,
                        label=escape.chart_label(row["candidate"]), **style(i))
            values += [cell["value"], *(bounds or ())]
        ax.axhline(1, color=ZERO_COLOUR, linewidth=0.9, label="no change")
        if limit is not None:
            ax.axhline(limit, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.4, label="policy limit")
            values.append(limit)
        if max(values) / max(min(values), 1e-9) > _LOG_SPAN:
            ax.set_yscale("log")
        ax.set_xlim(left=0)
        ax.set_xlabel("actual sparsity of the prunable weights (%)")
        ax.set_ylabel("perplexity, candidate / base")
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8.5)
        return [figure]

    return SummaryChart(
        "summary-perplexity", title, panel=_draw("summary-perplexity", draw)[0],
        caption=("Each point is one candidate: how many of its prunable weights are exact zeros, and its perplexity "
                 "relative to the base with the interval. Higher is worse; the dashed red line is the policy's limit. "
                 "Candidates to the right and low down prune more for less loss."))


def _point(ax, cell: dict | None, y: float, point_style: dict, label: str | None) -> None:
    """One change in percentage points at height y, with its interval as a horizontal bar."""
    if not cell or cell.get("value") is None:
        return
    x = cell["value"] * 100
    bounds = _iv(cell.get("interval"))
    err = None if bounds is None else [[max(x - bounds[0] * 100, 0)], [max(bounds[1] * 100 - x, 0)]]
    ax.errorbar([x], [y], xerr=err, capsize=2, markersize=5, elinewidth=1.2, label=label, **point_style)
