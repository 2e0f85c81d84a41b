"""The summary as one self-contained HTML page, in the single report's style (report/html.py).

The lot's verdict first, the table across candidates, the SRS change per
category (chart and table), then perplexity against sparsity. No script, no
network; charts are inline SVG (summary_charts.py); everything from inputs
is escaped (escape.html). Wide tables scroll inside their box on a phone.
"""

from __future__ import annotations

from gate.report import escape
from gate.report import summary_text as cells
from gate.report import text as fmt
from gate.report.html import STATUS_CLASS, STYLE
from gate.report.summary_charts import SummaryChart, srs_chart, perplexity_chart

SUMMARY_STYLE = STYLE + """
table.summary th, table.summary td { white-space: nowrap; }
#categories table.summary td { white-space: normal; }
#categories table.summary td:first-child { white-space: nowrap; }
.iv { white-space: nowrap; }
.mark { font-weight: 700; }
.mark.fail { color: var(--fail); } .mark.inconclusive { color: var(--inconclusive); }
.st.error { background: var(--fail); }
.panels svg { max-width: 900px; flex-basis: 100%; }
"""
MARK = {"fail": "✘", "inconclusive": "?"}
_LEFT = ("verdict", "candidate", "base", "base cached")


class SummaryHtmlFormat:
    def render(self, summary: dict) -> str:
        title = f"gate summary: {summary['worst_verdict']} — {cells.headline(summary)}"
        body = [self._verdict(summary),
                self._table("candidates", "Candidates", cells.main_headers(summary),
                            [cells.main_cells(summary, row) for row in summary["rows"]], cells.legend(summary)),
                self._chart(srs_chart(summary))]
        if summary["categories"]:
            body.append(self._table("categories", "SRS change per BBQ category, percentage points [CI]",
                                    cells.category_headers(summary),
                                    [cells.category_cells(summary, row) for row in summary["rows"]], ""))
        body += [self._chart(perplexity_chart(summary)),
                 f"<footer>{escape.html('gate ' + summary['gate_version'] + ' · ' + summary['schema'])}</footer>"]
        return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                f"<title>{escape.html(title)}</title>\n<style>{SUMMARY_STYLE}</style>\n</head>\n<body>\n<main>\n"
                + "\n".join(body) + "\n</main>\n</body>\n</html>\n")

    def _verdict(self, summary: dict) -> str:
        worst = summary["worst_verdict"]
        css = STATUS_CLASS.get(worst, "fail")
        bases = ", ".join(f"<code>{escape.html(b)}</code>" for b in summary["bases"])
        policies = ", ".join(f"<code>{escape.html(p)}</code>" for p in summary["policies"]) or fmt.DASH
        out = [f'<header class="verdict {css}" id="verdict">',
               f'<h1><span class="badge {css}">{escape.html(fmt.status(worst))}</span> gate summary</h1>',
               f'<p class="subject">{escape.html(cells.headline(summary))}</p>',
               f'<p class="subject">against base {bases} · policy {policies}</p>']
        notes = cells.notes(summary)
        if notes:
            out.append("<ul>" + "".join(f"<li>{escape.html(note)}</li>" for note in notes) + "</ul>")
        return "\n".join(out + ["</header>"])

    def _table(self, key: str, title: str, headers: list[cells.Cell], rows: list[list[cells.Cell]], note: str) -> str:
        head = "".join(f'<th class="{_align(h)}">{_content(h)}</th>' for h in headers)
        body = "".join("<tr>" + "".join(f'<td class="{_align(h)}">{_content(c)}</td>'
                                        for h, c in zip(headers, row)) + "</tr>" for row in rows)
        return (f'<section id="{key}"><h2>{escape.html(title)}</h2><div class="scroll"><table class="summary">'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
                + (f'<p class="note">{escape.html(note)}</p>' if note else "") + "</section>")

    def _chart(self, chart: SummaryChart) -> str:
        key = escape.html(chart.key)
        if not chart.panel:
            return (f'<section class="chart absent-chart" id="chart-{key}"><h2>{escape.html(chart.title)}</h2>'
                    f'<p class="absent">No chart: {escape.html(chart.absent)}</p></section>')
        svg = chart.panel.replace("<svg ", f'<svg role="img" aria-label="{escape.html(chart.title)}" ', 1)
        return (f'<section class="chart" id="chart-{key}"><h2>{escape.html(chart.title)}</h2>'
                f'<figure><div class="panels">{svg}</div><figcaption>{escape.html(chart.caption)}</figcaption>'
                "</figure></section>")


def _align(header: cells.Cell) -> str:
    """Names and words to the left, figures (and the category columns) to the right."""
    return "" if header.kind == "figure" and header.text in _LEFT else "num"


def _content(cell: cells.Cell) -> str:
    if cell.kind == "verdict":
        css = STATUS_CLASS.get(cell.text, "error")
        return f'<span class="st {css}">{escape.html(fmt.status(cell.text))}</span>'
    if cell.kind == "name":
        return f"<code>{escape.html(cell.text)}</code>"
    mark = MARK.get(cell.status) if cell.text != fmt.DASH and cell.kind == "figure" else None
    value, bracket, interval = cell.text.partition(" [")
    shown = escape.html(value) + (f' <span class="iv">[{escape.html(interval)}</span>' if bracket and
                                  cell.kind == "figure" else escape.html(bracket + interval))
    return (f'<span class="mark {cell.status}">{mark}</span> ' if mark else "") + shown
