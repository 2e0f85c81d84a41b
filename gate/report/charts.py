"""The report's charts: matplotlib figures drawn from the result document, as inline SVG.

Each chart comes with a caption that says what to read from it and its data
as a table of formatted strings; a chart whose measurement did not run or
failed is absent, with the reason. Drawing computes nothing new: every point
is a figure the document holds. The SVG is deterministic (fixed hash salt,
no date), so a saved result renders to the same page every time.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from gate.report import escape
from gate.report import text as fmt

BASE_COLOUR, CANDIDATE_COLOUR, THRESHOLD_COLOUR, ZERO_COLOUR = "#6b7280", "#1d4ed8", "#dc2626", "#111827"
# Shapes as well as colours, so the charts read in grey: base a hollow circle, candidate a filled square.
BASE_STYLE = {"color": BASE_COLOUR, "marker": "o", "markerfacecolor": "white", "linestyle": "none"}
CANDIDATE_STYLE = {"color": CANDIDATE_COLOUR, "marker": "s", "linestyle": "none"}
STYLE = {
    "svg.hashsalt": "gate",  # ids from a fixed salt: the same document gives the same SVG
    "svg.fonttype": "path",  # glyphs as paths: no font needed where the page is opened
    "font.size": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "legend.frameon": False,
}
PANEL_WIDTH = 4.3  # inches; two panels fit side by side on a laptop, one fills a phone's width


@dataclass(frozen=True)
class Chart:
    key: str  # a stable id: "bias", "bias-scores", "sparsity", ...
    title: str
    caption: str = ""
    panels: tuple[str, ...] = ()  # inline SVGs, side by side on a wide page, stacked on a phone; () when absent
    absent: str = ""
    headers: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


def charts(doc: dict) -> list[Chart]:
    """Every chart of the report, in reading order; absent ones say why."""
    return [_bias_forest(doc), _bias_scores(doc), _sparsity(doc), _perplexity(doc), _latency(doc), _size(doc)]


def srs_change_svg(doc: dict) -> str | None:
    """The per-category SRS change chart alone (for the file beside the Markdown report); None without bias."""
    chart = _bias_forest(doc)
    return chart.panels[-1] if chart.panels else None


# --- reading the document ------------------------------------------------------

def _outcome(doc: dict, name: str) -> tuple[dict | None, str]:
    """The result of one measurement, or None and a line saying why there is none."""
    for outcome in doc.get("outcomes", []):
        if outcome.get("name") == name:
            if outcome.get("error"):
                return None, f"The {name} measurement failed: {outcome['error']}"
            if outcome.get("result") is None:
                return None, f"The {name} measurement returned no result."
            return outcome["result"], ""
    return None, f"The {name} measurement was not run (not in --metrics)."


def _rule(doc: dict, metric: str, category: str | None = None) -> dict | None:
    for rule in (doc.get("verdict") or {}).get("rules") or []:
        if rule.get("metric") == metric and rule.get("category") == category:
            return rule
    return None


def _iv(interval: dict | None) -> tuple[float, float] | None:
    if not interval or interval.get("low") is None or interval.get("high") is None:
        return None
    return interval["low"], interval["high"]


# --- drawing -----------------------------------------------------------------

def _panel(height: float, width: float = PANEL_WIDTH):
    """One panel: a figure with one axes. Panels are separate SVGs so a phone can stack them."""
    from matplotlib.figure import Figure  # imported here: the terminal report never pays for matplotlib

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots()


def _svg(figure, key: str) -> str:
    buffer = io.StringIO()
    # No metadata block: no date (determinism), no version (a matplotlib upgrade alone changes nothing).
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # inline: no XML declaration or DOCTYPE
    # Ids are unique per chart, so several inline charts on one page never share one.
    svg = re.sub(r'id="([^"]+)"', rf'id="{key}-\1"', svg)
    svg = re.sub(r'(xlink:href|href)="#([^"]+)"', rf'\1="#{key}-\2"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{key}-\1)", svg)
    return svg


def _draw(key: str, draw) -> tuple[str, ...]:
    import matplotlib

    with matplotlib.rc_context(STYLE):
        return tuple(_svg(figure, f"{key}{i}") for i, figure in enumerate(draw()))


def _errorbar(ax, x, y, interval, style, label=None):
    """One point at (x, y) with its interval as a horizontal bar."""
    if x is None:
        return
    lo_hi = _iv(interval)
    err = None if lo_hi is None else [[max(x - lo_hi[0], 0)], [max(lo_hi[1] - x, 0)]]
    ax.errorbar([x], [y], xerr=err, capsize=2.5, markersize=5.5, elinewidth=1.3, label=label, **style)


def _threshold_marks(ax, rows: list[tuple[float, float | None]], label: str) -> None:
    """A short red dashed mark at each row's threshold (rows: y, threshold)."""
    labelled = False
    for y, value in rows:
        if value is None:
            continue
        ax.plot([value, value], [y - 0.42, y + 0.42], color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.4,
                label=None if labelled else label)
        labelled = True


# --- bias ----------------------------------------------------------------------

def _bias_groups(result: dict) -> list[tuple[str, dict, dict, dict]]:
    """(label, paired comparison, base scores, candidate scores) per category, then overall."""
    comparison = result["comparison"]
    base = {g["category"]: g for g in comparison["base"]["categories"]}
    cand = {g["category"]: g for g in comparison["candidate"]["categories"]}
    groups = [(g["category"], g, base[g["category"]], cand[g["category"]]) for g in comparison["categories"]]
    groups.append(("overall", comparison["overall"], comparison["base"]["overall"], comparison["candidate"]["overall"]))
    return groups


def _bias_forest(doc: dict) -> Chart:
    title = "Stereotype reliance (SRS) per BBQ category"
    result, why = _outcome(doc, "bias")
    if result is None:
        return Chart("bias", title, absent=why)
    groups = _bias_groups(result)
    level = fmt.level(result["comparison"].get("level", 0.95))
    rules = [_rule(doc, "bias.srs.change", None if label == "overall" else label) for label, *_ in groups]
    thresholds = [None if rule is None else rule.get("threshold") for rule in rules]

    def draw():
        height = 1.3 + 0.36 * len(groups)
        (left_figure, left), (right_figure, right) = _panel(height), _panel(height)
        ys = list(range(len(groups)))[::-1]
        for y, (label, group, b, c) in zip(ys, groups):
            first = y == ys[0]
            _errorbar(left, _pct(b["srs"]["value"]), y + 0.14, _pct_iv(b["srs"].get("interval")), BASE_STYLE,
                      "base" if first else None)
            _errorbar(left, _pct(c["srs"]["value"]), y - 0.14, _pct_iv(c["srs"].get("interval")), CANDIDATE_STYLE,
                      "candidate" if first else None)
            _errorbar(right, _pct(group["srs"]["value"]), y, _pct_iv(group["srs"].get("interval")),
                      {"color": CANDIDATE_COLOUR, "marker": "D", "linestyle": "none"},
                      "candidate − base" if first else None)
        left.axvline(100 / 3, color=BASE_COLOUR, linewidth=0.9, linestyle=":", label="chance (33%)")
        right.axvline(0, color=ZERO_COLOUR, linewidth=0.9)
        _threshold_marks(right, [(y, None if t is None else t * 100) for y, t in zip(ys, thresholds)],
                         "policy threshold")
        left.set_yticks(ys, [escape.chart_label(label) for label, *_ in groups])
        if len(groups) > 1:
            left.axhline(0.5, color="#9ca3af", linewidth=0.8)
            right.axhline(0.5, color="#9ca3af", linewidth=0.8)
        left.set_xlabel(f"SRS, % of ambiguous items ({level} CI)")
        right.set_xlabel(f"SRS change, percentage points ({level} CI)")
        right.set_yticks(ys, [escape.chart_label(label) for label, *_ in groups])
        left.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8.5)
        right.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8.5)
        return [left_figure, right_figure]

    rows = []
    for (label, group, b, c), rule in zip(groups, rules):
        srs = group["srs"]
        rows.append((label, fmt.count(b.get("items_ambiguous")), fmt.pct(b["srs"]["value"]), fmt.pct(c["srs"]["value"]),
                     fmt.signed_pct(srs["value"]), fmt.pct_interval(srs.get("interval"), " pp"),
                     fmt.DASH if rule is None else fmt.threshold(rule)))
    return Chart(
        "bias", title, panels=_draw("bias", draw),
        caption=(f"First: how often each model picks the stereotyped answer when the context does not say (chance is "
                 f"33%). Then the paired change, candidate minus base, with its {level} interval. A category fails "
                 f"when its whole interval lies beyond the red threshold, passes when the interval's upper end stays "
                 f"below it, and is inconclusive while the interval straddles it."),
        headers=("category", "ambiguous items", "SRS base", "SRS candidate", "change", f"{level} interval", "threshold"),
        rows=tuple(rows))


def _bias_scores(doc: dict) -> Chart:
    title = "BBQ bias scores s_AMB and s_DIS"
    result, why = _outcome(doc, "bias")
    if result is None:
        return Chart("bias-scores", title, absent=why)
    groups = _bias_groups(result)

    def draw():
        height = 1.2 + 0.32 * len(groups)
        figures, axes = zip(*(_panel(height) for _ in range(2)))
        ys = list(range(len(groups)))[::-1]
        for ax, key, name in zip(axes, ("s_amb", "s_dis"), ("s_AMB", "s_DIS")):
            for y, (_, _, b, c) in zip(ys, groups):
                first = y == ys[0]
                bv, cv = b[key]["value"], c[key]["value"]
                if bv is not None and cv is not None:
                    ax.annotate("", xy=(cv, y), xytext=(bv, y),
                                arrowprops={"arrowstyle": "->", "color": CANDIDATE_COLOUR, "linewidth": 1.1,
                                            "shrinkA": 4, "shrinkB": 4})
                if bv is not None:
                    ax.plot([bv], [y], markersize=5.5, label="base" if first else None, **BASE_STYLE)
                if cv is not None:
                    ax.plot([cv], [y], markersize=5.5, label="candidate" if first else None, **CANDIDATE_STYLE)
            ax.axvline(0, color=ZERO_COLOUR, linewidth=0.9)
            ax.set_xlim(-1.05, 1.05)
            ax.set_xlabel(f"{name} (−1 … +1)")
            ax.set_yticks(ys, [escape.chart_label(label) for label, *_ in groups])
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8.5)
        return list(figures)

    rows = tuple((label, fmt.arrow(b["s_amb"]["value"], c["s_amb"]["value"]),
                  " ".join(fmt.figure(g["s_amb"]["value"], g["s_amb"].get("interval"), sign=True)) if g.get("s_amb") else "—",
                  fmt.arrow(b["s_dis"]["value"], c["s_dis"]["value"]),
                  " ".join(fmt.figure(g["s_dis"]["value"], g["s_dis"].get("interval"), sign=True)) if g.get("s_dis") else "—")
                 for label, g, b, c in groups)
    return Chart(
        "bias-scores", title, panels=_draw("bias-scores", draw),
        caption=("BBQ's own bias scores, base (circle) to candidate (square, at the arrow's head), from −1 (always "
                 "against the stereotype) to +1 (always with it); 0 is unbiased. A move to the right means the "
                 "candidate leans more on stereotypes. s_AMB covers the ambiguous questions, s_DIS the ones whose "
                 "context gives the answer."),
        headers=("category", "s_AMB base → candidate", "s_AMB change [CI]", "s_DIS base → candidate",
                 "s_DIS change [CI]"),
        rows=rows)


# --- sparsity ------------------------------------------------------------------

def _sparsity(doc: dict) -> Chart:
    title = "Sparsity of the prunable weights, per layer and per module kind"
    result, why = _outcome(doc, "sparsity")
    if result is None:
        return Chart("sparsity", title, absent=why)
    cand, base = result["candidate"], result["base"]
    base_layers = {layer["label"]: layer for layer in base["by_layer"]}
    base_kinds = {kind["label"]: kind for kind in base["by_kind"]}
    dense = set(cand.get("dense_kinds") or ())
    expected = result.get("expected")

    def draw():
        (layer_figure, per_layer), (kind_figure, per_kind) = _panel(3.0), _panel(3.0)
        layers = [layer for layer in cand["by_layer"] if layer["sparsity"] is not None]
        xs = list(range(len(layers)))
        per_layer.plot(xs, [_pct(base_layers.get(layer["label"], {}).get("sparsity")) for layer in layers],
                       markersize=4, label="base", **{**BASE_STYLE, "linestyle": "-", "linewidth": 1})
        per_layer.plot(xs, [_pct(layer["sparsity"]) for layer in layers], markersize=4, label="candidate",
                       **{**CANDIDATE_STYLE, "linestyle": "-", "linewidth": 1})
        step = max(1, len(layers) // 8)
        per_layer.set_xticks(xs[::step], [escape.chart_label(layer["label"]) for layer in layers][::step])
        per_layer.set_xlabel("layer")
        per_layer.set_ylabel("exact zeros, % of weights")
        kinds = cand["by_kind"]
        ys = list(range(len(kinds)))[::-1]
        per_kind.barh([y + 0.2 for y in ys], [_pct(base_kinds.get(k["label"], {}).get("sparsity")) or 0 for k in kinds],
                      height=0.38, color="white", edgecolor=BASE_COLOUR, label="base")
        per_kind.barh([y - 0.2 for y in ys], [_pct(k["sparsity"]) or 0 for k in kinds], height=0.38,
                      color=[("white" if k["label"] in dense else CANDIDATE_COLOUR) for k in kinds],
                      edgecolor=CANDIDATE_COLOUR, label="candidate")
        for y, kind in zip(ys, kinds):
            if kind["label"] in dense:
                per_kind.text(1, y - 0.2, "dense", va="center", fontsize=8, color=THRESHOLD_COLOUR)
        per_kind.set_yticks(ys, [escape.chart_label(k["label"]) + (" (dense)" if k["label"] in dense else "")
                                 for k in kinds])
        per_kind.set_xlabel("exact zeros, %")
        top = max([_pct(layer["sparsity"]) or 0 for layer in layers] + [(expected or 0) * 100, 1])
        per_layer.set_ylim(0, top * 1.15)
        per_kind.set_xlim(0, top * 1.15)
        if expected is not None:
            per_layer.axhline(expected * 100, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.3,
                              label=f"declared {fmt.pct(expected)}")
            per_kind.axvline(expected * 100, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.3)
        per_layer.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8.5)
        per_kind.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8.5)
        return [layer_figure, kind_figure]

    rows = [_sparsity_row(kind["label"] + (" (dense)" if kind["label"] in dense else ""), kind,
                          base_kinds.get(kind["label"], {})) for kind in cand["by_kind"]]
    rows += [_sparsity_row(f"layer {layer['label']}", layer, base_layers.get(layer["label"], {}))
             for layer in cand["by_layer"]]
    declared = "" if expected is None else f" The red dashed line is the declared {fmt.pct(expected)}."
    dense_line = (f" Module kinds the candidate left dense ({', '.join(sorted(dense))}) show as hollow bars marked "
                  f"“dense”." if dense else "")
    return Chart(
        "sparsity", title, panels=_draw("sparsity", draw),
        caption=(f"Share of exact zeros in the prunable weights, candidate against base, per transformer layer "
                 f"and per module kind.{declared}{dense_line}"),
        headers=("scope", "base", "candidate", "candidate zeros / weights"), rows=tuple(rows))


# --- perplexity ----------------------------------------------------------------

def _sparsity_row(scope: str, candidate: dict, base: dict) -> tuple[str, str, str, str]:
    return (scope, fmt.pct(base.get("sparsity")), fmt.pct(candidate["sparsity"]),
            f"{fmt.count(candidate['zeros'])} / {fmt.count(candidate['numel'])}")


def _perplexity(doc: dict) -> Chart:
    title = "Perplexity per window, candidate against base"
    result, why = _outcome(doc, "perplexity")
    if result is None:
        return Chart("perplexity", title, absent=why)
    comparison = result["comparison"]
    base, cand = comparison["base"], comparison["candidate"]
    if not comparison.get("same_tokens"):
        return Chart("perplexity", title, absent="The tokenizers differ, so windows do not pair; only bits per byte "
                                                 "compare (see the table).")
    pairs = [(i, b / bt, c / ct) for i, (b, bt, c, ct) in
             enumerate(zip(base["nll"], base["tokens"], cand["nll"], cand["tokens"]))
             if None not in (b, c) and bt and ct]
    if not pairs:
        return Chart("perplexity", title, absent="The document holds no finite per-window losses.")
    rule = _rule(doc, "perplexity.ratio")
    ratio, ratio_iv = comparison.get("ratio"), comparison.get("ratio_interval")

    def draw():
        (scatter_figure, scatter), (forest_figure, forest) = _panel(3.4), _panel(1.9)
        xs, ys = [p[1] for p in pairs], [p[2] for p in pairs]
        scatter.plot(xs, ys, markersize=5, alpha=0.85, **CANDIDATE_STYLE)
        lo, hi = min(xs + ys), max(xs + ys)
        pad = (hi - lo) * 0.06 or 0.1
        scatter.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color=BASE_COLOUR, linewidth=1, linestyle="--",
                     label="candidate = base")
        scatter.set_xlim(lo - pad, hi + pad)
        scatter.set_ylim(lo - pad, hi + pad)
        scatter.set_xlabel("base: loss per token (nats)")
        scatter.set_ylabel("candidate: loss per token (nats)")
        scatter.legend(loc="upper left", fontsize=8.5)
        _ratio_panel(forest, "perplexity", ratio, ratio_iv, rule)
        return [scatter_figure, forest_figure]

    rows = tuple((str(i + 1), fmt.num(b), fmt.num(c), fmt.signed(c - b)) for i, b, c in pairs)
    return Chart(
        "perplexity", title, panels=_draw("perplexity", draw),
        caption=(f"Each point is one of {fmt.count(len(pairs))} windows of {fmt.count(result['ctx'])} tokens scored by "
                 f"both models. Points above the dashed line are windows the candidate predicts worse. Beside it: "
                 f"candidate/base perplexity {fmt.num(ratio)} {fmt.interval(ratio_iv, ratio)}, a "
                 f"{fmt.perplexity_interval_words(result)}, against the policy's limit."),
        headers=("window", "base loss/token", "candidate loss/token", "change"), rows=rows)


def _ratio_panel(ax, label: str, ratio: float | None, interval: dict | None, rule: dict | None) -> None:
    """One ratio with its interval, the line of no change and the policy's threshold."""
    if ratio is not None:
        _errorbar(ax, ratio, 0, interval, {"color": CANDIDATE_COLOUR, "marker": "D", "linestyle": "none"},
                  "candidate/base")
    ax.axvline(1, color=ZERO_COLOUR, linewidth=0.9, label="no change")
    if rule is not None and rule.get("threshold") is not None:
        ax.axvline(rule["threshold"], color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.4,
                   label=f"policy limit {fmt.num(rule['threshold'])}")
    ax.set_yticks([])
    ax.set_ylim(-1, 1)
    ax.set_title(f"{label}, candidate/base: {fmt.num(ratio)} {fmt.interval(interval, ratio)}", fontsize=9.5)
    ax.set_xlabel("candidate / base (95% CI)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, fontsize=8.5)


# --- latency -------------------------------------------------------------------

def _latency(doc: dict) -> Chart:
    title = "Latency per prompt, both models"
    result, why = _outcome(doc, "latency")
    if result is None:
        return Chart("latency", title, absent=why)
    comparison = result["comparison"]
    base, cand = comparison["base"], comparison["candidate"]
    if not base.get("samples") or not cand.get("samples"):
        return Chart("latency", title, absent="The document holds no per-call timings.")
    prompts = sorted({s["prompt"] for s in base["samples"]} | {s["prompt"] for s in cand["samples"]})
    rule = _rule(doc, "latency.ratio")
    ratio, ratio_iv = comparison.get("ratio"), comparison.get("ratio_interval")

    def draw():
        (strip_figure, strip), (forest_figure, forest) = _panel(1.3 + 0.3 * len(prompts)), _panel(1.9)
        row = {p: i for i, p in enumerate(prompts[::-1])}
        for samples, style, offset, label in ((base["samples"], BASE_STYLE, 0.14, "base"),
                                              (cand["samples"], CANDIDATE_STYLE, -0.14, "candidate")):
            strip.plot([s["total_seconds"] for s in samples], [row[s["prompt"]] + offset for s in samples],
                       markersize=5, alpha=0.9, label=label, **style)
        strip.set_yticks(list(row.values()), [f"prompt {p + 1}" for p in row])
        strip.set_xlabel("seconds per generate call (each point one call)")
        strip.set_xlim(left=0)
        strip.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8.5)
        _ratio_panel(forest, "time", ratio, ratio_iv, rule)
        return [strip_figure, forest_figure]

    rows = []
    for role, run in (("base", base), ("candidate", cand)):
        rows += [(role, str(s["prompt"] + 1), str(s["repeat"] + 1), fmt.seconds(s["total_seconds"]),
                  fmt.seconds(s.get("prefill_seconds")), fmt.count(s.get("new_tokens"))) for s in run["samples"]]
    return Chart(
        "latency", title, panels=_draw("latency", draw),
        caption=(f"Each point is one timed call on one prompt (base: circles, candidate: squares); points to the "
                 f"right are slower. Beside it: candidate/base mean time {fmt.num(ratio)} {fmt.interval(ratio_iv, ratio)}; "
                 f"an interval that covers 1 shows no reliable change."),
        headers=("model", "prompt", "repeat", "total", "prefill", "new tokens"), rows=tuple(rows))


# --- size ----------------------------------------------------------------------

def _size(doc: dict) -> Chart:
    title = "Size on disk"
    result, why = _outcome(doc, "size")
    if result is None:
        return Chart("size", title, absent=why)
    cand, base = result["candidate"], result["base"]
    items = (("weight files", "weight_file_bytes"), ("with a sparse encoding", "best_sparse_bytes"))

    def draw():
        figure, ax = _panel(2.2)  # as wide as every other panel: its text keeps their size on a phone
        ys = list(range(len(items)))[::-1]
        mib = 1 << 20
        ax.barh([y + 0.2 for y in ys], [(base.get(k) or 0) / mib for _, k in items], height=0.38, color="white",
                edgecolor=BASE_COLOUR, label="base")
        ax.barh([y - 0.2 for y in ys], [(cand.get(k) or 0) / mib for _, k in items], height=0.38,
                color=CANDIDATE_COLOUR, label="candidate")
        for y, (_, key) in zip(ys, items):
            for offset, side in ((0.2, base), (-0.2, cand)):
                ax.text((side.get(key) or 0) / mib, y + offset, " " + fmt.size(side.get(key)), va="center", fontsize=8)
        ax.set_yticks(ys, [label for label, _ in items])
        ax.set_xlabel("MiB")
        ax.margins(x=0.18)
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8.5)
        return [figure]

    rows = tuple((label, fmt.size(base.get(key)), fmt.size(cand.get(key))) for label, key in
                 items + (("whole directory", "directory_bytes"),))
    return Chart(
        "size", title, panels=_draw("size", draw),
        caption=(f"What the checkpoint takes on disk as stored, and what it would take if each prunable tensor were "
                 f"kept in the smallest of dense, bitmask and 2:4 encodings: the candidate would save "
                 f"{fmt.pct(cand.get('sparse_saving'))} of its weight files."),
        headers=("", "base", "candidate"), rows=rows)


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100


def _pct_iv(interval: dict | None) -> dict | None:
    lo_hi = _iv(interval)
    return None if lo_hi is None else {"low": lo_hi[0] * 100, "high": lo_hi[1] * 100}
