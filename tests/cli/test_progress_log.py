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


def test_a_stage_says_where_it_stands_on_its_lines_until_told_otherwise():
    now = [0.0]
    stream = io.StringIO()
    with LogReporter(stream, interval=30, clock=lambda: now[0]).task("BBQ", total=100, stops_early=True) as task:
        now[0] = 30.0
        task.status("still open after 24 items: srs-overall")
        task.advance(24)
        now[0] = 60.0
        task.advance(24)
        task.status("decided after 48 items")
    lines = stream.getvalue().splitlines()
    assert lines[1] == "gate: BBQ: 24/100, 30s elapsed, at most about 1m35s left; still open after 24 items: srs-overall"
    assert lines[2] == "gate: BBQ: 48/100, 1m00s elapsed, at most about 1m05s left; still open after 24 items: srs-overall"
    assert lines[3] == "gate: BBQ: done in 1m00s; decided after 48 items" and len(lines) == 4


def test_a_stage_without_a_total_reports_elapsed_time_only():
    stream = io.StringIO()
    with LogReporter(stream, interval=0, clock=lambda: 5.0).task("Loading the base with torch") as task:
        task.advance()
    assert stream.getvalue().splitlines()[1] == "gate: Loading the base with torch: 0s elapsed"


def test_a_time_budget_caps_the_time_said_to_be_left():
    now = [0.0]
    stream = io.StringIO()
    with LogReporter(stream, interval=30, clock=lambda: now[0]).task("BBQ", total=10_000, time_limit=180) as task:
        now[0] = 40.0
        task.advance(48)  # at this pace the pool would take over 2 h; the budget ends the stage in 140 s
    assert stream.getvalue().splitlines()[1] == "gate: BBQ: 48/10,000, 40s elapsed, about 2m20s left"


def test_a_stage_that_may_stop_once_decided_calls_its_total_and_time_left_upper_bounds():
    now = [0.0]
    stream = io.StringIO()
    with LogReporter(stream, interval=30, clock=lambda: now[0]).task("perplexity", total=64, stops_early=True) as task:
        now[0] = 30.0
        task.advance(8)  # a run judged after 8 windows may stop there: the other 56 are the most it can take
    lines = stream.getvalue().splitlines()
    assert lines[0] == "gate: perplexity: started (up to 64 to do)"
    assert lines[1] == "gate: perplexity: 8/64, 30s elapsed, at most about 3m30s left"


def test_the_heartbeat_prints_while_a_slow_step_makes_no_progress():
    import threading

    stream = io.StringIO()
    now = [0.0]
    with LogReporter(stream, interval=30, clock=lambda: now[0], heartbeat=0.01).task("BBQ", total=100) as task:
        now[0] = 31.0  # one step of the work outlasts the interval: no advance, yet a line
        beats = threading.Event()
        for _ in range(500):
            if len(stream.getvalue().splitlines()) >= 2:
                beats.set()
                break
            threading.Event().wait(0.01)
        assert beats.is_set()
        task.advance(10)
    lines = stream.getvalue().splitlines()
    assert lines[1] == "gate: BBQ: 0/100, 31s elapsed"
    assert lines[-1] == "gate: BBQ: done in 31s" and len(lines) == 3  # the advance came within the interval
