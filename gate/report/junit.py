"""JUnit XML: one test case per policy rule, so CI systems list what failed.

Text from inputs passes through escape.xml: ElementTree escapes markup but
would write characters XML 1.0 forbids, which breaks every JUnit parser.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gate.report import escape
from gate.report import text as fmt

SKIPPED = ("waived", "not-measured", "inconclusive", "warn")


class JUnitFormat:
    def render(self, doc: dict) -> str:
        x = escape.xml
        verdict = doc.get("verdict") or {}
        rules = verdict.get("rules") or []
        outcomes = doc.get("outcomes", [])
        suite = ET.Element("testsuite", name=x(f"gate {doc['candidate']['spec']} vs {doc['base']['spec']}"),
                           tests=str(len(rules) + len(outcomes)),
                           failures=str(sum(r["status"] == "fail" for r in rules)),
                           errors=str(sum(bool(o.get("error")) for o in outcomes)),
                           skipped=str(sum(r["status"] in SKIPPED for r in rules)),
                           time=f"{doc.get('seconds') or 0:.3f}")
        for o in outcomes:
            case = ET.SubElement(suite, "testcase", classname="gate.measurement", name=x(o["name"]),
                                 time=f"{o.get('seconds') or 0:.3f}")
            if o.get("error"):
                ET.SubElement(case, "error", message=x(o["error"]), type=x(o.get("error_kind") or "measurement"))
            for f in o.get("findings", []):
                if f["severity"] == "error":
                    subject = f"{f['subject']}: " if f.get("subject") else ""
                    ET.SubElement(case, "failure", message=x(subject + f["message"]), type=x(f["code"]))
        for r in rules:
            cells = fmt.rule_cells(r)
            case = ET.SubElement(suite, "testcase", classname=x(f"gate.policy.{verdict.get('policy', 'policy')}"),
                                 name=x(cells["rule"]))
            message = x(r.get("message", ""))
            if r["status"] == "fail":
                failure = ET.SubElement(case, "failure", message=message, type=x(r["metric"]))
                failure.text = x(f"{cells['figure']} {cells['interval']}, threshold {cells['threshold']}")
            elif r["status"] != "pass":
                ET.SubElement(case, "skipped", message=x(f"{r['status']}: {r.get('waiver_reason') or r.get('message', '')}"))
        ET.indent(suite)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
