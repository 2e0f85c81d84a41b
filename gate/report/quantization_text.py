"""The quantization lines every report format shows, as plain text (each format escapes them).

Read from the JSON document, whose values are input when `gate report`
re-renders a saved file: anything of the wrong type is left out, never shown raw.
"""

from __future__ import annotations

from typing import Any

_ROLES = ("candidate", "base")


def quantization_lines(doc: dict) -> list[str]:
    """A few lines per quantized model: scheme, bits per weight overall and per kind, what stayed wide, size bought."""
    lines: list[str] = []
    for role in _ROLES:
        model = doc.get(role)
        quantization = model.get("quantization") if isinstance(model, dict) else None
        if isinstance(quantization, dict):
            lines.extend(_model_lines(role, quantization))
    return lines


def _model_lines(role: str, q: dict) -> list[str]:
    fmt, scheme = _text(q.get("format")).upper() or "?", _text(q.get("scheme"))
    group = q.get("group_size")
    head = f"{role}: {fmt} {scheme}; {_bits(q.get('bits_per_weight'))} bits per weight overall"
    if _number(q.get("quantized_bits_per_weight")) and _number(q.get("quantized_tensors")):
        head += f", {_bits(q['quantized_bits_per_weight'])} in its {int(q['quantized_tensors'])} quantized tensors"
    if isinstance(group, int) and not isinstance(group, bool):
        head += f" (group size {group})"
    lines = [head]
    kinds = [k for k in q.get("by_kind") or [] if isinstance(k, dict)]
    if kinds:
        lines.append("  bits per weight by module kind: " + ", ".join(
            f"{_text(k.get('kind'))} {_bits(k.get('bits_per_weight'))} ({'/'.join(_text(t) for t in k.get('types') or [])})"
            for k in kinds))
    plain = q.get("unquantized_tensors")
    if _number(plain) and plain:
        kinds_text = ", ".join(_text(k) for k in q.get("unquantized_kinds") or [])
        types_text = ", ".join(_text(t) for t in q.get("unquantized_types") or [])
        lines.append(f"  left unquantized: {int(plain)} tensors ({kinds_text}; stored as {types_text})")
    stored, wide = q.get("tensor_bytes"), q.get("bytes_16bit")
    if _number(stored) and _number(wide) and wide:
        lines.append(f"  size bought: {_mb(stored)} for tensors that take {_mb(wide)} at 16 bits "
                     f"({stored / wide:.2f}×, {_mb(wide - stored)} saved)")
    return lines


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bits(value: Any) -> str:
    return f"{value:.2f}" if _number(value) else "?"


def _mb(value: float) -> str:
    return f"{value / 1e6:,.1f} MB"


def _text(value: Any) -> str:
    return value[:120] if isinstance(value, str) else ""
