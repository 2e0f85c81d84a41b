"""Progress as plain lines, for CI logs and other places without a terminal.

A line when a stage starts and ends, and at most every `interval` seconds in
between (stage, done/total, elapsed, an estimate of the time left), so a
reviewer reading the log can tell a slow run from a hung one.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

LOG_INTERVAL = 30.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class _LogTask:
    def __init__(self, reporter: "LogReporter", description: str, total: float | None):
        self._reporter, self._description, self._total = reporter, description, total
        self.done, self.started = 0.0, reporter.clock()
        self._last = self.started

    def advance(self, amount: float = 1) -> None:
        self.done += amount
        now = self._reporter.clock()
        if now - self._last >= self._reporter.interval:
            self._last = now
            self._reporter.line(f"{self._description}: {self._status(now)}")

    def _status(self, now: float) -> str:
        elapsed = now - self.started
        if not self._total:
            return f"{_duration(elapsed)} elapsed"
        status = f"{self.done:,.0f}/{self._total:,.0f}, {_duration(elapsed)} elapsed"
        if 0 < self.done < self._total:
            status += f", about {_duration(elapsed * (self._total - self.done) / self.done)} left"
        return status

    def finish(self) -> None:
        self._reporter.line(f"{self._description}: done in {_duration(self._reporter.clock() - self.started)}")


class LogReporter:
    """Plain progress lines on a stream (stderr in the CLI)."""

    def __init__(self, stream: TextIO, interval: float = LOG_INTERVAL, clock: Callable[[], float] = time.monotonic):
        self._stream, self.interval, self.clock = stream, interval, clock

    def line(self, text: str) -> None:
        print(f"gate: {text}", file=self._stream, flush=True)

    def note(self, text: str) -> None:
        self.line(text)

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[_LogTask]:
        self.line(f"{description}: started" + (f" ({total:,.0f} to do)" if total else ""))
        task = _LogTask(self, description, total)
        yield task
        task.finish()
