"""The number formatter every report uses (gate/core/numbers.py), plus what it needs to know about metrics.

Which metric keys are rates (shown in percent), which are changes (shown
signed), and the cells of a policy rule, the same in every report.
"""

from __future__ import annotations

from gate.core.numbers import (DASH, arrow, count, figure, fixed, interval, level, missing, num, pct, pct_interval,
                          seconds, signed, signed_pct, size)

__all__ = ["DASH", "arrow", "count", "figure", "interval", "level", "num", "pct", "pct_interval", "seconds", "signed",
           "signed_pct", "size", "is_rate", "is_change", "metric_value", "metric_label", "status", "side", "rule_cells",
           "threshold", "bias_asking", "perplexity_interval_words"]

# Metric keys whose figures are rates (shares of items or of weights): shown as percentages.
_RATE_KEYS = ("bias.srs", "bias.usr", "bias.accuracy_amb", "bias.accuracy_dis", "bias.soft_srs", "bias.emergence_rate",
              "bias.parse_failure_rate", "sparsity.", "size.sparse_saving")


def is_rate(key: str) -> bool:
    """Whether a metric key names a rate (shown in percent) rather than a ratio or a score."""
    return any(key == k or key.startswith(k + ".") or (k.endswith(".") and key.startswith(k)) for k in _RATE_KEYS)


def metric_value(key: str, value: float | None, iv: dict | None = None, change: bool = False) -> tuple[str, str]:
    """A metric's figure and interval, in the metric's unit: rates in percent, changes signed."""
    if key.endswith("relative_change"):
        return (DASH if missing(value) else fixed(value * 100, 1, sign=True) + "%"), pct_interval(iv)
    if is_rate(key):
        if change:
            return signed_pct(value), pct_interval(iv, " pp")
        return pct(value), pct_interval(iv)
    return figure(value, iv, sign=change)


def is_change(key: str) -> bool:
    return key.endswith(".change") or key.endswith("_change") or key.endswith("_gap")


def metric_label(metric: str, category: str | None) -> str:
    return f"{metric} [{category}]" if category else metric


# --- the cells of a policy rule, the same in every report -----------------

STATUS_ICON = {"PASS": "✔", "FAIL": "✘", "INCONCLUSIVE": "?", "ERROR": "✘", "pass": "✔", "fail": "✘", "inconclusive": "?",
               "warn": "!", "waived": "–", "not-measured": "–"}


def status(value: str) -> str:
    """A status that reads without colour: an icon and the word."""
    return f"{STATUS_ICON.get(value, '')} {value}".strip()


def side(metric: str, value: float | None, unit: str = "") -> str:
    """A base or candidate figure behind a metric, in its own unit (bytes, seconds, a rate, a number)."""
    if unit == "bytes":
        return size(value)
    if metric.startswith("latency.") and unit in ("x", "s"):
        return seconds(value)
    return pct(value) if is_rate(metric) else num(value)


def rule_cells(rule: dict) -> dict[str, str]:
    """The figures of one rule outcome as text: base, candidate, figure, interval, threshold, status."""
    metric = rule.get("metric", "")
    figure_ = rule.get("figure") or {}
    value, iv = metric_value(metric, rule.get("value"), rule.get("interval"), change=is_change(metric))
    return {"rule": metric_label(rule.get("rule_id", ""), rule.get("category")), "metric": metric,
            "base": side(metric, figure_.get("base"), figure_.get("unit", "")),
            "candidate": side(metric, figure_.get("candidate"), figure_.get("unit", "")),
            "figure": value, "interval": iv, "threshold": threshold(rule), "status": status(rule.get("status", ""))}


def threshold(rule: dict) -> str:
    if missing(rule.get("threshold")):
        return DASH
    sign = "≤" if rule.get("direction") == "max" else "≥"
    value = rule["threshold"]
    text = fixed(value * 100, 1) + (" pp" if is_change(rule.get("metric", "")) else "%") if is_rate(rule.get("metric", "")) \
        else num(value)
    return f"{sign} {text}"


# Why the BBQ asking stopped (gate/measurements/bias/sequential.py's stop values), in words.
_STOPS = {"decided": "stopped: every bias rule decided", "budget": "stopped: budget spent",
          "exhausted": "stopped: every item asked"}


def bias_asking(result: dict) -> str | None:
    """How the BBQ asking ended, from the bias result's `sequential` summary; None where it has none."""
    sequential = result.get("sequential")
    if not sequential:
        return None
    how = (f"confidence sequences, a look every {count(sequential['look_every'])} items"
           if sequential["method"] == "confidence-sequence" else "fixed-size intervals")
    return (f"Asked {count(sequential['items_asked'])} of {count(sequential['items_pool'])} items "
            f"({_STOPS.get(sequential['stop'], sequential['stop'])}; {how}; budget {sequential['budget']}).")


def perplexity_interval_words(result: dict) -> str:
    """How the perplexity ratios' intervals were made, read from the interval (reports of older runs: bootstrap)."""
    comparison = result["comparison"]
    interval = comparison.get("ratio_interval") or comparison.get("bits_per_byte_ratio_interval") or {}
    level = interval.get("level", 0.95)
    if interval.get("method") != "paired-jackknife-t":
        return f"{level:.0%} paired bootstrap over windows"
    spent = "; above 95% so that all the planned looks together err at most 5%" if level > 0.95 + 1e-9 else ""
    return f"{level:.1%} paired t-interval over windows (jackknife{spent})"
