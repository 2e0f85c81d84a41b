"""The one number formatter every report uses.

Three significant digits; rates as percentages with one decimal (their
changes in percentage points); an interval in the same precision as its
figure; signed changes with an explicit sign, and never "+0"; counts with
thousands separators.
"""

from __future__ import annotations

import math

DASH = "—"
SIG = 3
ZERO = 1e-12  # below this a figure is floating-point noise around zero (a change of -2e-17)

# Metric keys whose figures are rates (shares of items or of weights): shown as percentages.
_RATE_KEYS = ("bias.srs", "bias.usr", "bias.accuracy_amb", "bias.accuracy_dis", "bias.soft_srs", "bias.emergence_rate",
              "bias.parse_failure_rate", "sparsity.", "size.sparse_saving")


def _decimals(*values: float | None) -> int | None:
    """Decimals that give the largest of `values` three significant digits; None for scientific notation."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and abs(v) >= ZERO]
    if not finite:
        return 0
    largest = max(finite)
    if largest < 1e-4:
        return None
    exponent = int(f"{largest:.{SIG - 1}e}".split("e")[1])  # after rounding: 0.09999 counts as 0.100
    return SIG - 1 - exponent


def _fixed(value: float, decimals: int | None, sign: bool = False) -> str:
    if abs(value) < ZERO:
        value, decimals = 0.0, decimals if decimals is not None else 0
    if decimals is None:
        text = f"{value:{'+' if sign else ''}.{SIG - 1}e}"
    elif decimals <= 0:  # 1234.5 -> 1,230: round to the third digit, then print the integer
        text = f"{int(round(value, decimals)):{'+' if sign else ''},}"
    else:
        text = f"{value:{'+' if sign else ''},.{decimals}f}"
    if not any(ch in "123456789" for ch in text.split("e")[0]):
        text = text.lstrip("+-")  # a figure that rounds to zero carries no sign: never "+0" or "-0.0"
    return text


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def num(value: float | None) -> str:
    """A figure to three significant digits: 0.00667, 1.03, 41.2, 1,230; integers in full."""
    if _missing(value):
        return DASH
    if isinstance(value, int) and not isinstance(value, bool):
        return count(value)
    return _fixed(value, _decimals(value))


def signed(value: float | None) -> str:
    """A change: +0.0123, -1.5, 0 (never +0)."""
    return DASH if _missing(value) else _fixed(value, _decimals(value), sign=True)


def arrow(before: float | None, after: float | None) -> str:
    """Two figures of one kind, base → candidate, in one precision: 0 → 0.100 reads 0.000 → 0.100."""
    decimals = _decimals(*(v for v in (before, after) if not _missing(v)))
    return " → ".join(DASH if _missing(v) else _fixed(v, decimals) for v in (before, after))


def count(n: int | float | None) -> str:
    return DASH if _missing(n) else f"{int(n):,}"


def pct(rate: float | None) -> str:
    """A rate as a percentage with one decimal: 0.4567 -> 45.7%."""
    return DASH if _missing(rate) else _fixed(rate * 100, 1) + "%"


def signed_pct(change: float | None) -> str:
    """A change in a rate, in percentage points: +0.7 pp, -12.3 pp, 0.0 pp."""
    return DASH if _missing(change) else _fixed(change * 100, 1, sign=True) + " pp"


def interval(iv: dict | None, value: float | None = None) -> str:
    """[low, high] in the precision of the figure it qualifies (the largest of the three sets it)."""
    if not iv or _missing(iv.get("low")) or _missing(iv.get("high")):
        return DASH
    decimals = _decimals(value, iv["low"], iv["high"])
    return f"[{_fixed(iv['low'], decimals)}, {_fixed(iv['high'], decimals)}]"


def figure(value: float | None, iv: dict | None = None, sign: bool = False) -> tuple[str, str]:
    """A figure and its interval, sharing one precision."""
    if _missing(value):
        return DASH, interval(iv)
    bounds = (iv or {}).get("low"), (iv or {}).get("high")
    decimals = _decimals(value, *(b for b in bounds if not _missing(b)))
    text = _fixed(value, decimals, sign=sign)
    return text, interval(iv, value)


def pct_interval(iv: dict | None, unit: str = "%") -> str:
    """An interval on a rate in percent, one decimal; `unit` " pp" for a change, "" where a header names it."""
    if not iv or _missing(iv.get("low")) or _missing(iv.get("high")):
        return DASH
    return f"[{_fixed(iv['low'] * 100, 1)}, {_fixed(iv['high'] * 100, 1)}]{unit}"


def size(n: int | float | None) -> str:
    """Bytes in binary units, three significant digits: 256 MiB, 1.23 GiB, 512 B."""
    if _missing(n):
        return DASH
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{num(n / scale)} {unit}"
    return f"{int(n):,} B"


def seconds(value: float | None) -> str:
    return DASH if _missing(value) else f"{num(float(value))} s"


def level(value: float) -> str:
    """A confidence level: "95%", "95.3%", "99.9%"."""
    return f"{value * 100:.1f}".removesuffix(".0") + "%"


def is_rate(key: str) -> bool:
    """Whether a metric key names a rate (shown in percent) rather than a ratio or a score."""
    return any(key == k or key.startswith(k + ".") or (k.endswith(".") and key.startswith(k)) for k in _RATE_KEYS)


def metric_value(key: str, value: float | None, iv: dict | None = None, change: bool = False) -> tuple[str, str]:
    """A metric's figure and interval, in the metric's unit: rates in percent, changes signed."""
    if key.endswith("relative_change"):
        return (DASH if _missing(value) else _fixed(value * 100, 1, sign=True) + "%"), pct_interval(iv)
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

STATUS_ICON = {"PASS": "✔", "FAIL": "✘", "INCONCLUSIVE": "?", "pass": "✔", "fail": "✘", "inconclusive": "?",
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
    if _missing(rule.get("threshold")):
        return DASH
    sign = "≤" if rule.get("direction") == "max" else "≥"
    value = rule["threshold"]
    text = _fixed(value * 100, 1) + (" pp" if is_change(rule.get("metric", "")) else "%") if is_rate(rule.get("metric", "")) \
        else num(value)
    return f"{sign} {text}"
