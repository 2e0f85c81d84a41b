"""A self-contained HTML page: the verdict first, the rules, then one chart per measurement.

One file, no script, no network: the charts are inline SVG (charts.py), the
style sheet is inline, fonts come from the system. Readable on a laptop and
on a phone: the rules table becomes one card per rule on a narrow screen.
Everything from inputs is escaped (escape.html).
"""

from __future__ import annotations

from gate.report import escape
from gate.report import text as fmt
from gate.report.charts import Chart, charts
from gate.report.quantization_text import quantization_lines

STATUS_CLASS = {"PASS": "pass", "FAIL": "fail", "INCONCLUSIVE": "inconclusive"}
SEVERITY_ICON = {"error": "✘", "warning": "!", "info": "·"}
RULE_COLUMNS = ("rule", "metric", "base", "candidate", "figure", "interval", "threshold", "status")

STYLE = """
:root { --fg: #111827; --muted: #4b5563; --line: #e5e7eb; --bg: #ffffff; --panel: #f9fafb;
  --pass: #15803d; --pass-bg: #ecfdf3; --fail: #b91c1c; --fail-bg: #fef2f2;
  --inconclusive: #a16207; --inconclusive-bg: #fefce8; --dim: #6b7280; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: var(--bg); line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 16px 40px; }
h1 { font-size: 1.7rem; margin: 0; display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
h2 { font-size: 1.15rem; margin: 2rem 0 .6rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: .92em;
  overflow-wrap: anywhere; }
.verdict { border: 2px solid; border-radius: 10px; padding: 14px 16px; }
.verdict.pass { border-color: var(--pass); background: var(--pass-bg); }
.verdict.fail { border-color: var(--fail); background: var(--fail-bg); }
.verdict.inconclusive { border-color: var(--inconclusive); background: var(--inconclusive-bg); }
.verdict .subject { margin: .35rem 0 0; color: var(--muted); overflow-wrap: anywhere; }
.verdict .headline { font-weight: 600; margin: .7rem 0 0; }
.verdict h2 { font-size: 1rem; margin: .9rem 0 .3rem; }
.verdict ul { margin: 0; padding-left: 1.2rem; }
.verdict li { margin: .15rem 0; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: .05rem .55rem; border-radius: 999px; font-weight: 700; color: #fff; }
.badge.pass, .st.pass { background: var(--pass); }
.badge.fail, .st.fail { background: var(--fail); }
.badge.inconclusive, .st.inconclusive, .st.warn { background: var(--inconclusive); }
.st { display: inline-block; white-space: nowrap; padding: 0 .45rem; border-radius: 4px; color: #fff; font-weight: 600;
  font-size: .9em; }
.st.waived, .st.not-measured { background: var(--dim); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { text-align: left; font-weight: 600; color: var(--muted); border-bottom: 2px solid var(--line); }
td.num, th.num { text-align: right; white-space: nowrap; }
tr.decides td:first-child { font-weight: 600; }
td.rule code, td.metric code { white-space: nowrap; }
td.metric code { font-size: .85em; color: var(--muted); }
@media (max-width: 1299px) { td.metric, th.metric { display: none; } }
.scroll { overflow-x: auto; }
section.chart { margin-top: 1.6rem; }
figure { margin: 0; }
.panels { display: flex; flex-wrap: wrap; gap: 8px 28px; align-items: flex-start; }
.panels svg { display: block; flex: 1 1 380px; min-width: 0; max-width: 620px; height: auto; }
figcaption { color: var(--muted); margin: .4rem 0 0; max-width: 860px; }
.note { color: var(--muted); margin: .3rem 0 0; max-width: 860px; overflow-wrap: anywhere; }
details { margin: .6rem 0 0; }
summary { cursor: pointer; color: var(--muted); }
details table { font-size: .9em; margin-top: .4rem; }
.absent { color: var(--muted); font-style: italic; }
.findings li { margin: .25rem 0; overflow-wrap: anywhere; }
.sev { font-weight: 700; text-transform: uppercase; font-size: .85em; }
.sev.error { color: var(--fail); } .sev.warning { color: var(--inconclusive); } .sev.info { color: var(--dim); }
footer { margin-top: 2.5rem; color: var(--dim); font-size: .85em; overflow-wrap: anywhere; }
@media (max-width: 700px) {
  body { font-size: 14px; }
  main { padding: 12px 10px 32px; }
  h1 { font-size: 1.4rem; }
  table.rules thead { display: none; }
  table.rules, table.rules tbody { display: block; width: 100%; }
  table.rules tr { display: flex; flex-wrap: wrap; border: 1px solid var(--line); border-radius: 8px;
    padding: .35rem .5rem; margin: 0 0 .5rem; }
  table.rules td { border: 0; padding: .1rem .25rem .1rem 0; text-align: left; flex: 1 1 33%; min-width: 0; }
  table.rules td::before { content: attr(data-label); display: block; color: var(--muted); font-size: .8em; }
  table.rules td.rule { flex-basis: 100%; order: -2; }
  table.rules td.rule::before, table.rules td.metric { display: none; }
  table.rules td.rule code { white-space: normal; }
  table.rules td.status { order: -1; }
  table.rules td.figure, table.rules td.interval, table.rules td.threshold { order: 0; }
  table.rules td.base, table.rules td.candidate { order: 1; }
}
"""


class HtmlFormat:
    def render(self, doc: dict) -> str:
        verdict = doc.get("verdict") or {}
        status = verdict.get("status", "INCONCLUSIVE")
        title = f"gate: {status} — {doc['candidate']['spec']} vs {doc['base']['spec']}"
        body = [self._verdict(doc), self._rules(verdict.get("rules") or [])]
        bias = next((o for o in doc.get("outcomes", []) if o.get("name") == "bias" and not o.get("error")), None)
        notes = {"bias": fmt.bias_asking(bias["result"]) if bias and bias.get("result") else None}
        body += [self._chart(chart, notes.get(chart.key)) for chart in charts(doc)]
        body += [self._quantization(doc), self._findings(doc), self._measurements(doc), self._footer(doc)]
        return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                f"<title>{escape.html(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
                + "\n".join(part for part in body if part) + "\n</main>\n</body>\n</html>\n")

    def _verdict(self, doc: dict) -> str:
        verdict = doc.get("verdict") or {}
        status = verdict.get("status", "INCONCLUSIVE")
        css = STATUS_CLASS.get(status, "inconclusive")
        out = [f'<header class="verdict {css}" id="verdict">',
               f'<h1><span class="badge {css}">{escape.html(fmt.status(status))}</span></h1>',
               f'<p class="subject">candidate <code>{escape.html(doc["candidate"]["spec"])}</code> against base '
               f'<code>{escape.html(doc["base"]["spec"])}</code> · policy '
               f'<code>{escape.html(verdict.get("policy", "?"))}</code></p>']
        summary = verdict.get("bias_vs_perplexity")
        if summary and summary.get("message") and summary.get("perplexity_within_tolerance"):
            out.append(f'<p class="headline">{escape.html(summary["message"])}</p>')
        deciding = [r for r in verdict.get("rules") or [] if r.get("decides") and r.get("status") != "pass"
                    and (status != "FAIL" or r.get("status") == "fail")]
        if deciding:
            out.append("<h2>Deciding rules</h2><ul>")
            for rule in deciding:
                cells = fmt.rule_cells(rule)
                interval = "" if cells["interval"] == fmt.DASH else f" {cells['interval']}"
                out.append(f'<li><span class="st {escape.html(rule.get("status", ""))}">{escape.html(cells["status"])}'
                           f'</span> <code>{escape.html(cells["rule"])}</code>: {escape.html(cells["figure"] + interval)}'
                           f', threshold {escape.html(cells["threshold"])}</li>')
            out.append("</ul>")
        reasons = list(verdict.get("reasons") or [])
        reasons += [f"measurement {o['name']} failed: {o['error']}" for o in doc.get("outcomes", [])
                    if o.get("error") and not any(o["name"] in r for r in reasons)]
        if reasons:
            out.append("<h2>Why</h2><ul>" + "".join(f"<li>{escape.html(r)}</li>" for r in reasons) + "</ul>")
        out.append("</header>")
        return "\n".join(out)

    def _rules(self, rules: list[dict]) -> str:
        if not rules:
            return ""
        head = "".join(f'<th class="{"num" if c in ("base", "candidate", "figure", "interval", "threshold") else c}">'
                       f"{c}</th>" for c in RULE_COLUMNS)
        rows = []
        for rule in rules:
            cells = fmt.rule_cells(rule)
            decides = ' class="decides"' if rule.get("decides") else ""
            tds = [f'<td class="rule" data-label="rule"><code title="{escape.html(cells["metric"])}">'
                   f'{escape.html(cells["rule"])}</code></td>',
                   f'<td class="metric" data-label="metric"><code>{escape.html(cells["metric"])}</code></td>']
            tds += [f'<td class="num {c}" data-label="{c}">{escape.html(cells[c])}</td>'
                    for c in ("base", "candidate", "figure", "interval", "threshold")]
            tds.append(f'<td class="status" data-label="status"><span class="st {escape.html(rule.get("status", ""))}">'
                       f'{escape.html(cells["status"])}</span></td>')
            rows.append(f"<tr{decides}>{''.join(tds)}</tr>")
        return (f'<section id="rules"><h2>Policy rules</h2><div class="scroll"><table class="rules"><thead><tr>{head}'
                f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>")

    def _chart(self, chart: Chart, note: str | None = None) -> str:
        """One chart's section; `note`, when given, is a line of the measurement's own below the caption."""
        key = escape.html(chart.key)
        if not chart.panels:
            return (f'<section class="chart absent-chart" id="chart-{key}"><h2>{escape.html(chart.title)}</h2>'
                    f'<p class="absent">No chart: {escape.html(chart.absent)}</p></section>')
        label = f'<svg role="img" aria-label="{escape.html(chart.title)}" '
        svgs = "".join(svg.replace("<svg ", label, 1) for svg in chart.panels)
        head = "".join(f"<th>{escape.html(h)}</th>" for h in chart.headers)
        rows = "".join("<tr>" + "".join(f"<td>{escape.html(cell)}</td>" for cell in row) + "</tr>" for row in chart.rows)
        return (f'<section class="chart" id="chart-{key}"><h2>{escape.html(chart.title)}</h2>'
                f'<figure><div class="panels">{svgs}</div><figcaption>{escape.html(chart.caption)}</figcaption></figure>'
                + (f'<p class="note">{escape.html(note)}</p>' if note else "") +
                f'<details><summary>The data ({fmt.count(len(chart.rows))} rows)</summary><div class="scroll"><table>'
                f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div></details></section>")

    def _quantization(self, doc: dict) -> str:
        lines = quantization_lines(doc)
        if not lines:
            return ""
        items = "".join(f"<li>{escape.html(line.strip())}</li>" for line in lines)
        return f'<section id="quantization"><h2>Quantization</h2><ul>{items}</ul></section>'

    def _findings(self, doc: dict) -> str:
        findings = [f for o in doc.get("outcomes", []) for f in o.get("findings", [])]
        if not findings:
            return ""
        items = []
        for f in findings:
            severity = f.get("severity", "")
            about = f"<code>{escape.html(f['subject'])}</code>: " if f.get("subject") else ""
            items.append(f'<li><span class="sev {escape.html(severity)}">{SEVERITY_ICON.get(severity, "")} '
                         f"{escape.html(severity)}</span> {about}{escape.html(f['message'])}</li>")
        return f'<section id="findings"><h2>Findings</h2><ul class="findings">{"".join(items)}</ul></section>'

    def _measurements(self, doc: dict) -> str:
        parts = []
        for outcome in doc.get("outcomes", []):
            if outcome.get("error") or not outcome.get("metrics"):
                continue
            rows = []
            for m in outcome["metrics"]:
                value, interval = fmt.metric_value(m["key"], m.get("value"), m.get("interval"), fmt.is_change(m["key"]))
                rows.append("<tr>" + "".join(f"<td{cls}>{escape.html(cell)}</td>" for cls, cell in (
                    ("", fmt.metric_label(m["key"], m.get("category"))),
                    (' class="num"', fmt.side(m["key"], m.get("base"), m.get("unit", ""))),
                    (' class="num"', fmt.side(m["key"], m.get("candidate"), m.get("unit", ""))),
                    (' class="num"', value), (' class="num"', interval), (' class="num"', fmt.count(m.get("n"))))) + "</tr>")
            parts.append(f"<details><summary>{escape.html(outcome['name'])}: {fmt.count(len(rows))} figures, "
                         f"{fmt.seconds(outcome.get('seconds'))}</summary><div class=\"scroll\"><table><thead><tr>"
                         "<th>metric</th><th class=\"num\">base</th><th class=\"num\">candidate</th>"
                         "<th class=\"num\">value</th><th class=\"num\">interval</th><th class=\"num\">n</th></tr></thead>"
                         f"<tbody>{''.join(rows)}</tbody></table></div></details>")
        return f'<section id="measurements"><h2>Every figure</h2>{"".join(parts)}</section>' if parts else ""

    def _footer(self, doc: dict) -> str:
        host = doc.get("host") or {}
        bits = [f"gate {doc.get('gate_version', '?')}", f"started {doc.get('started', '?')}",
                f"took {fmt.seconds(doc.get('seconds'))}", f"{host.get('platform', '')} Python {host.get('python', '')}"]
        return f"<footer>{escape.html(' · '.join(bits))}</footer>"
