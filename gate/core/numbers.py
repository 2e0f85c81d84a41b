"""The one way figures become text, for reports and for the messages the verdict writes.

Three significant digits; rates as percentages with one decimal (their
changes in percentage points); figures shown together (a value and its
interval, base → candidate) in one precision; signed changes with an
explicit sign, and never "+0"; counts with thousands separators. Pure
functions of numbers: the domain (gate/policy/verdict.py) and every output format
(gate/report/) share them without depending on each other.
"""

from __future__ import annotations

import math

DASH = "—"
SIG = 3
ZERO = 1e-12  # below this a figure is floating-point noise around zero (a change of -2e-17)


def missing(value) -> bool:
    """None or a non-finite float: shown as a dash."""
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def decimals(*values: float | None) -> int | None:
    """Decimals that give the largest of `values` three significant digits; None for scientific notation."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and abs(v) >= ZERO]
    if not finite:
        return 0
    largest = max(finite)
    if largest < 1e-4:
        return None
    exponent = int(f"{largest:.{SIG - 1}e}".split("e")[1])  # after rounding: 0.09999 counts as 0.100
    return SIG - 1 - exponent


def fixed(value: float, places: int | None, sign: bool = False) -> str:
    """`value` with `places` decimals (None: scientific notation), an explicit sign if `sign`, never "+0"."""
    if abs(value) < ZERO:
        value, places = 0.0, places if places is not None else 0
    if places is None:
        text = f"{value:{'+' if sign else ''}.{SIG - 1}e}"
    elif places <= 0:  # 1234.5 -> 1,230: round to the third digit, then print the integer
        text = f"{int(round(value, places)):{'+' if sign else ''},}"
    else:
        text = f"{value:{'+' if sign else ''},.{places}f}"
    if not any(ch in "123456789" for ch in text.split("e")[0]):
        text = text.lstrip("+-")  # a figure that rounds to zero carries no sign: never "+0" or "-0.0"
    return text


def together(*values: float | None, sign: bool = False) -> list[str]:
    """Figures of one kind in one precision, set by the largest: (0, 0.1) reads 0.000, 0.100."""
    places = decimals(*(v for v in values if not missing(v)))
    return [DASH if missing(v) else fixed(v, places, sign) for v in values]


def num(value: float | None) -> str:
    """A figure to three significant digits: 0.00667, 1.03, 41.2, 1,230; integers in full."""
    if missing(value):
        return DASH
    if isinstance(value, int) and not isinstance(value, bool):
        return count(value)
    return fixed(value, decimals(value))


def signed(value: float | None) -> str:
    """A change: +0.0123, -1.5, 0 (never +0)."""
    return DASH if missing(value) else fixed(value, decimals(value), sign=True)


def arrow(before: float | None, after: float | None) -> str:
    """Two figures of one kind, base → candidate, in one precision: 0 → 0.100 reads 0.000 → 0.100."""
    return " → ".join(together(before, after))


def count(n: int | float | None) -> str:
    return DASH if missing(n) else f"{int(n):,}"


def pct(rate: float | None) -> str:
    """A rate as a percentage with one decimal: 0.4567 -> 45.7%."""
    return DASH if missing(rate) else fixed(rate * 100, 1) + "%"


def signed_pct(change: float | None) -> str:
    """A change in a rate, in percentage points: +0.7 pp, -12.3 pp, 0.0 pp."""
    return DASH if missing(change) else fixed(change * 100, 1, sign=True) + " pp"


def interval(iv: dict | None, value: float | None = None) -> str:
    """[low, high] in the precision of the figure it qualifies (the largest of the three sets it)."""
    if not iv or missing(iv.get("low")) or missing(iv.get("high")):
        return DASH
    places = decimals(value, iv["low"], iv["high"])
    return f"[{fixed(iv['low'], places)}, {fixed(iv['high'], places)}]"


def figure(value: float | None, iv: dict | None = None, sign: bool = False) -> tuple[str, str]:
    """A figure and its interval, sharing one precision."""
    if missing(value):
        return DASH, interval(iv)
    bounds = (iv or {}).get("low"), (iv or {}).get("high")
    return together(value, *(b for b in bounds if not missing(b)), sign=sign)[0], interval(iv, value)


def pct_interval(iv: dict | None, unit: str = "%") -> str:
    """An interval on a rate in percent, one decimal; `unit` " pp" for a change, "" where a header names it."""
    if not iv or missing(iv.get("low")) or missing(iv.get("high")):
        return DASH
    return f"[{fixed(iv['low'] * 100, 1)}, {fixed(iv['high'] * 100, 1)}]{unit}"


def size(n: int | float | None) -> str:
    """Bytes in binary units, three significant digits: 256 MiB, 1.23 GiB, 512 B."""
    if missing(n):
        return DASH
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{num(n / scale)} {unit}"
    return f"{int(n):,} B"


def seconds(value: float | None) -> str:
    return DASH if missing(value) else f"{num(float(value))} s"


def level(value: float) -> str:
    """A confidence level: "95%", "95.3%", "99.9%"."""
    return f"{value * 100:.1f}".removesuffix(".0") + "%"
