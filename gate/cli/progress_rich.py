"""A rich progress bar as the CLI's `Reporter`."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


BAR_COLUMNS = 84  # what the bar, the counts, the times and "eta at most" take of a line
MIN_STATUS = 16  # a status cut shorter than this says nothing: then the bar shows none


class _RichTask:
    def __init__(self, progress: Progress, task_id: int, description: str):
        self._progress, self._id, self._description = progress, task_id, description

    def advance(self, amount: float = 1) -> None:
        self._progress.advance(self._id, amount)

    def status(self, text: str) -> None:
        # A description is rich markup ("srs-per-category[age]" would be a style tag), and a long one squeezes the
        # bar off the line: escaped, and cut to the room the line has beside the bar, if any (log lines keep it).
        room = self._progress.console.width - len(self._description) - 3 - BAR_COLUMNS
        if room < MIN_STATUS or not text:
            self._progress.update(self._id, description=self._description)
            return
        shown = text if len(text) <= room else text[:room - 1] + "…"
        self._progress.update(self._id, description=f"{self._description} · {escape(shown)}")


class RichReporter:
    """One transient progress bar per task, with an ETA; shown on stderr."""

    def __init__(self, console: Console):
        self._console = console

    @contextmanager
    def task(self, description: str, total: float | None = None, time_limit: float | None = None,
             stops_early: bool = False) -> Iterator[_RichTask]:
        # rich's bar shows the items; a time budget's end is in the plan line said up front.
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn() if total and total < 1e6 else TextColumn(""),
                   TimeElapsedColumn(), TextColumn("eta at most" if stops_early else "eta"), TimeRemainingColumn()]
        with Progress(*columns, console=self._console, transient=True) as progress:
            yield _RichTask(progress, progress.add_task(description, total=total), description)

    def note(self, text: str) -> None:
        self._console.print(f"gate: {text}", markup=False, highlight=False)
