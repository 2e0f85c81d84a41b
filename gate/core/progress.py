"""Progress reporting kept out of the measurements.

Measurements take a `Reporter` and call `reporter.task(...)`; the CLI passes a
rich progress bar, tests pass nothing (the `NULL_REPORTER`).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextlib import AbstractContextManager
from typing import Iterator, Protocol


class TaskHandle(Protocol):
    def advance(self, amount: float = 1) -> None: ...

    def status(self, text: str) -> None:
        """Where the stage stands, in a few words (what a run that stops once decided still waits on), shown
        with its progress until replaced."""
        ...


class Reporter(Protocol):
    def task(self, description: str, total: float | None = None, time_limit: float | None = None,
             stops_early: bool = False) -> AbstractContextManager[TaskHandle]:
        """A stage of `total` units of work; `time_limit`: seconds after which the stage ends whatever is done
        (a time budget), so the time left is never shown as more; `stops_early`: the stage may end before
        `total` (once its rules are decided), so the time left is an upper bound and is shown as one."""
        ...

    def note(self, text: str) -> None:
        """One line for the person watching (e.g. the plan and its estimated time), outside any task."""
        ...


class _NullTask:
    def advance(self, amount: float = 1) -> None:
        return None

    def status(self, text: str) -> None:
        return None


class NullReporter:
    """Reports nothing: the default for library use and tests."""

    @contextmanager
    def task(self, description: str, total: float | None = None, time_limit: float | None = None,
             stops_early: bool = False) -> Iterator[TaskHandle]:
        yield _NullTask()

    def note(self, text: str) -> None:
        return None


NULL_REPORTER = NullReporter()
