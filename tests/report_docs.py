"""Result documents for the report tests: the demo's saved wanda50 result, and hostile variants of it."""

from __future__ import annotations

import copy
import json
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
