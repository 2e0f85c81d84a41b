"""Result documents for the report tests: the demo's saved wanda50 result, and hostile variants of it."""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

WANDA50 = Path(__file__).parent / "data" / "wanda50-result.json"

# Names a checkpoint, a policy or a data set could carry, each aimed at one format's syntax.
HOSTILE = [
    "evil[/]x", "[bold red]boom[/]", "<script>alert(1)</script>", "a`b``c", "| pipe |", "# heading",
    "![img](http://x.example/y.png)", "[link](http://x.example)", "\x1b[31mred\x1b[0m", "nul\x00byte",
    "lone\ud800surrogate", "line\nbreak", "&amp; <b>bold</b>", "]]>", "\u202eRLO", '"quote%%',
    "*star* _under_ ~~s~~", "$x^{$ \\frac",
]


def wanda50() -> dict:
    return json.loads(WANDA50.read_text(encoding="utf-8"))


def outcome(doc: dict, name: str) -> dict:
    return next(o for o in doc["outcomes"] if o["name"] == name)


def hostile(name: str) -> dict:
    """The wanda50 result with `name` wherever an input's text lands: specs, paths, policy, rule ids,
    a BBQ category, the bias budget, a module kind, a layer, finding subjects and messages."""
    doc = copy.deepcopy(wanda50())
    doc["candidate"]["spec"], doc["base"]["spec"] = name, f"base {name}"
    doc["candidate"]["path"] = f"/models/{name}"
    verdict = doc["verdict"]
    verdict["policy"] = name
    verdict["reasons"] = [*verdict["reasons"], f"reason about {name}"]
    old_category = "age"
    for rule in verdict["rules"]:
        rule["rule_id"] = f"{name}-{rule['rule_id']}"
        rule["message"] = f"{rule['message']} {name}"
        if rule.get("category") == old_category:
            rule["category"] = name
    outcome(doc, "bias")["result"]["sequential"]["budget"] = name  # as the user gave --bias-budget
    comparison = outcome(doc, "bias")["result"]["comparison"]
    for group in comparison["categories"] + comparison["base"]["categories"] + comparison["candidate"]["categories"]:
        if group["category"] == old_category:
            group["category"] = name
    sparsity = outcome(doc, "sparsity")["result"]
    for side in (sparsity["candidate"], sparsity["base"]):
        side["by_kind"][0]["label"] = name
        side["by_layer"][0]["label"] = name
    sparsity["candidate"]["dense_kinds"] = [name]
    for o in doc["outcomes"]:
        for finding in o["findings"]:
            finding["subject"], finding["message"] = name, f"{finding['message']} ({name})"
    return doc


# --- what an escaped report looks like, in each format (shared by the report and the summary tests) -----------

CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def assert_markdown_is_inert(text: str) -> None:
    """Outside code spans and the Mermaid block: no raw HTML, link or image; one heading; whole table rows."""
    text.encode("utf-8")  # lone surrogates replaced
    assert "\x1b" not in text and "\x00" not in text
    outside = re.sub(r"```mermaid\n.*?\n```", "", CODE_SPAN.sub("", text), flags=re.S)
    outside = outside.replace("<details><summary>", "").replace("</summary>", "").replace("</details>", "")
    assert "<" not in outside, "raw HTML from a name"
    assert "](" not in outside.replace("\\](", "") and "![" not in outside.replace("!\\[", "")
    assert [line for line in text.splitlines() if line.startswith("#")] == [text.splitlines()[0]]
    for table in re.findall(r"(?:^\|.*\|$\n?)+", text, flags=re.M):  # every row of a table has its header's cells
        rows = table.strip().splitlines()
        assert {len(UNESCAPED_PIPE.findall(row)) for row in rows} == {len(UNESCAPED_PIPE.findall(rows[0]))}, table


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)


def assert_html_is_inert(page: str) -> None:
    """No element a name could have brought in, and no control characters."""
    page.encode("utf-8")
    parser = _Tags()
    parser.feed(page)
    assert "script" not in parser.tags and "b" not in parser.tags and "img" not in parser.tags
    assert "\x1b" not in page and "\x00" not in page
