"""Every report format escapes what comes from inputs: a hostile name never breaks or injects into a report."""

from __future__ import annotations

import io
import re
from pathlib import Path
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from gate.report import escape
from gate.report.html import HtmlFormat
from gate.report.junit import JUnitFormat
from gate.report.markdown import MarkdownFormat
from gate.report.terminal import TerminalFormat
from tests.report_docs import HOSTILE, assert_html_is_inert, assert_markdown_is_inert, hostile, outcome


@pytest.mark.parametrize("name", HOSTILE)
def test_terminal_shows_a_hostile_name_as_written(name):
    doc = hostile(name)
    for width in (80, 120):
        console = Console(width=width, record=True, file=io.StringIO(), force_terminal=True, color_system="truecolor")
        console.print(TerminalFormat().render(doc))  # rich markup in a name must not raise
        shown = console.export_text()
        assert "\x1b" not in shown and "\x00" not in shown
        shown.encode("utf-8")
    if "\n" not in name and escape.clean(name) == name:
        assert name in shown


@pytest.mark.parametrize("name", HOSTILE)
def test_markdown_keeps_hostile_names_in_code_spans(name):
    assert_markdown_is_inert(MarkdownFormat().render(hostile(name)))


@pytest.mark.parametrize("name", HOSTILE)
def test_mermaid_chart_labels_cannot_break_out(name):
    text = MarkdownFormat().render(hostile(name))
    block = re.search(r"```mermaid\n(.*?)\n```", text, flags=re.S).group(1)
    x_axis = next(line for line in block.splitlines() if "x-axis" in line)
    labels = re.findall(r'"([^"]*)"', x_axis)
    assert len(labels) == 7 and "`" not in block and x_axis.count('"') == 14


@pytest.mark.parametrize("name", HOSTILE)
def test_junit_is_well_formed_xml(name):
    text = JUnitFormat().render(hostile(name))
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "testsuite"
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", text)


@pytest.mark.parametrize("name", HOSTILE)
def test_html_escapes_hostile_names(name):
    text = HtmlFormat().render(hostile(name))
    assert_html_is_inert(text)
    if name == "<script>alert(1)</script>":
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_a_failed_measurement_with_a_hostile_error_is_escaped_everywhere():
    doc = hostile("x")
    latency = outcome(doc, "latency")
    latency["error"], latency["result"] = "<b>boom</b> [/] `tick` \x1b[2J", None
    html = HtmlFormat().render(doc)
    assert "&lt;b&gt;boom&lt;/b&gt;" in html and "No chart: The latency measurement failed" in html
    markdown = MarkdownFormat().render(doc)
    assert "&lt;b>boom&lt;/b>" in markdown and "\x1b" not in markdown
    ET.fromstring(JUnitFormat().render(doc).encode("utf-8"))
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(TerminalFormat().render(doc))
    assert "<b>boom</b> [/] `tick`" in console.export_text()


def test_escape_helpers():
    assert escape.clean("a\ud800b\x1bc\x00") == "a\ufffdb\ufffdc\ufffd"
    assert escape.markdown_code("a`b") == "``a`b``" and escape.markdown_code("`x") == "`` `x ``"
    assert escape.markdown_code("a|b") == "`a\\|b`"
    assert escape.markdown_text("<b>*x*</b>") == "&lt;b>\\*x\\*&lt;/b>"
    # no link, image or autolink literal from prose: "](" and "://", "www.", "@" are escaped
    assert escape.markdown_text("![i](http://x.invalid/a.png)") == "!\\[i\\]\\(http\\://x.invalid/a.png)"
    assert escape.markdown_text("www.x.invalid a@b.invalid (ok)") == "www\\.x.invalid a\\@b.invalid (ok)"
    assert escape.html('<a href="x">') == "&lt;a href=&quot;x&quot;&gt;"
    assert escape.mermaid_label('a"b`c\nd') == "\"a'b'c d\""
    assert escape.terminal("evil[/]x").plain == "evil[/]x"
    assert escape.chart_label("$x^{$\n") == r"\$x^{\$ "


def test_a_name_that_is_not_utf8_reaches_the_document_as_replacement_characters():
    from gate.report.document import dumps, to_jsonable

    doc = to_jsonable({"path": Path("/tmp/bad-bytes-\udcff"), "names": ["x\ud800"], "k\udcff": 1})
    assert doc == {"path": "/tmp/bad-bytes-\ufffd", "names": ["x\ufffd"], "k\ufffd": 1}
    dumps(doc).encode("utf-8")
