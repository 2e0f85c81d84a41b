"""A Markdown report fit for a pull-request comment or a GitHub step summary."""

from __future__ import annotations

from gate.formats import text as fmt

ICON = {"PASS": "✅", "FAIL": "❌", "INCONCLUSIVE": "⚠️", "pass": "✅", "fail": "❌", "inconclusive": "⚠️",
        "warn": "⚠️", "waived": "➖", "not-measured": "➖"}


class MarkdownFormat:
    def render(self, doc: dict) -> str:
        verdict = doc.get("verdict") or {}
        status = verdict.get("status", "INCONCLUSIVE")
        out = [f"## gate: {ICON.get(status, '')} {status}", "",
               f"`{doc['candidate']['spec']}` vs base `{doc['base']['spec']}` · policy `{verdict.get('policy', '?')}`"
               f" · gate {doc.get('gate_version', '?')}", ""]
        summary = verdict.get("bias_vs_perplexity")
        if summary and summary.get("message") and summary.get("perplexity_within_tolerance"):
            out += [f"**{summary['message']}**", ""]
        out += [f"- {reason}" for reason in verdict.get("reasons") or []]
        out += [f"- ❌ measurement `{o['name']}` failed: {o['error']}" for o in doc.get("outcomes", []) if o.get("error")]
        out.append("")
        rules = verdict.get("rules") or []
        if rules:
            out += ["| rule | metric | base | candidate | figure | interval | threshold | status |",
                    "|---|---|---:|---:|---:|---|---:|---|"]
            for r in rules:
                sign = "≤" if r.get("direction") == "max" else "≥"
                threshold = "—" if r.get("threshold") is None else f"{sign} {fmt.num(r['threshold'])}"
                note = f" ({r['waiver_reason']})" if r.get("waiver_reason") else ""
                figure = r.get("figure") or {}
                out.append(f"| {r['rule_id']} | {fmt.metric_label(r['metric'], r.get('category'))} | {fmt.num(figure.get('base'))} "
                           f"| {fmt.num(figure.get('candidate'))} | {fmt.num(r.get('value'))} | {fmt.interval(r.get('interval'))} "
                           f"| {threshold} | {ICON.get(r['status'], '')} {r['status']}{note} |")
            out.append("")
        findings = [f for o in doc.get("outcomes", []) for f in o.get("findings", [])]
        if findings:
            out += ["**Findings**", ""] + [f"- **{f['severity']}**: {f['subject'] + ': ' if f.get('subject') else ''}{f['message']}"
                                            for f in findings] + [""]
        for o in doc.get("outcomes", []):
            if o.get("error") is None and o.get("metrics"):
                out += [f"<details><summary>{o['name']} ({o.get('seconds', 0):.1f} s)</summary>", "",
                        "| metric | base | candidate | value | interval | n |", "|---|---:|---:|---:|---|---:|"]
                out += [f"| {fmt.metric_label(m['key'], m.get('category'))} | {fmt.num(m.get('base'))} | "
                        f"{fmt.num(m.get('candidate'))} | {fmt.num(m.get('value'))} | {fmt.interval(m.get('interval'))} | "
                        f"{fmt.num(m.get('n'))} |" for m in o["metrics"]]
                out += ["", "</details>", ""]
        return "\n".join(out) + "\n"
