"""A terminal table that drops its least important columns until it fits the width it is given.

A row keeps to one line where the terminal allows: columns never wrap a
figure, and on a narrow terminal the optional columns go, least important
first, before anything would wrap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console, ConsoleOptions, RenderResult
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from gate.report import escape


@dataclass(frozen=True)
class Column:
    header: str
    justify: str = "right"
    drop: int = 0  # 0: always shown; otherwise columns go in order of falling `drop`
    wrap: bool = False  # only a name column may fold onto a second line


@dataclass
class FittedTable:
    title: str
    columns: list[Column]
    rows: list[tuple[list, str | None]] = field(default_factory=list)  # cells, row style
    sections: set[int] = field(default_factory=set)  # row indices that start a new section
    show_header: bool = True
    narrow: FittedTable | None = None  # shown instead when dropping every optional column is not enough

    def add_row(self, *cells, style: str | None = None) -> None:
        self.rows.append(([c if c is not None else "—" for c in cells], style))

    def add_section(self) -> None:
        self.sections.add(len(self.rows))

    def build(self, keep: list[int]) -> Table:
        table = Table(title=escape.terminal(self.title), title_justify="left", show_header=self.show_header)
        for i in keep:
            c = self.columns[i]
            table.add_column(c.header, justify=c.justify, no_wrap=not c.wrap, overflow="fold")
        for index, (cells, style) in enumerate(self.rows):
            if index in self.sections:
                table.add_section()
            table.add_row(*(_text(cells[i]) for i in keep), style=style)
        return table

    def required_width(self, keep: list[int], fold: bool) -> int:
        """The width the kept columns need with figures on one line; with `fold`, a name on two lines at most."""
        total = 0
        for i in keep:
            column = self.columns[i]
            cells = [_text(cells[i]) for cells, _ in self.rows]
            widest = max([cell_len(column.header)] + [cell.cell_len for cell in cells])
            if column.wrap and fold:
                longest_word = max((cell_len(word) for cell in cells for word in cell.plain.split()), default=0)
                widest = max((widest + 1) // 2, longest_word, cell_len(column.header))
            total += widest
        return total + 3 * len(keep) + 1  # one space either side of each cell, a rule between and around them

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # Rows on one line if dropping columns allows it; else names folded onto two lines; else the narrow layout.
        for fold in (False, True):
            keep = list(range(len(self.columns)))
            droppable = sorted((i for i, c in enumerate(self.columns) if c.drop), key=lambda i: -self.columns[i].drop)
            while droppable and self.required_width(keep, fold) > options.max_width:
                keep.remove(droppable.pop(0))
            if self.required_width(keep, fold) <= options.max_width:
                yield self.build(keep)
                return
        yield self.narrow if self.narrow is not None else self.build(keep)


def _text(cell) -> Text:
    """Cells are Text or plain strings; plain strings are never parsed as rich markup."""
    return cell if isinstance(cell, Text) else escape.terminal(cell)
