"""The terminal's progress bars: a stage's status shows beside its description."""

from __future__ import annotations

import io

import pytest

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



@pytest.mark.parametrize("width", [160, 80])
def test_a_long_status_is_shown_literally_as_far_as_the_line_has_room_beside_the_bar(width):
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=width, color_system=None)
    with RichReporter(console).task("BBQ (letters)", total=7476, stops_early=True) as task:
        task.advance(24)
        task.status("still open after 72 items: srs-per-category[age], srs-per-category[disability_status] and 5 more")
    last = stream.getvalue().split("\r")[-2]  # the bar as drawn on closing
    assert "24/7476" in last and "eta at most" in last, last  # the counts and times keep their place
    if width == 160:  # brackets shown as typed, not taken for rich markup; the rest cut
        assert "BBQ (letters) · still open after 72 items: srs-per-category[age], srs-per-c…" in last, last
    else:  # no room beside the bar: the description alone
        assert "BBQ (letters) " in last and "·" not in last, last
