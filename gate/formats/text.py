"""Number formatting shared by the output formats."""

from __future__ import annotations


def pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) or (abs(value) >= 1000 and float(value).is_integer()):
        return f"{int(value):,}"
    return f"{value:.{digits}g}"


def signed(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:+.{digits}g}"


def size(n: int | None) -> str:
    if n is None:
        return "—"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def interval(iv: dict | None, digits: int = 4) -> str:
    if not iv or iv.get("low") is None or iv.get("high") is None:
        return "—"
    return f"[{iv['low']:.{digits}g}, {iv['high']:.{digits}g}]"


def level(value: float) -> str:
    """A confidence level: "95%", "95.3%", "99.9%"."""
    return f"{value * 100:.1f}".removesuffix(".0") + "%"


def metric_label(metric: str, category: str | None) -> str:
    return f"{metric} [{category}]" if category else metric
