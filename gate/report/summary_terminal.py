"""The summary in the terminal: the lot's verdict, the table across candidates, the SRS change per category.

Tables drop their least important columns on a narrow terminal (fitted.py);
the per-category table falls back to the changes without their intervals.
Everything from inputs goes in as rich Text, never as markup.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from gate.report import escape
from gate.report import summary_text as cells
from gate.report import text as fmt
from gate.report.fitted import Column, FittedTable
from gate.report.terminal import STATUS_STYLE

MARK = {"fail": ("✘ ", "red"), "inconclusive": ("? ", "yellow")}
# Least important first to go on a narrow terminal (higher `drop` goes first).
_DROP = {"seconds": 8, "declared": 7, "latency ratio [CI]": 6, "size ratio": 5, "base cached": 4, "sparsity": 3,
         "base": 2}


class SummaryTerminalFormat:
    def render(self, summary: dict) -> RenderableType:
        parts: list[RenderableType] = [self._verdict(summary), self._main(summary)]
        if summary["categories"]:
            parts.append(self._categories(summary))
        parts.append(Text(escape.clean(cells.legend(summary)), style="dim"))
        return Group(*parts)

    def _verdict(self, summary: dict) -> Panel:
        worst = summary["worst_verdict"]
        lines = Text()
        lines.append(fmt.status(worst), style=STATUS_STYLE.get(worst, "bold red"))
        lines.append("   ")
        lines.append_text(escape.terminal(cells.headline(summary)))
        lines.append("\nagainst base ", style="dim")
        lines.append_text(escape.terminal(", ".join(summary["bases"]), style="bold"))
        lines.append("   policy: ", style="dim")
        lines.append_text(escape.terminal(", ".join(summary["policies"]) or fmt.DASH, style="dim"))
        for note in cells.notes(summary):
            lines.append("\n• ")
            lines.append_text(escape.terminal(note, style="yellow" if note.startswith("Warning") else ""))
        return Panel(lines, title="gate summary", title_align="left", expand=False)

    def _main(self, summary: dict) -> FittedTable:
        headers = cells.main_headers(summary)
        table = FittedTable("Candidates", [Column("#")] + [Column(h.text, "left" if h.text in ("verdict", "candidate", "base",
                                                                               "base cached") else "right",
                                                  drop=_DROP.get(h.text, 0), wrap=h.text == "candidate")
                                           for h in headers])
        for i, row in enumerate(summary["rows"]):
            table.add_row(f"#{i + 1}", *(_text(c) for c in cells.main_cells(summary, row)))
        return table

    def _categories(self, summary: dict) -> FittedTable:
        """Categories down, candidates across by their number in the table above: names stay out of the headers."""
        rows = [cells.category_cells(summary, row)[1:] for row in summary["rows"]]
        labels = [h.text for h in cells.category_headers(summary)[1:]]
        columns = [Column("category", "left")] + [Column(f"#{i + 1}") for i in range(len(rows))]
        table = FittedTable("SRS change per BBQ category, pp [CI], candidates by number", columns)
        table.narrow = FittedTable("SRS change per BBQ category, pp (intervals in the wide view and the reports)",
                                   list(columns))
        for j, label in enumerate(labels):
            if j == len(labels) - 1:  # the last row is "overall"
                table.add_section()
                table.narrow.add_section()
            style = "bold" if j == len(labels) - 1 else None
            table.add_row(label, *(_text(row[j]) for row in rows), style=style)
            table.narrow.add_row(label, *(_text(_without_interval(row[j])) for row in rows), style=style)
        return table


def _without_interval(cell: cells.Cell) -> cells.Cell:
    return cells.Cell(cell.text.split(" [")[0], cell.status) if cell.kind == "figure" else cell


def _text(cell: cells.Cell) -> Text:
    if cell.kind == "verdict":
        return Text(fmt.status(cell.text), style=STATUS_STYLE.get(cell.text, "bold red"))
    mark, style = MARK.get(cell.status, ("", "")) if cell.text != fmt.DASH and cell.kind == "figure" else ("", "")
    text = Text(mark, style=style)
    text.append_text(escape.terminal(cell.text))
    return text
