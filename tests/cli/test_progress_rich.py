"""The terminal's progress bars: a stage's status shows beside its description."""

from __future__ import annotations

import io

from rich.console import Console

from gate.cli.progress_rich import RichReporter


def test_a_status_shows_on_the_bar():
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=160, color_system=None)
    with RichReporter(console).task("BBQ (letters)", total=100, stops_early=True) as task:
        task.advance(24)
        task.status("still open after 24 items: srs-overall")
        task.advance(24)
        task.status("decided after 48 items")
    # The bar is drawn once more as it closes (then cleared: it is transient), with the last status.
    shown = stream.getvalue()
    assert "BBQ (letters) · decided after 48 items" in shown and "48/100" in shown and "eta at most" in shown
