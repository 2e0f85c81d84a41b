"""The HTML report opened in a real browser: headless Chromium loads it without console errors, shows the
verdict and every chart, fits a phone's width without scrolling sideways, and takes screenshots.

Skipped where no Chromium is installed (`apt-get install chromium`; .ci/run installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gate.report.charts import charts
from gate.report.html import HtmlFormat
from tests.report_docs import wanda50

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((path for path in map(shutil.which, BROWSERS) if path), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium found (tried: " + ", ".join(BROWSERS) +
                                "); install Debian's `chromium` package to run the browser checks")

# Written into a copy of the page only (the report itself carries no script): once laid out, a fixed square in
# the top-left corner turns green if the page and its rules table fit the window's width, magenta if either
# scrolls sideways.
PROBE = ("<div id='probe' style='position:fixed;top:0;left:0;width:8px;height:8px;z-index:9'></div><script>"
         "addEventListener('load', () => { const fits = document.documentElement.scrollWidth <= innerWidth && "
         "[...document.querySelectorAll('#rules .scroll')].every(e => e.scrollWidth <= e.clientWidth); "
         "document.getElementById('probe').style.background = fits ? 'rgb(0,255,0)' : 'rgb(255,0,255)'; });"
         "</script></body>")


def chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0", *args, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(HtmlFormat().render(wanda50()), encoding="utf-8")
    return path


def test_page_loads_with_verdict_and_every_chart_and_no_console_errors(page, tmp_path):
    run = chromium(tmp_path, page, "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    assert not console_messages(run.stderr), console_messages(run.stderr)
    verdict = re.search(r'<header class="verdict fail" id="verdict">(.*?)</header>', dom, re.S)
    assert verdict and "FAIL" in verdict.group(1) and "Deciding rules" in verdict.group(1)
    assert '<section id="rules">' in dom and dom.count("<tr") >= 13
    for chart in charts(wanda50()):
        section = re.search(rf'<section class="chart" id="chart-{chart.key}">(.*?)</section>', dom, re.S)
        assert section, chart.key
        assert section.group(1).count("<svg") == len(chart.panels) and "<figcaption>" in section.group(1)


@pytest.mark.parametrize("size", ["1280,800", "390,844"])
def test_page_fits_the_window_without_sideways_scrolling(page, tmp_path, size):
    from PIL import Image  # matplotlib's dependency

    probe, shot = tmp_path / "probe.html", tmp_path / "probe.png"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE), encoding="utf-8")
    run = chromium(tmp_path, probe, f"--window-size={size}", f"--screenshot={shot}")
    assert shot.exists(), run.stderr[-2000:]
    assert Image.open(shot).convert("RGB").getpixel((3, 3)) == (0, 255, 0), "the page scrolls sideways"


@pytest.mark.parametrize("size", ["1280,800", "390,844"])
def test_screenshot(page, tmp_path, size):
    from PIL import Image  # matplotlib's dependency

    shot = tmp_path / "shot.png"
    run = chromium(tmp_path, page, f"--window-size={size}", f"--screenshot={shot}")
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    assert not console_messages(run.stderr)
    image = Image.open(shot).convert("RGB")
    assert image.size == tuple(map(int, size.split(",")))
    # The verdict box is drawn: the failing verdict's red badge is somewhere in the first screen.
    assert any(r > 150 and g < 60 and b < 60 for _, (r, g, b) in image.getcolors(maxcolors=1 << 24))
