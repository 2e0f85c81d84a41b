"""Can a candidate be compared with its base at all?

Same architecture, same tensors, same shapes. Packed quantized weights (an
mlx-lm 4-bit candidate of a bf16 base) are compared by name only, and the
quantization side tensors (`.scales`, `.biases`) are ignored.
"""

from __future__ import annotations

from gate.inputs.checkpoint import FLOAT_DTYPES, Checkpoint
from gate.core.errors import IncompatibleModelsError

_QUANT_SIDE_TENSORS = (".scales", ".biases")
# Tied embeddings: one checkpoint may store the LM head and the other not.
_OPTIONAL = frozenset({"lm_head.weight"})


def check_compatible(candidate: Checkpoint, base: Checkpoint) -> None:
    c_type, b_type = candidate.model_type, base.model_type
    if c_type and b_type and c_type != b_type:
        raise IncompatibleModelsError(f"candidate is a {c_type} model but the base is a {b_type} model")
    c_names, b_names = _weight_names(candidate), _weight_names(base)
    missing, extra = sorted(b_names - c_names - _OPTIONAL), sorted(c_names - b_names - _OPTIONAL)
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"has {extra[0]}, which the base lacks"
        more = len(missing) + len(extra) - 1
        raise IncompatibleModelsError(f"candidate and base have different tensors: candidate {what}"
                                      + (f" ({more} more differences)" if more else ""))
    for name in sorted(c_names & b_names):
        c, b = candidate.tensors[name], base.tensors[name]
        if c.dtype in FLOAT_DTYPES and b.dtype in FLOAT_DTYPES and c.shape != b.shape:
            raise IncompatibleModelsError(
                f"tensor {name} has shape {list(c.shape)} in the candidate but {list(b.shape)} in the base"
            )


def _weight_names(checkpoint: Checkpoint) -> set[str]:
    return {n for n in checkpoint.tensors if not n.endswith(_QUANT_SIDE_TENSORS)}
