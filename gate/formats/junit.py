"""JUnit XML: one test case per policy rule, so CI systems list what failed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gate.formats import text as fmt


class JUnitFormat:
    def render(self, doc: dict) -> str:
        verdict = doc.get("verdict") or {}
        rules = verdict.get("rules") or []
        errors = [o for o in doc.get("outcomes", []) if o.get("error")]
        suite = ET.Element("testsuite", name=f"gate {doc['candidate']['spec']} vs {doc['base']['spec']}",
                           tests=str(len(rules) + len(doc.get("outcomes", []))),
                           failures=str(sum(r["status"] == "fail" for r in rules)),
                           errors=str(len(errors)),
                           skipped=str(sum(r["status"] in ("waived", "not-measured", "inconclusive", "warn") for r in rules)),
                           time=f"{doc.get('seconds', 0):.3f}")
        for o in doc.get("outcomes", []):
            case = ET.SubElement(suite, "testcase", classname="gate.measurement", name=o["name"], time=f"{o.get('seconds', 0):.3f}")
            if o.get("error"):
                ET.SubElement(case, "error", message=o["error"], type=o.get("error_kind") or "measurement")
            for f in o.get("findings", []):
                if f["severity"] == "error":
                    ET.SubElement(case, "failure", message=f["message"], type=f["code"])
        for r in rules:
            name = fmt.metric_label(r["rule_id"], r.get("category"))
            case = ET.SubElement(suite, "testcase", classname=f"gate.policy.{verdict.get('policy', 'policy')}", name=name)
            message = r.get("message", "")
            if r["status"] == "fail":
                ET.SubElement(case, "failure", message=message, type=r["metric"])
            elif r["status"] != "pass":
                ET.SubElement(case, "skipped", message=f"{r['status']}: {r.get('waiver_reason') or message}")
        ET.indent(suite)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
