"""A rich progress bar as the CLI's `Reporter`."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class _RichTask:
    def __init__(self, progress: Progress, task_id: int, description: str):
        self._progress, self._id, self._description = progress, task_id, description

    def advance(self, amount: float = 1) -> None:
        self._progress.advance(self._id, amount)

    def status(self, text: str) -> None:
        self._progress.update(self._id, description=f"{self._description} · {text}" if text else self._description)


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
