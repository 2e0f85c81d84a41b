"""The summary across candidates (gate.summary/v1) on the demo's saved wanda50 result and variants derived from it:
the figures each row picks, the lot's exit code, missing and failed measurements, mixed bases, bad inputs,
every format's content, hostile names, and the HTML page in a browser."""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from gate.core.errors import ExitCode, InputError
from gate.report import escape
from gate.report.document import dumps
from gate.report.summary import SCHEMA, Unchecked, build_summary, load_documents
from gate.report.summary_charts import perplexity_chart, srs_chart, srs_svg
from gate.report.summary_html import SummaryHtmlFormat
from gate.report.summary_markdown import SummaryMarkdownFormat
from gate.report.summary_terminal import SummaryTerminalFormat
from tests.report.test_html_browser import BROWSER, chromium, console_messages
from tests.report_docs import HOSTILE, assert_html_is_inert, assert_markdown_is_inert, hostile, outcome, wanda50


def variant(spec: str, status: str = "FAIL", base: str | None = None) -> dict:
    """The wanda50 result under another candidate name, verdict and (optionally) base."""
    doc = copy.deepcopy(wanda50())
    doc["candidate"]["spec"], doc["verdict"]["status"] = spec, status
    if base is not None:
        doc["base"]["spec"] = base
    return doc


def without(doc: dict, name: str) -> dict:
    """`doc` as if `name` had not been in --metrics: no outcome, no rule on its metrics."""
    doc["outcomes"] = [o for o in doc["outcomes"] if o["name"] != name]
    doc["verdict"]["rules"] = [r for r in doc["verdict"]["rules"] if not r["metric"].startswith(name + ".")]
    return doc


def broken(doc: dict, name: str, kind: str = "measurement") -> dict:
    """`doc` with measurement `name` failed (kind "internal": a bug in gate)."""
    failed = outcome(doc, name)
    failed["error"], failed["error_kind"], failed["result"] = f"{name} broke", kind, None
    return doc


def terminal(summary: dict, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(SummaryTerminalFormat().render(summary))
    return console.export_text()


def test_a_row_holds_the_figures_of_its_document_with_their_intervals():
    summary = build_summary([wanda50()], sources=["wanda50.json"])
    assert summary["schema"] == SCHEMA and len(summary["rows"]) == 1
    row = summary["rows"][0]
    assert (row["candidate"], row["base"], row["verdict"], row["exit_code"]) == ("demo:wanda50", "demo", "FAIL", 1)
    assert row["sparsity"]["value"] == pytest.approx(0.32823, abs=1e-5) and row["declared_sparsity"] == 0.5
    assert row["sparsity"]["status"] == "fail" and row["sparsity"]["threshold"] == 0.01  # the declared-sparsity rule
    assert row["size_ratio"]["value"] == 1.0 and row["size_ratio"]["status"] == "pass"
    assert row["perplexity_ratio"]["value"] == pytest.approx(1.56072, abs=1e-5)
    assert row["perplexity_ratio"]["interval"]["low"] == pytest.approx(1.52555, abs=1e-5)
    assert row["perplexity_ratio"]["status"] == "fail" and row["perplexity_ratio"]["threshold"] == 1.1
    assert row["latency_ratio"]["value"] == pytest.approx(1.03762, abs=1e-5)
    assert row["latency_ratio"]["status"] == "inconclusive"
    assert row["srs_change"]["value"] == pytest.approx(-0.23984, abs=1e-5)
    assert row["srs_change"]["interval"]["high"] == pytest.approx(-0.15906, abs=1e-5)
    assert list(row["srs_change_by_category"]) == ["age", "disability_status", "nationality", "physical_appearance",
                                                   "religion", "sexual_orientation"]
    assert row["srs_change_by_category"]["nationality"]["value"] == pytest.approx(-0.29268, abs=1e-5)
    assert row["base_cached"] == ["perplexity", "bias"] and row["seconds"] == pytest.approx(262.45, abs=0.01)
    assert row["source"] == "wanda50.json" and row["failed"] == [] and row["error"] is None
    assert summary["thresholds"]["srs_change"]["overall"] == 0.05 and summary["interval_levels"] == [0.95]


@pytest.mark.parametrize("lot, worst, code", [
    (["PASS"], "PASS", ExitCode.PASS),
    (["PASS", "INCONCLUSIVE", "PASS"], "INCONCLUSIVE", ExitCode.INCONCLUSIVE),
    (["INCONCLUSIVE", "FAIL", "PASS"], "FAIL", ExitCode.FAIL),
    (["PASS", "FAIL", "input-error"], "ERROR", ExitCode.USAGE),
    (["FAIL", "input-error", "internal"], "FAIL", ExitCode.INTERNAL),
])
def test_the_lot_exits_with_its_worst_verdict(lot, worst, code):
    entries = []
    for i, status in enumerate(lot):
        if status == "input-error":
            entries.append(Unchecked(f"c{i}", "demo", "no such model", ExitCode.USAGE))
        elif status == "internal":  # a document whose measurement hit a bug: exit 4, whatever the verdict says
            entries.append(broken(variant(f"c{i}", "FAIL"), "bias", kind="internal"))
        else:
            entries.append(variant(f"c{i}", status))
    summary = build_summary(entries)
    assert summary["exit_code"] == int(code)
    assert summary["worst_verdict"] == worst
    assert sum(summary["counts"].values()) == len(lot)


def test_a_measurement_not_run_is_a_dash_and_its_columns_stay():
    summary = build_summary([variant("demo:wanda50"), without(variant("demo:nobias"), "bias")])
    row = summary["rows"][1]
    assert row["srs_change"]["value"] is None and row["srs_change_by_category"] == {}
    assert row["base_cached"] == ["perplexity"]
    markdown = SummaryMarkdownFormat().render(summary)
    line = next(line for line in markdown.splitlines() if line.startswith("| ❌ FAIL | `demo:nobias`"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[7] == "—"  # the SRS column of the main table
    category_line = [line for line in markdown.splitlines() if line.startswith("| `demo:nobias`")][-1]
    assert category_line.count("—") == 7  # six categories and overall
    assert "| `demo:wanda50` | -14.6 [-33.3, 4.0] |" in markdown


def test_a_failed_measurement_is_named_and_shows_as_a_dash():
    summary = build_summary([broken(variant("demo:x"), "perplexity")])
    row = summary["rows"][0]
    assert row["perplexity_ratio"]["value"] is None and row["failed"] == ["perplexity"]
    for text in (SummaryMarkdownFormat().render(summary), terminal(summary, 160)):
        assert "demo:x: measurement failed: perplexity" in text.replace("\\", "")
    assert perplexity_chart(summary).absent and not perplexity_chart(summary).panel


def test_different_bases_are_allowed_and_flagged_everywhere():
    summary = build_summary([variant("a"), variant("b", base="other-base")])
    assert summary["mixed_bases"] and summary["bases"] == ["demo", "other-base"]
    markdown = SummaryMarkdownFormat().render(summary)
    assert "⚠️ Warning: the candidates were gated against different bases" in markdown
    assert "| verdict | candidate | base |" in markdown and "| `other-base` |" in markdown
    assert "different bases" in SummaryHtmlFormat().render(summary)
    assert "different bases" in terminal(summary, 200)
    assert not build_summary([variant("a"), variant("b")])["mixed_bases"]


def test_documents_that_are_not_check_results_are_input_errors(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(wanda50()), encoding="utf-8")
    summary_doc = tmp_path / "summary.json"
    summary_doc.write_text(dumps(build_summary([wanda50()])), encoding="utf-8")
    no_verdict = tmp_path / "no-verdict.json"
    no_verdict.write_text(json.dumps({k: v for k, v in wanda50().items() if k != "verdict"}), encoding="utf-8")
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\x00not json")
    assert [d["candidate"]["spec"] for d in load_documents([good, good])] == ["demo:wanda50"] * 2
    for bad, says in ((summary_doc, "is not a gate result"), (no_verdict, "verdict"), (garbage, "garbage.json"),
                      (tmp_path / "missing.json", "no such result file")):
        with pytest.raises(InputError, match=says) as raised:
            load_documents([good, bad])
        assert raised.value.exit_code == ExitCode.USAGE
    with pytest.raises(InputError):
        load_documents([])


def test_markdown_has_the_table_the_mermaid_chart_and_the_categories():
    summary = build_summary([variant("demo:wanda50"), variant("demo:nm24", "PASS")])
    text = SummaryMarkdownFormat().render(summary)
    assert text.startswith("## gate summary: ❌ FAIL\n")
    assert "2 candidates: 1 PASS, 1 FAIL; the lot: FAIL (exit code 1)" in text
    assert ("| ❌ FAIL | `demo:wanda50` | 50.0% | ❌ 32.8% | 1.00 | ❌ 1.56 [1.53, 1.60] | ⚠️ 1.04 [0.95, 1.13] "
            "| -24.0 [-32.1, -15.9] | perplexity, bias | 262 s |") in text
    block = re.search(r"```mermaid\n(.*?)\n```", text, flags=re.S).group(1)
    assert 'x-axis ["demo:wanda50", "demo:nm24"]' in block and "bar [-24.0, -24.0]" in block
    assert "line [5.0, 5.0]" in block
    assert "| candidate | `age` | `disability_status` |" in text
    svg = srs_svg(summary)
    assert svg.startswith("<svg") and svg.count("<svg") == 1


def test_terminal_keeps_verdict_candidate_and_the_deciding_figures_at_80_columns():
    summary = build_summary([variant("demo:wanda50"), variant("demo:nm24", "INCONCLUSIVE")])
    wide, narrow = terminal(summary, 200), terminal(summary, 80)
    assert "262 s" in wide and "perplexity, bias" in wide and "50.0%" in wide
    for text in (wide, narrow):
        assert "✘ FAIL" in text and "? INCONCLUSIVE" in text and "the lot: FAIL (exit code 1)" in text
        assert "✘ 1.56 [1.53, 1.60]" in text and "-24.0 [-32.1, -15.9]" in text
        assert "physical_appearance" in text and "#2" in text
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert "262 s" not in narrow  # the least important columns go first


def test_html_page_has_the_verdict_both_charts_and_both_tables():
    summary = build_summary([variant("demo:wanda50"), variant("demo:nm24", "PASS")])
    page = SummaryHtmlFormat().render(summary)
    assert '<header class="verdict fail" id="verdict">' in page
    for key in ("chart-summary-srs", "chart-summary-perplexity"):
        section = re.search(rf'<section class="chart" id="{key}">(.*?)</section>', page, re.S)
        assert section and section.group(1).count("<svg") == 1 and "<figcaption>" in section.group(1)
    assert '<section id="candidates">' in page and '<section id="categories">' in page
    assert '<span class="mark fail">✘</span> 1.56 <span class="iv">[1.53, 1.60]</span>' in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/", "")


def test_charts_are_absent_with_a_reason_when_no_candidate_has_the_figures():
    summary = build_summary([without(without(variant("a"), "bias"), "perplexity")])
    assert srs_chart(summary).absent and perplexity_chart(summary).absent and srs_svg(summary) is None
    page = SummaryHtmlFormat().render(summary)
    assert page.count('class="absent"') == 2 and '<section id="categories">' not in page


def test_a_perplexity_ratio_hundreds_of_times_the_base_still_charts():
    wrecked = variant("demo:random10")
    for metric in outcome(wrecked, "perplexity")["metrics"]:
        if metric["key"] == "perplexity.ratio":
            metric["value"], metric["interval"] = 316.0, {"low": 290.0, "high": 350.0, "level": 0.95}
    summary = build_summary([wrecked, variant("demo:wanda50")])
    assert perplexity_chart(summary).panel.startswith("<svg")
    assert "316 [290, 350]" in SummaryMarkdownFormat().render(summary)


def test_the_json_document_reads_back():
    summary = build_summary([variant("a"), Unchecked("b", "demo", "cannot read b", ExitCode.USAGE)])
    again = json.loads(dumps(summary))
    assert again == summary and again["schema"] == "gate.summary/v1" and again["exit_code"] == 2
    assert again["rows"][1]["verdict"] == "ERROR" and again["rows"][1]["error"] == "cannot read b"


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_escaped_in_every_format(name):
    summary = build_summary([hostile(name), variant("plain", base=f"other {name}")])
    assert_markdown_is_inert(SummaryMarkdownFormat().render(summary))
    assert_html_is_inert(SummaryHtmlFormat().render(summary))
    shown = terminal(summary, 200)
    assert "\x1b" not in shown and "\x00" not in shown
    if "\n" not in name and escape.clean(name) == name:
        assert name in shown


@pytest.mark.skipif(BROWSER is None, reason="no Chromium found; install Debian's `chromium` package")
@pytest.mark.parametrize("size", ["1280,800", "390,844"])
def test_summary_page_opens_in_a_browser_and_fits_a_phone(tmp_path, size):
    from PIL import Image  # matplotlib's dependency

    summary = build_summary([variant("demo:wanda50"), variant("demo:nm24", "PASS"), variant("demo:magnitude50")])
    page = tmp_path / "summary.html"
    probe = ("<div id='probe' style='position:fixed;top:0;left:0;width:8px;height:8px;z-index:9'></div><script>"
             "addEventListener('load', () => { document.getElementById('probe').style.background = "
             "document.documentElement.scrollWidth <= innerWidth ? 'rgb(0,255,0)' : 'rgb(255,0,255)'; });</script>"
             "</body>")
    page.write_text(SummaryHtmlFormat().render(summary).replace("</body>", probe), encoding="utf-8")
    shot = tmp_path / "shot.png"
    run = chromium(tmp_path, page, f"--window-size={size}", f"--screenshot={shot}")
    assert shot.exists(), run.stderr[-2000:]
    assert not console_messages(run.stderr), console_messages(run.stderr)
    assert Image.open(shot).convert("RGB").getpixel((3, 3)) == (0, 255, 0), "the page scrolls sideways"


def test_summary_files_take_their_format_from_the_suffix():
    from gate.report.summary_files import format_of, summary_texts

    assert [format_of("--summary", Path(p)) for p in ("s.md", "S.HTML", "s.json")] == ["markdown", "html", "json"]
    with pytest.raises(InputError, match=r"--summary s\.txt: the suffix chooses the format; use \.md, \.html or \.json"):
        format_of("--summary", Path("s.txt"))
    summary = build_summary([variant("a"), variant("b", "PASS")])
    texts = summary_texts(summary, [("markdown", Path("o/s.md")), ("html", Path("o/s.html")), ("json", Path("s.json"))])
    assert sorted(map(str, texts)) == ["o/s.html", "o/s.md", "o/s.svg", "s.json"]
    assert texts[Path("o/s.svg")].startswith("<svg") and texts[Path("o/s.md")].startswith("## gate summary")
    assert json.loads(texts[Path("s.json")]) == summary
