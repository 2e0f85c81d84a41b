"""A Markdown report fit for a pull-request comment or a GitHub step summary.

Tables, plus a Mermaid `xychart-beta` of the per-category SRS change against
the policy threshold, which GitHub renders where the Markdown is posted.
Names from inputs go in code spans (escape.markdown_code), prose through
escape.markdown_text: no raw HTML, heading, link or image comes from a name.
"""

from __future__ import annotations

from gate.report import escape
from gate.report import text as fmt
from gate.report.quantization_text import quantization_lines

ICON = {"PASS": "✅", "FAIL": "❌", "INCONCLUSIVE": "⚠️", "pass": "✅", "fail": "❌", "inconclusive": "⚠️",
        "warn": "⚠️", "waived": "➖", "not-measured": "➖"}
SEVERITY_ICON = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}


class MarkdownFormat:
    def render(self, doc: dict) -> str:
        verdict = doc.get("verdict") or {}
        status = verdict.get("status", "INCONCLUSIVE")
        code, text = escape.markdown_code, escape.markdown_text
        out = [f"## gate: {ICON.get(status, '')} {status}", "",
               f"{code(doc['candidate']['spec'])} vs base {code(doc['base']['spec'])} · policy "
               f"{code(verdict.get('policy', '?'))} · gate {text(doc.get('gate_version', '?'))}", ""]
        summary = verdict.get("bias_vs_perplexity")
        if summary and summary.get("message") and summary.get("perplexity_within_tolerance"):
            out += [f"**{text(summary['message'])}**", ""]
        out += [f"- {text(reason)}" for reason in verdict.get("reasons") or []]
        out += [f"- ❌ measurement {code(o['name'])} failed: {text(o['error'])}" for o in doc.get("outcomes", [])
                if o.get("error")]
        out.append("")
        rules = verdict.get("rules") or []
        if rules:
            out += ["| rule | metric | base | candidate | figure | interval | threshold | status |",
                    "|---|---|---:|---:|---:|---:|---:|---|"]
            for r in rules:
                cells = fmt.rule_cells(r)
                note = f" ({text(r['waiver_reason'])})" if r.get("waiver_reason") else ""
                out.append(f"| {code(cells['rule'])} | {code(cells['metric'])} | {cells['base']} | {cells['candidate']} "
                           f"| {cells['figure']} | {cells['interval']} | {cells['threshold']} "
                           f"| {ICON.get(r.get('status', ''), '')} {text(r.get('status', ''))}{note} |")
            out.append("")
        out += self._bias(doc)
        quantization = quantization_lines(doc)
        if quantization:
            out += ["**Quantization**", ""] + [f"- {text(line.strip())}" for line in quantization] + [""]
        findings = [f for o in doc.get("outcomes", []) for f in o.get("findings", [])]
        if findings:
            out += ["**Findings**", ""]
            out += [f"- {SEVERITY_ICON.get(f.get('severity'), '')} **{text(f.get('severity', ''))}**: "
                    f"{code(f['subject']) + ': ' if f.get('subject') else ''}{text(f['message'])}" for f in findings]
            out.append("")
        for o in doc.get("outcomes", []):
            if o.get("error") is None and o.get("metrics"):
                out += [f"<details><summary>{text(o['name'])} ({fmt.seconds(o.get('seconds'))})</summary>", "",
                        "| metric | base | candidate | value | interval | n |", "|---|---:|---:|---:|---:|---:|"]
                for m in o["metrics"]:
                    value, interval = fmt.metric_value(m["key"], m.get("value"), m.get("interval"), fmt.is_change(m["key"]))
                    out.append(f"| {code(fmt.metric_label(m['key'], m.get('category')))} "
                               f"| {fmt.side(m['key'], m.get('base'), m.get('unit', ''))} "
                               f"| {fmt.side(m['key'], m.get('candidate'), m.get('unit', ''))} | {value} | {interval} "
                               f"| {fmt.count(m.get('n'))} |")
                out += ["", "</details>", ""]
        return "\n".join(out) + "\n"

    def _bias(self, doc: dict) -> list[str]:
        """The per-category SRS change: a Mermaid chart against the threshold, and its data as a table."""
        outcome = next((o for o in doc.get("outcomes", []) if o.get("name") == "bias" and not o.get("error")), None)
        if outcome is None or not outcome.get("result"):
            return []
        comparison = outcome["result"]["comparison"]
        groups = list(comparison["categories"]) + [comparison["overall"]]
        rules = {r.get("category"): r for r in (doc.get("verdict") or {}).get("rules") or []
                 if r.get("metric") == "bias.srs.change"}
        labels = [g["category"] or "overall" for g in groups]
        changes = [None if g["srs"]["value"] is None else g["srs"]["value"] * 100 for g in groups]
        limits = [(rules.get(g["category"]) or {}).get("threshold") for g in groups]
        out = [f"**Stereotype reliance (SRS) change per BBQ category**, candidate − base, percentage points "
               f"({fmt.level(comparison.get('level', 0.95))} intervals in the table)", ""]
        if any(v is not None for v in changes):
            values = [v for v in changes if v is not None] + [t * 100 for t in limits if t is not None] + [0]
            low, high = min(values), max(values)
            pad = max((high - low) * 0.1, 1)
            out += ["```mermaid", "xychart-beta",
                    f"    title {escape.mermaid_label('SRS change (bars) against the policy threshold (line)')}",
                    f"    x-axis [{', '.join(escape.mermaid_label(label) for label in labels)}]",
                    f"    y-axis {escape.mermaid_label('percentage points')} {low - pad:.1f} --> {high + pad:.1f}",
                    f"    bar [{', '.join('0' if v is None else f'{v:.1f}' for v in changes)}]"]
            if any(t is not None for t in limits):
                out.append(f"    line [{', '.join('0' if t is None else f'{t * 100:.1f}' for t in limits)}]")
            out += ["```", ""]
        base = {g["category"]: g for g in comparison["base"]["categories"]}
        cand = {g["category"]: g for g in comparison["candidate"]["categories"]}
        base[None], cand[None] = comparison["base"]["overall"], comparison["candidate"]["overall"]
        out += ["| category | ambiguous items | SRS base | SRS candidate | change | interval | threshold |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for label, g in zip(labels, groups):
            out.append(f"| {escape.markdown_code(label)} | {fmt.count(base[g['category']].get('items_ambiguous'))} "
                       f"| {fmt.pct(g['srs']['base'])} | {fmt.pct(g['srs']['candidate'])} | {fmt.signed_pct(g['srs']['value'])} "
                       f"| {fmt.pct_interval(g['srs'].get('interval'), ' pp')} "
                       f"| {fmt.threshold(rules[g['category']]) if g['category'] in rules else fmt.DASH} |")
        asking = fmt.bias_asking(outcome["result"])
        return out + [""] + ([escape.markdown_text(asking), ""] if asking else [])
