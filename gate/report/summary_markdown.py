"""The summary as Markdown, for a pull-request comment or a CI job's step summary.

The table across candidates, a Mermaid chart of each candidate's overall SRS
change against the threshold (GitHub renders it), and the SRS change per BBQ
category as a table; the per-category chart goes beside the file as SVG, as
the single report's does. Names in code spans, prose escaped (escape.py).
"""

from __future__ import annotations

from gate.report import escape
from gate.report import summary_text as cells
from gate.report import text as fmt
from gate.report.markdown import ICON


class SummaryMarkdownFormat:
    def render(self, summary: dict) -> str:
        code, text = escape.markdown_code, escape.markdown_text
        worst = summary["worst_verdict"]
        bases = ", ".join(code(b) for b in summary["bases"])
        policies = ", ".join(code(p) for p in summary["policies"]) or fmt.DASH
        out = [f"## gate summary: {ICON.get(worst, '❌')} {worst}", "",
               f"{text(cells.headline(summary))} · base {bases} · policy {policies} · "
               f"gate {text(summary['gate_version'])}", ""]
        notes = [f"- {'⚠️ ' if note.startswith('Warning') else ''}{text(note)}" for note in cells.notes(summary)]
        out += [*notes, ""] if notes else []
        out += [*self._table(cells.main_headers(summary), [cells.main_cells(summary, r) for r in summary["rows"]]),
                "", text(cells.legend(summary, ICON["fail"], ICON["inconclusive"])), ""]
        out += self._mermaid(summary)
        if summary["categories"]:
            out += ["**SRS change per BBQ category**, candidate − base, percentage points [CI]", "",
                    *self._table(cells.category_headers(summary),
                                 [cells.category_cells(summary, r) for r in summary["rows"]]), ""]
        return "\n".join(out) + "\n"

    def _table(self, headers: list[cells.Cell], rows: list[list[cells.Cell]]) -> list[str]:
        align = ["---" if h.text in ("verdict", "candidate", "base", "base cached") else "---:" for h in headers]
        return (["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "|".join(align) + "|"]
                + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows])

    def _mermaid(self, summary: dict) -> list[str]:
        """Each candidate's overall SRS change (bars) against the policy threshold (line)."""
        rows = summary["rows"]
        changes = [None if r["srs_change"]["value"] is None else r["srs_change"]["value"] * 100 for r in rows]
        if all(v is None for v in changes):
            return []
        limit = summary["thresholds"]["srs_change"].get("overall")
        values = [v for v in changes if v is not None] + ([limit * 100] if limit is not None else []) + [0]
        low, high = min(values), max(values)
        pad = max((high - low) * 0.1, 1)
        out = ["```mermaid", "xychart-beta",
               f"    title {escape.mermaid_label('Overall SRS change per candidate (bars), policy threshold (line)')}",
               f"    x-axis [{', '.join(escape.mermaid_label(r['candidate']) for r in rows)}]",
               f"    y-axis {escape.mermaid_label('percentage points')} {low - pad:.1f} --> {high + pad:.1f}",
               f"    bar [{', '.join('0' if v is None else f'{v:.1f}' for v in changes)}]"]
        if limit is not None:
            out.append(f"    line [{', '.join(f'{limit * 100:.1f}' for _ in rows)}]")
        return out + ["```", ""]


def _cell(cell: cells.Cell) -> str:
    if cell.kind == "verdict":
        return f"{ICON.get(cell.text, '❌')} {escape.markdown_text(cell.text)}"
    if cell.kind == "name":
        return escape.markdown_code(cell.text)
    if cell.kind == "text":
        return escape.markdown_text(cell.text)
    mark = f"{ICON[cell.status]} " if cell.status in cells.MARKED and cell.text != fmt.DASH else ""
    return mark + cell.text
