"""Progress as plain lines, for CI logs and other places without a terminal.

A line when a stage starts and ends, and every `interval` seconds in between
(stage, done/total, elapsed, an estimate of the time left), so a reviewer
reading the log can tell a slow run from a hung one. Lines come with progress
and, when a step of the work takes longer than the interval (a chunk of BBQ
items on a slow CPU), from a heartbeat thread, so the log is never silent
for longer than the interval.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

LOG_INTERVAL = 30.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class _LogTask:
    def __init__(self, reporter: "LogReporter", description: str, total: float | None, time_limit: float | None,
                 stops_early: bool = False):
        self._reporter, self._description, self._total, self._limit = reporter, description, total, time_limit
        self._stops_early = stops_early
        self.done, self.started = 0.0, reporter.clock()
        self._last = self.started
        self._said = ""  # `status`: where the stage stands, appended to its lines
        self._lock = threading.Lock()  # advance (the work) and the heartbeat print from two threads

    def advance(self, amount: float = 1) -> None:
        with self._lock:
            self.done += amount
        self.beat()

    def status(self, text: str) -> None:
        with self._lock:
            self._said = text

    def beat(self) -> None:
        """A status line, when the last one is an interval old."""
        with self._lock:
            now = self._reporter.clock()
            if now - self._last >= self._reporter.interval:
                self._last = now
                self._reporter.line(f"{self._description}: {self._status(now)}")

    def _status(self, now: float) -> str:
        elapsed = now - self.started
        if not self._total:
            return self._with_said(f"{_duration(elapsed)} elapsed")
        status = f"{self.done:,.0f}/{self._total:,.0f}, {_duration(elapsed)} elapsed"
        if 0 < self.done < self._total:
            left = elapsed * (self._total - self.done) / self.done
            if self._limit is not None:  # a time budget ends the stage first
                left = min(left, max(0.0, self._limit - elapsed))
            status += f", {'at most ' if self._stops_early else ''}about {_duration(left)} left"
        return self._with_said(status)

    def _with_said(self, line: str) -> str:
        return f"{line}; {self._said}" if self._said else line

    def finish(self) -> None:
        took = _duration(self._reporter.clock() - self.started)
        self._reporter.line(self._with_said(f"{self._description}: done in {took}"))


class LogReporter:
    """Plain progress lines on a stream (stderr in the CLI)."""

    def __init__(self, stream: TextIO, interval: float = LOG_INTERVAL, clock: Callable[[], float] = time.monotonic,
                 heartbeat: float | None = LOG_INTERVAL):
        """`heartbeat`: real seconds between the heartbeat thread's checks (None: lines come with progress only)."""
        self._stream, self.interval, self.clock, self._heartbeat = stream, interval, clock, heartbeat

    def line(self, text: str) -> None:
        print(f"gate: {text}", file=self._stream, flush=True)

    def note(self, text: str) -> None:
        self.line(text)

    @contextmanager
    def task(self, description: str, total: float | None = None, time_limit: float | None = None,
             stops_early: bool = False) -> Iterator[_LogTask]:
        to_do = f" ({'up to ' if stops_early else ''}{total:,.0f} to do)" if total else ""
        self.line(f"{description}: started{to_do}")
        task = _LogTask(self, description, total, time_limit, stops_early)
        stop = threading.Event()
        if self._heartbeat:
            def heartbeat() -> None:
                while not stop.wait(self._heartbeat):
                    task.beat()

            threading.Thread(target=heartbeat, name="gate-progress-heartbeat", daemon=True).start()
        try:
            yield task
        finally:
            stop.set()
        task.finish()
