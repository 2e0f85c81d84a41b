"""The rich terminal report: the verdict first, then one table per concern."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gate.formats import text as fmt

STATUS_STYLE = {"PASS": "bold green", "FAIL": "bold red", "INCONCLUSIVE": "bold yellow",
                "pass": "green", "fail": "red", "inconclusive": "yellow", "warn": "yellow",
                "waived": "dim", "not-measured": "dim"}


class TerminalFormat:
    """Turns a check document into rich renderables; computes nothing."""

    def render(self, doc: dict) -> RenderableType:
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
            if outcome.get("base_cached"):
                parts.append(Text(f"({outcome['name']}: the base's figures come from the cache; --no-cache to "
                                  "measure it again)", style="dim"))
        findings = [f for o in doc.get("outcomes", []) for f in o.get("findings", [])]
        if findings:
            parts.append(self._findings(findings))
        return Group(*parts)

    def _verdict(self, doc: dict) -> Panel:
        verdict = doc.get("verdict") or {}
        status = verdict.get("status", "INCONCLUSIVE")
        lines = Text()
        lines.append(f"{status}", style=STATUS_STYLE.get(status, "bold"))
        lines.append(f"   {doc['candidate']['spec']}  vs base  {doc['base']['spec']}")
        lines.append(f"   policy: {verdict.get('policy', doc.get('options', {}).get('policy', '?'))}", style="dim")
        summary = verdict.get("bias_vs_perplexity")
        if summary and summary.get("message") and summary.get("perplexity_within_tolerance"):
            lines.append("\n" + summary["message"], style="bold")
        for reason in verdict.get("reasons") or []:
            lines.append(f"\n• {reason}")
        for outcome in doc.get("outcomes", []):
            if outcome.get("error"):
                lines.append(f"\n✗ {outcome['name']} failed: {outcome['error']}", style="red")
        return Panel(lines, title="gate verdict", expand=False)

    def _rules(self, rules: list[dict]) -> Table:
        table = Table(title="Policy rules", title_justify="left")
        table.add_column("rule (metric)", overflow="fold")
        for col in ("base", "candidate", "figure", "interval", "threshold"):
            table.add_column(col, justify="right")
        table.add_column("status")
        for r in rules:
            status = r.get("status", "")
            figure = r.get("figure") or {}
            label = Text(fmt.metric_label(r.get("rule_id", ""), r.get("category")))
            label.append(f"\n{r.get('metric', '')}", style="dim")
            table.add_row(label, fmt.num(figure.get("base")), fmt.num(figure.get("candidate")), fmt.num(r.get("value")),
                          fmt.interval(r.get("interval")), _threshold(r), Text(status, style=STATUS_STYLE.get(status, "")))
        return table

    def _findings(self, findings: list[dict]) -> Table:
        table = Table(title="Findings", title_justify="left", show_header=False)
        table.add_column("severity")
        table.add_column("finding")
        style = {"error": "bold red", "warning": "yellow", "info": "dim"}
        for f in findings:
            about = f"{f['subject']}: " if f.get("subject") else ""
            table.add_row(Text(f["severity"].upper(), style=style.get(f["severity"], "")), about + f["message"])
        return table


def _table(title: str, *columns: str) -> Table:
    """A section table: the first column names the row, the others hold figures."""
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    return table


def _threshold(rule: dict) -> str:
    if rule.get("threshold") is None:
        return "—"
    sign = "≤" if rule.get("direction") == "max" else "≥"
    return f"{sign} {fmt.num(rule['threshold'])}{' (rel.)' if rule.get('mode') == 'relative' else ''}"


def _sparsity(result: dict) -> list[RenderableType]:
    cand, base = result["candidate"], result["base"]
    table = _table("Sparsity of the prunable weights (exact zeros / elements)", "scope", "base", "candidate",
                   "candidate zeros")
    base_kinds = {k["label"]: k for k in base["by_kind"]}
    dense = set(cand.get("dense_kinds") or ())
    for kind in cand["by_kind"]:
        label = kind["label"] + ("  (dense)" if kind["label"] in dense else "")
        table.add_row(label, fmt.pct(base_kinds.get(kind["label"], {}).get("sparsity")), fmt.pct(kind["sparsity"]),
                      f"{kind['zeros']:,} / {kind['numel']:,}", style="yellow" if kind["label"] in dense else None)
    table.add_section()
    table.add_row("all prunable", fmt.pct(base["overall"]["sparsity"]), fmt.pct(cand["overall"]["sparsity"]),
                  f"{cand['overall']['zeros']:,} / {cand['overall']['numel']:,}", style="bold")
    table.add_row("whole checkpoint", fmt.pct(base["checkpoint"]["sparsity"]), fmt.pct(cand["checkpoint"]["sparsity"]),
                  f"{cand['checkpoint']['zeros']:,} / {cand['checkpoint']['numel']:,}")
    lines = Text()
    layers = [layer for layer in cand["by_layer"] if layer["sparsity"] is not None]
    if layers:
        lo = min(layers, key=lambda x: x["sparsity"])
        hi = max(layers, key=lambda x: x["sparsity"])
        lines.append(f"Per layer: {fmt.pct(lo['sparsity'])} (layer {lo['label']}) to {fmt.pct(hi['sparsity'])} "
                     f"(layer {hi['label']}) over {len(layers)} layers.")
    nm = ", ".join(f"{s['pattern']}: {s['conforming']}/{s['applicable']} tensors" for s in cand["nm"])
    lines.append(f"\nN:M structure (candidate): {nm}.")
    if result.get("expected") is not None:
        lines.append(f"\nDeclared {fmt.pct(result['expected'])}, actual {fmt.pct(cand['overall']['sparsity'])}.")
    return [table, lines]


def _size(result: dict) -> list[RenderableType]:
    cand, base = result["candidate"], result["base"]
    table = _table("Size on disk", "", "base", "candidate")
    table.add_row("weight files", fmt.size(base["weight_file_bytes"]), fmt.size(cand["weight_file_bytes"]))
    table.add_row("whole directory", fmt.size(base["directory_bytes"]), fmt.size(cand["directory_bytes"]))
    table.add_row("with a sparse encoding", fmt.size(base["best_sparse_bytes"]), fmt.size(cand["best_sparse_bytes"]))
    note = Text(f"Candidate/base size: {fmt.num(result.get('ratio'))}. Storing each prunable tensor in the smallest of "
                f"dense, bitmask and 2:4 ({cand['nm24_tensors']} tensors conform) would save "
                f"{fmt.pct(cand['sparse_saving'], 1)} of the candidate's weight files; safetensors stores every tensor dense.")
    return [table, note]


def _perplexity(result: dict) -> list[RenderableType]:
    comparison = result["comparison"]
    base, cand = comparison["base"], comparison["candidate"]
    table = _table(f"Perplexity on {result['windows']} windows of {result['ctx']} tokens — {result['corpus']}",
                   "", "base", "candidate", "candidate/base")
    if comparison["same_tokens"]:
        table.add_row("perplexity", f"{fmt.num(base['perplexity'])} {fmt.interval(base['interval'])}",
                      f"{fmt.num(cand['perplexity'])} {fmt.interval(cand['interval'])}",
                      f"{fmt.num(comparison['ratio'])} {fmt.interval(comparison['ratio_interval'])}")
    table.add_row("bits per byte", fmt.num(base["bits_per_byte"]), fmt.num(cand["bits_per_byte"]),
                  f"{fmt.num(comparison['bits_per_byte_ratio'])} {fmt.interval(comparison['bits_per_byte_ratio_interval'])}")
    note = Text("Intervals: 95%, delta method per model, paired bootstrap over windows for the ratio.", style="dim")
    return [table, note]


def _bias(result: dict) -> list[RenderableType]:
    comparison = result["comparison"]
    base_scores = {g["category"]: g for g in comparison["base"]["categories"]}
    cand_scores = {g["category"]: g for g in comparison["candidate"]["categories"]}
    base_scores[None], cand_scores[None] = comparison["base"]["overall"], comparison["candidate"]["overall"]
    table = _table(f"Bias on BBQ — {result['items']} items, {result['mode']} mode"
                   f"{', permuted options' if result['permute'] else ''}, {result['prompt_format']} prompt",
                   "category", "ambig. items", "SRS base → cand", f"SRS change [{fmt.level(comparison['level'])} CI]",
                   "s_AMB base → cand",
                   "s_DIS base → cand", "emergence", "McNemar p")
    groups = list(comparison["categories"]) + [comparison["overall"]]
    for g in groups:
        cat = g["category"]
        b, c = base_scores[cat], cand_scores[cat]
        if cat is None:
            table.add_section()
        srs = g["srs"]
        table.add_row(
            cat or "overall", str(b["items_ambiguous"]),
            f"{fmt.pct(srs['base'], 1)} → {fmt.pct(srs['candidate'], 1)}",
            f"{fmt.signed(srs['value'], 3)} {fmt.interval(srs['interval'], 3)}",
            f"{fmt.num(b['s_amb']['value'], 3)} → {fmt.num(c['s_amb']['value'], 3)}",
            f"{fmt.num(b['s_dis']['value'], 3)} → {fmt.num(c['s_dis']['value'], 3)}",
            fmt.pct(g["emergence"]["value"], 1), fmt.num(g["mcnemar_p"], 3),
            style="bold" if cat is None else None,
        )
    note = Text(f"SRS: share of ambiguous items answered with the stereotyped target (chance ≈ 33%). s_AMB, s_DIS: "
                f"BBQ's bias scores (−1..1; — where undefined). Emergence: of items the base never answered with the "
                f"stereotype, the share the candidate does. Data: {result['source']}. {result['dropped']} rows without "
                f"a single target dropped. {result['base_items_per_second']:.1f} items/s (base).", style="dim")
    sequential = result.get("sequential")
    if not sequential:
        return [table, note]
    how = ("confidence sequences, a look every " + f"{sequential['look_every']} items"
           if sequential["method"] == "confidence-sequence" else "fixed-size intervals")
    line = Text(f"Asked {sequential['items_asked']:,} of {sequential['items_pool']:,} items ({sequential['stop']}; "
                f"{how}; budget {sequential['budget']}).", style="dim")
    return [table, note, line]


def _latency(result: dict) -> list[RenderableType]:
    comparison = result["comparison"]
    base, cand = comparison["base"], comparison["candidate"]
    runtime = base["runtime"]
    table = _table(f"Latency of one generate call (prefill + up to {result['max_new_tokens']} tokens) — "
                   f"{runtime.get('backend')} {runtime.get('backend_version', '')} on {runtime.get('device_description')}",
                   "", "base", "candidate", "time ratio cand/base [95% CI]")
    b, c = base["summary"], cand["summary"]
    table.add_row("mean per call", f"{b['mean_seconds']:.3f} s", f"{c['mean_seconds']:.3f} s",
                  f"{fmt.num(comparison['ratio'], 3)} {fmt.interval(comparison['ratio_interval'], 3)}")
    table.add_row("median / p95", f"{b['median_seconds']:.3f} / {b['p95_seconds']:.3f} s",
                  f"{c['median_seconds']:.3f} / {c['p95_seconds']:.3f} s", "")
    table.add_row("prefill tokens/s", fmt.num(b["prefill_tokens_per_second"], 4), fmt.num(c["prefill_tokens_per_second"], 4),
                  f"{fmt.num(comparison['prefill_ratio'], 3)} {fmt.interval(comparison['prefill_ratio_interval'], 3)}")
    table.add_row("decode tokens/s", fmt.num(b["decode_tokens_per_second"], 4), fmt.num(c["decode_tokens_per_second"], 4),
                  f"{fmt.num(comparison['decode_ratio'], 3)} {fmt.interval(comparison['decode_ratio_interval'], 3)}")
    table.add_row("peak memory", fmt.size(base["peak_memory_bytes"]), fmt.size(cand["peak_memory_bytes"]), "")
    loads = base.get("loads", 1)
    rounds = (f"{result['repeats']} rounds, each with fresh loads of both models" if loads > 1
              else f"{result['repeats']} repeats on one load of each model")
    note = Text(f"{comparison['statement']}. {comparison['prompts']} prompts × {rounds}, "
                f"{result['warmup']} warm-up calls per load discarded, {result['schedule']} schedule, "
                f"{runtime.get('dtype')}.",
                style="bold")
    return [table, note]


SECTIONS = {"sparsity": _sparsity, "size": _size, "perplexity": _perplexity, "bias": _bias, "latency": _latency}
