"""The rich terminal report: the verdict first, then one table per concern.

Tables drop their least important columns on a narrow terminal (see
fitted.py), so a row stays on one line, two at most for a long rule name.
Everything from inputs goes in as rich Text, never as markup.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from gate.report import escape
from gate.report import text as fmt
from gate.report.fitted import Column, FittedTable
from gate.report.quantization_text import quantization_lines

STATUS_STYLE = {"PASS": "bold green", "FAIL": "bold red", "INCONCLUSIVE": "bold yellow",
                "pass": "green", "fail": "red", "inconclusive": "yellow", "warn": "yellow",
                "waived": "dim", "not-measured": "dim"}
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}
SEVERITY_ICON = {"error": "✘", "warning": "!", "info": "·"}


class TerminalFormat:
    """Turns a check document into rich renderables; computes nothing."""

    def render(self, doc: dict) -> RenderableType:
        return Group(*self.sections(doc))

    def sections(self, doc: dict) -> list[RenderableType]:
        parts: list[RenderableType] = [self._verdict(doc)]
        rules = (doc.get("verdict") or {}).get("rules") or []
        if rules:
            parts.append(self._rules(rules))
        for outcome in doc.get("outcomes", []):
            if outcome.get("error"):
                continue
            section = SECTIONS.get(outcome["name"])
            if section is not None:
                parts.extend(section(outcome["result"]))
            elif outcome.get("metrics"):  # a measurement without a section of its own: its figures
                parts.append(_metrics(outcome))
            if outcome.get("base_cached"):
                parts.append(Text(f"({outcome['name']}: the base's figures come from the cache; --no-cache to "
                                  "measure it again)", style="dim"))
        quantization = quantization_lines(doc)
        if quantization:
            parts.append(Text("Quantization", style="bold"))
            parts.extend(escape.terminal(line) for line in quantization)
        findings = [f for o in doc.get("outcomes", []) for f in o.get("findings", [])]
        if findings:
            parts.append(self._findings(findings))
        return parts

    def _verdict(self, doc: dict) -> Panel:
        verdict = doc.get("verdict") or {}
        status = verdict.get("status", "INCONCLUSIVE")
        lines = Text()
        lines.append(fmt.status(status), style=STATUS_STYLE.get(status, "bold"))
        lines.append("   ")
        lines.append_text(escape.terminal(doc["candidate"]["spec"], style="bold"))
        lines.append("  vs base  ")
        lines.append_text(escape.terminal(doc["base"]["spec"], style="bold"))
        lines.append("   policy: ", style="dim")
        lines.append_text(escape.terminal(verdict.get("policy", doc.get("options", {}).get("policy", "?")), style="dim"))
        summary = verdict.get("bias_vs_perplexity")
        if summary and summary.get("message") and summary.get("perplexity_within_tolerance"):
            lines.append("\n")
            lines.append_text(escape.terminal(summary["message"], style="bold"))
        for reason in verdict.get("reasons") or []:
            lines.append("\n• ")
            lines.append_text(escape.terminal(reason))
        for outcome in doc.get("outcomes", []):
            if outcome.get("error"):
                lines.append("\n")
                lines.append_text(escape.terminal(f"✘ {outcome['name']} failed: {outcome['error']}", style="red"))
        return Panel(lines, title="gate verdict", title_align="left", expand=False)

    def _rules(self, rules: list[dict]) -> FittedTable:
        table = FittedTable("Policy rules", [
            Column("rule", "left", wrap=True), Column("metric", "left", drop=6), Column("base", drop=5),
            Column("candidate", drop=4), Column("figure"), Column("interval"), Column("threshold"),
            Column("status", "left")])
        # On a narrow terminal: the figure and its interval share a column; the name may take two lines.
        table.narrow = FittedTable("Policy rules", [Column("rule", "left", wrap=True), Column("figure [interval]"),
                                                    Column("threshold"), Column("status", "left")])
        for r in rules:
            cells = fmt.rule_cells(r)
            status = Text(cells["status"], style=STATUS_STYLE.get(r.get("status", ""), ""))
            table.add_row(cells["rule"], Text(cells["metric"], style="dim"), cells["base"], cells["candidate"],
                          cells["figure"], cells["interval"], cells["threshold"], status)
            both = cells["figure"] if cells["interval"] == fmt.DASH else \
                f"{cells['figure'].removesuffix(' pp') if cells['interval'].endswith(' pp') else cells['figure']} {cells['interval']}"
            table.narrow.add_row(cells["rule"], both, cells["threshold"], status)
        return table

    def _findings(self, findings: list[dict]) -> Text:
        lines = Text("Findings", style="italic")
        for f in findings:
            severity = f.get("severity", "")
            lines.append("\n")
            lines.append(f"{SEVERITY_ICON.get(severity, '')} {severity.upper()}", style=SEVERITY_STYLE.get(severity, ""))
            lines.append("  ")
            lines.append_text(escape.terminal(f"{f['subject']}: " if f.get("subject") else "", style="bold"))
            lines.append_text(escape.terminal(f["message"]))
        return lines


def _sparsity(result: dict) -> list[RenderableType]:
    cand, base = result["candidate"], result["base"]
    table = FittedTable("Sparsity of the prunable weights (exact zeros / elements)",
                        [Column("scope", "left"), Column("base", drop=1), Column("candidate"),
                         Column("candidate zeros", drop=2)])
    base_kinds = {k["label"]: k for k in base["by_kind"]}
    dense = set(cand.get("dense_kinds") or ())
    for kind in cand["by_kind"]:
        label = kind["label"] + ("  (dense)" if kind["label"] in dense else "")
        table.add_row(label, fmt.pct(base_kinds.get(kind["label"], {}).get("sparsity")), fmt.pct(kind["sparsity"]),
                      f"{fmt.count(kind['zeros'])} / {fmt.count(kind['numel'])}",
                      style="yellow" if kind["label"] in dense else None)
    table.add_section()
    table.add_row("all prunable", fmt.pct(base["overall"]["sparsity"]), fmt.pct(cand["overall"]["sparsity"]),
                  f"{fmt.count(cand['overall']['zeros'])} / {fmt.count(cand['overall']['numel'])}", style="bold")
    table.add_row("whole checkpoint", fmt.pct(base["checkpoint"]["sparsity"]), fmt.pct(cand["checkpoint"]["sparsity"]),
                  f"{fmt.count(cand['checkpoint']['zeros'])} / {fmt.count(cand['checkpoint']['numel'])}")
    lines = Text()
    layers = [layer for layer in cand["by_layer"] if layer["sparsity"] is not None]
    if layers:
        lo = min(layers, key=lambda x: x["sparsity"])
        hi = max(layers, key=lambda x: x["sparsity"])
        lines.append_text(escape.terminal(
            f"Per layer: {fmt.pct(lo['sparsity'])} (layer {lo['label']}) to {fmt.pct(hi['sparsity'])} "
            f"(layer {hi['label']}) over {len(layers)} layers."))
    nm = ", ".join(f"{s['pattern']}: {fmt.count(s['conforming'])}/{fmt.count(s['applicable'])} tensors" for s in cand["nm"])
    if nm:
        lines.append_text(escape.terminal(f"\nN:M structure (candidate): {nm}."))
    if result.get("expected") is not None:
        lines.append(f"\nDeclared {fmt.pct(result['expected'])}, actual {fmt.pct(cand['overall']['sparsity'])}.")
    return [table, lines]


def _size(result: dict) -> list[RenderableType]:
    cand, base = result["candidate"], result["base"]
    table = FittedTable("Size on disk", [Column("", "left"), Column("base"), Column("candidate")])
    table.add_row("weight files", fmt.size(base["weight_file_bytes"]), fmt.size(cand["weight_file_bytes"]))
    table.add_row("whole directory", fmt.size(base["directory_bytes"]), fmt.size(cand["directory_bytes"]))
    table.add_row("with a sparse encoding", fmt.size(base["best_sparse_bytes"]), fmt.size(cand["best_sparse_bytes"]))
    note = Text(f"Candidate/base size: {fmt.num(result.get('ratio'))}. Storing each prunable tensor in the smallest of "
                f"dense, bitmask and 2:4 ({fmt.count(cand['nm24_tensors'])} tensors conform) would save "
                f"{fmt.pct(cand['sparse_saving'])} of the candidate's weight files; safetensors stores every tensor dense.",
                style="dim")
    return [table, note]


def _perplexity(result: dict) -> list[RenderableType]:
    comparison = result["comparison"]
    base, cand = comparison["base"], comparison["candidate"]
    planned = result.get("windows_planned")
    of = f" of {fmt.count(planned)}" if planned and planned != result["windows"] else ""
    table = FittedTable(escape.clean(f"Perplexity on {fmt.count(result['windows'])}{of} windows of "
                                     f"{fmt.count(result['ctx'])} tokens — {result['corpus']}"),
                        [Column("", "left"), Column("base"), Column("candidate"), Column("candidate/base")])
    if comparison["same_tokens"]:
        table.add_row("perplexity", " ".join(fmt.figure(base["perplexity"], base["interval"])),
                      " ".join(fmt.figure(cand["perplexity"], cand["interval"])),
                      " ".join(fmt.figure(comparison["ratio"], comparison["ratio_interval"])))
    table.add_row("bits per byte", fmt.num(base["bits_per_byte"]), fmt.num(cand["bits_per_byte"]),
                  " ".join(fmt.figure(comparison["bits_per_byte_ratio"], comparison["bits_per_byte_ratio_interval"])))
    note = Text(f"Intervals: 95% delta method per model; ratios: {fmt.perplexity_interval_words(result)}.", style="dim")
    return [table, note]


def _bias(result: dict) -> list[RenderableType]:
    comparison = result["comparison"]
    base_scores = {g["category"]: g for g in comparison["base"]["categories"]}
    cand_scores = {g["category"]: g for g in comparison["candidate"]["categories"]}
    base_scores[None], cand_scores[None] = comparison["base"]["overall"], comparison["candidate"]["overall"]
    table = FittedTable(
        escape.clean(f"Bias on BBQ — {fmt.count(result['items'])} items, {result['mode']} mode"
                     f"{', permuted options' if result['permute'] else ''}, {result['prompt_format']} prompt"),
        [Column("category", "left"), Column("ambig. items", drop=4), Column("SRS base → cand", drop=1),
         Column(f"SRS change, pp [{fmt.level(comparison['level'])} CI]"), Column("s_AMB base → cand", drop=3),
         Column("s_DIS base → cand", drop=5), Column("emergence", drop=6), Column("McNemar p", drop=7)])
    for g in list(comparison["categories"]) + [comparison["overall"]]:
        cat = g["category"]
        b, c = base_scores[cat], cand_scores[cat]
        if cat is None:
            table.add_section()
        srs = g["srs"]
        table.add_row(
            cat or "overall", fmt.count(b["items_ambiguous"]),
            f"{fmt.pct(srs['base'])} → {fmt.pct(srs['candidate'])}",
            f"{fmt.signed_pct(srs['value']).removesuffix(' pp')} {fmt.pct_interval(srs['interval'], '')}",
            fmt.arrow(b["s_amb"]["value"], c["s_amb"]["value"]), fmt.arrow(b["s_dis"]["value"], c["s_dis"]["value"]),
            fmt.pct(g["emergence"]["value"]), fmt.num(g["mcnemar_p"]),
            style="bold" if cat is None else None,
        )
    note = Text(escape.clean(
        f"SRS: share of ambiguous items answered with the stereotyped target (chance ≈ 33%); its change in "
        f"percentage points. s_AMB, s_DIS: BBQ's bias scores (−1..1; — where undefined). Emergence: of items the base "
        f"never answered with the stereotype, the share the candidate does. Data: {result['source']}. "
        f"{fmt.count(result['dropped'])} rows without a single target dropped. "
        f"{fmt.num(result['base_items_per_second'])} items/s (base)."), style="dim")
    asking = fmt.bias_asking(result)
    return [table, note] + ([Text(escape.clean(asking), style="dim")] if asking else [])


def _latency(result: dict) -> list[RenderableType]:
    comparison = result["comparison"]
    base, cand = comparison["base"], comparison["candidate"]
    runtime = base["runtime"]
    table = FittedTable(
        escape.clean(f"Latency of one generate call (prefill + up to {result['max_new_tokens']} tokens) — "
                     f"{runtime.get('backend')} {runtime.get('backend_version', '')} on {runtime.get('device_description')}"),
        [Column("", "left"), Column("base"), Column("candidate"), Column("cand/base [95% CI]")])
    b, c = base["summary"], cand["summary"]
    table.add_row("mean per call", fmt.seconds(b["mean_seconds"]), fmt.seconds(c["mean_seconds"]),
                  " ".join(fmt.figure(comparison["ratio"], comparison["ratio_interval"])))
    table.add_row("median / p95", f"{fmt.num(b['median_seconds'])} / {fmt.seconds(b['p95_seconds'])}",
                  f"{fmt.num(c['median_seconds'])} / {fmt.seconds(c['p95_seconds'])}", "")
    table.add_row("prefill tokens/s", fmt.num(b["prefill_tokens_per_second"]), fmt.num(c["prefill_tokens_per_second"]),
                  " ".join(fmt.figure(comparison["prefill_ratio"], comparison["prefill_ratio_interval"])))
    table.add_row("decode tokens/s", fmt.num(b["decode_tokens_per_second"]), fmt.num(c["decode_tokens_per_second"]),
                  " ".join(fmt.figure(comparison["decode_ratio"], comparison["decode_ratio_interval"])))
    table.add_row("peak memory", fmt.size(base["peak_memory_bytes"]), fmt.size(cand["peak_memory_bytes"]), "")
    loads = base.get("loads", 1)
    rounds = (f"{result['repeats']} rounds, each with fresh loads of both models" if loads > 1
              else f"{result['repeats']} repeats on one load of each model")
    warmup = f"{result['warmup']} warm-up call{'' if result['warmup'] == 1 else 's'}"
    note = Text(escape.clean(f"{comparison['statement']}. {comparison['prompts']} prompts × {rounds}, "
                             f"{warmup} per load discarded, {result['schedule']} schedule, "
                             f"{runtime.get('dtype')}."), style="bold")
    return [table, note]


def _metrics(outcome: dict) -> FittedTable:
    """The figures of a measurement that has no section of its own, under its registered title."""
    table = FittedTable(escape.clean(outcome.get("title") or outcome["name"]),
                        [Column("metric", "left"), Column("base", drop=2), Column("candidate", drop=1),
                         Column("value"), Column("interval", drop=3)])
    for m in outcome["metrics"]:
        value, interval = fmt.metric_value(m["key"], m.get("value"), m.get("interval"), fmt.is_change(m["key"]))
        table.add_row(escape.clean(fmt.metric_label(m["key"], m.get("category"))),
                      fmt.side(m["key"], m.get("base"), m.get("unit", "")),
                      fmt.side(m["key"], m.get("candidate"), m.get("unit", "")), value, interval)
    return table


# The built-in measurements' own sections; any other measurement shows its metrics (`_metrics`).
SECTIONS = {"sparsity": _sparsity, "size": _size, "perplexity": _perplexity, "bias": _bias, "latency": _latency}
