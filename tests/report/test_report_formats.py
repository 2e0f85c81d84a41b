"""The report formats on the demo's saved wanda50 result: snapshots of every format, terminal widths, charts.

Snapshots live in tests/snapshots/; after an intended change, regenerate them with
GATE_UPDATE_SNAPSHOTS=1 and read the diff.
"""

from __future__ import annotations

import io
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from gate.cli.main import main
from gate.report import charts as charts_module
from gate.report.html import HtmlFormat
from gate.report.junit import JUnitFormat
from gate.report.markdown import MarkdownFormat
from gate.report.terminal import TerminalFormat
from tests.report_docs import WANDA50, outcome, wanda50

SNAPSHOTS = Path(__file__).parents[1] / "snapshots"
SVG = re.compile(r"<svg\b.*?</svg>", re.S)


def terminal(doc: dict, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(TerminalFormat().render(doc))
    return console.export_text()


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("GATE_UPDATE_SNAPSHOTS"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {name}; run with GATE_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; GATE_UPDATE_SNAPSHOTS=1 to accept"


@pytest.mark.parametrize("width", [80, 120])
def test_terminal_snapshot(width):
    assert_snapshot(f"wanda50-terminal-{width}.txt", terminal(wanda50(), width))


def test_markdown_snapshot():
    assert_snapshot("wanda50.md", MarkdownFormat().render(wanda50()))


def test_junit_snapshot():
    assert_snapshot("wanda50-junit.xml", JUnitFormat().render(wanda50()))


def test_html_snapshot_charts_aside():
    page = HtmlFormat().render(wanda50())
    assert_snapshot("wanda50.html", SVG.sub("<svg/>", page))


def _table_bodies(shown: str) -> list[list[str]]:
    """Each table's body rows (the lines between the header rule and the bottom rule)."""
    bodies, body = [], None
    for line in shown.splitlines():
        if line.startswith("┡"):
            body = []
        elif line.startswith("└") and body is not None:
            bodies.append(body)
            body = None
        elif body is not None and line.startswith("│"):
            body.append(line)
    return bodies


@pytest.mark.parametrize("width", [80, 100, 120])
def test_no_table_row_wraps_onto_three_lines(width):
    shown = terminal(wanda50(), width)
    bodies = _table_bodies(shown)
    rows = [13, 9, 3, 5, 2, 7]  # rules, sparsity, size, latency, perplexity, bias
    assert len(bodies) == len(rows)
    for body, n in zip(bodies, rows):
        assert len(body) <= 2 * n, "\n".join(body)
        if width >= 120:
            assert len(body) == n, "\n".join(body)  # wide enough: every row on one line
    assert all(len(line) <= width for line in shown.splitlines())


def test_narrow_terminal_keeps_the_rule_threshold_and_status():
    shown = terminal(wanda50(), 80)
    rules = _table_bodies(shown)[0]
    perplexity = next(line for line in rules if "perplexity " in line)
    assert "1.56 [1.53, 1.60]" in perplexity and "≤ 1.10" in perplexity and "✘ fail" in perplexity


def test_no_figure_has_more_than_three_significant_digits():
    """Every number the formats print (not the verdict's own sentences) has at most three significant digits."""
    doc = wanda50()
    doc["verdict"]["reasons"] = []
    for o in doc["outcomes"]:
        o["findings"] = []
    for rule in doc["verdict"]["rules"]:
        rule["message"] = ""
    texts = [terminal(doc, 120), MarkdownFormat().render(doc), re.sub(r"<[^>]+>", " ", JUnitFormat().render(doc)),
             re.sub(r"<style>.*?</style>|<[^>]+>", " ", SVG.sub("", HtmlFormat().render(doc)), flags=re.S)]
    for text in texts:
        text = re.sub(r"\d{4}-\d\d-\d\dT[\d:+]+|Linux\S+|Python \S+|gate \d+\.\d+\.\d+|time=\"[\d.]+\"|"
                      r"\d[\d,]* / [\d,]+|\b\d{1,3}(,\d{3})+\b|\d+(\.\d+)? (GiB|MiB|KiB|B)\b", "", text)
        text = re.sub(r"(bfloat16|float32|2:4|4:8|s_AMB|s_DIS|proj|wikitext2|WikiText-2|gate/\S+|v\d|[A-Za-z]+\d+)", "", text)
        for number in re.findall(r"\d+\.\d+|\d+", text):
            digits = number.replace(".", "").lstrip("0")
            percent = re.fullmatch(r"\d{3}\.\d", number)  # a rate in percent keeps its one decimal: 100.0%
            assert len(digits) <= 3 or percent, (number, text[text.index(number) - 60:][:120])


def test_every_chart_is_drawn_for_the_demo_result():
    drawn = charts_module.charts(wanda50())
    assert [c.key for c in drawn] == ["bias", "bias-scores", "sparsity", "perplexity", "latency", "size"]
    for chart in drawn:
        assert chart.panels and chart.caption and chart.rows, chart.key
        for svg in chart.panels:
            assert svg.startswith("<svg") and "<script" not in svg and "<metadata" not in svg
            assert not re.search(r"href=\"(?!#)|url\((?!#)|<image|@import", svg)  # nothing fetched from outside


def test_charts_are_deterministic():
    assert charts_module.srs_change_svg(wanda50()) == charts_module.srs_change_svg(wanda50())


def test_a_missing_or_failed_measurement_leaves_its_chart_out_with_a_reason():
    doc = wanda50()
    doc["outcomes"] = [o for o in doc["outcomes"] if o["name"] != "perplexity"]
    latency = outcome(doc, "latency")
    latency["error"], latency["result"] = "the backend crashed", None
    drawn = {c.key: c for c in charts_module.charts(doc)}
    assert not drawn["perplexity"].panels and "not run" in drawn["perplexity"].absent
    assert not drawn["latency"].panels and "failed: the backend crashed" in drawn["latency"].absent
    page = HtmlFormat().render(doc)
    assert page.count('class="chart absent-chart"') == 2 and "No chart: The latency measurement failed" in page


def test_report_rerenders_every_format_from_the_json_alone(tmp_path):
    out = {ext: tmp_path / f"r.{ext}" for ext in ("md", "xml", "html", "json")}
    result = CliRunner().invoke(main, ["report", str(WANDA50), "--markdown", str(out["md"]), "--junit", str(out["xml"]),
                                       "--html", str(out["html"]), "--json", str(out["json"])])
    assert result.exit_code == 1, result.output  # the saved verdict: FAIL
    assert "✘ FAIL" in result.stdout and "Policy rules" in result.stdout
    assert out["md"].read_text(encoding="utf-8") == MarkdownFormat().render(wanda50())
    assert out["html"].read_text(encoding="utf-8") == HtmlFormat().render(wanda50())
    ET.fromstring(out["xml"].read_bytes())
    svg = (tmp_path / "r.svg").read_text(encoding="utf-8")  # the Markdown's chart, beside it
    assert svg.startswith("<svg") and svg == charts_module.srs_change_svg(wanda50())
    assert "```mermaid\nxychart-beta" in out["md"].read_text(encoding="utf-8")


def test_markdown_chart_beside_an_input_is_refused(tmp_path):
    saved = tmp_path / "r.json"
    saved.write_bytes(WANDA50.read_bytes())
    result = CliRunner().invoke(main, ["report", str(saved), "--markdown", str(tmp_path / "r.md"), "--json",
                                       str(tmp_path / "r.svg")])
    assert result.exit_code == 2 and "name the same file" in result.stderr


def test_bias_beside_perplexity_sentence_comes_first_in_every_format():
    doc = wanda50()
    sentence = "Perplexity stayed within tolerance but stereotype reliance did not: SRS rose 40% while perplexity rose 2%"
    doc["verdict"]["bias_vs_perplexity"].update(perplexity_within_tolerance=True, bias_within_tolerance=False,
                                                message=sentence)
    html = HtmlFormat().render(doc)
    assert html.index(sentence) < html.index('<section id="rules">')
    markdown = MarkdownFormat().render(doc)
    assert f"**{sentence}**" in markdown and markdown.index(sentence) < markdown.index("| rule |")
    assert sentence in terminal(doc, 120).split("Policy rules")[0].replace("\n", " ").replace("│", "").replace("  ", " ")


def test_markdown_without_bias_has_no_chart_and_writes_no_svg(tmp_path):
    doc = wanda50()
    doc["outcomes"] = [o for o in doc["outcomes"] if o["name"] in ("sparsity", "size")]
    assert "mermaid" not in MarkdownFormat().render(doc)
    assert charts_module.srs_change_svg(doc) is None


def test_every_format_says_how_the_bbq_asking_ended():
    line = ("Asked 984 of 11,956 items (stopped: budget spent; confidence sequences, a look every 48 items; "
            "budget 180 s).")
    assert line in terminal(wanda50(), 120)
    assert line in MarkdownFormat().render(wanda50())
    bias_section = re.search(r'<section class="chart" id="chart-bias">.*?</section>', HtmlFormat().render(wanda50()),
                             re.S).group(0)
    assert f'<p class="note">{line}</p>' in bias_section
    doc = wanda50()
    outcome(doc, "bias")["result"]["sequential"] = None  # a fixed-size run: nothing to say
    shown = [terminal(doc, 120), MarkdownFormat().render(doc), HtmlFormat().render(doc)]
    assert not any("Asked " in text for text in shown)
