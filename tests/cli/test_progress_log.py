"""Plain progress lines for logs: a line per stage change, and at most one per interval in between."""

from __future__ import annotations

import io

from gate.cli.progress_log import LogReporter


def test_a_log_line_at_start_every_interval_and_end_with_an_estimate_of_what_is_left():
    now = [0.0]
    stream = io.StringIO()
    reporter = LogReporter(stream, interval=30, clock=lambda: now[0])
    with reporter.task("BBQ (letters)", total=100) as task:
        for _ in range(50):
            now[0] += 1.5  # 75 s for 50 items
            task.advance()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "gate: BBQ (letters): started (100 to do)"
    assert lines[1] == "gate: BBQ (letters): 20/100, 30s elapsed, about 2m00s left"
    assert lines[2] == "gate: BBQ (letters): 40/100, 1m00s elapsed, about 1m30s left"
    assert lines[3] == "gate: BBQ (letters): done in 1m15s" and len(lines) == 4


def test_a_stage_without_a_total_reports_elapsed_time_only():
    stream = io.StringIO()
    with LogReporter(stream, interval=0, clock=lambda: 5.0).task("Loading the base with torch") as task:
        task.advance()
    assert stream.getvalue().splitlines()[1] == "gate: Loading the base with torch: 0s elapsed"
