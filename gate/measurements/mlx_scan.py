"""Scanning mlx-lm's packed weights as the values the model computes with.

A packed uint32 word holds 8 four-bit codes, so its zeros say nothing about
the weights. Where MLX is installed, each packed weight is dequantized
(exactly scale·q + bias, by MLX) and counted like a float tensor; MLX's
affine quantization keeps an exact zero exactly zero, so the sparsity of a
pruned-then-quantized model is still measured. Without MLX the packed
weights stay marked as not measured.
"""

from __future__ import annotations

import numpy as np

from gate.inputs.checkpoint import Checkpoint
from gate.measurements.scan import NM_PATTERNS, TensorScan, _chunk_conforms, classify


def dequantized_scans(checkpoint: Checkpoint, packed: list[TensorScan]) -> list[TensorScan]:
    """Each packed weight's scan redone on its dequantized values; unchanged when MLX is not installed."""
    try:
        import mlx.core as mx
    except ImportError:
        return packed
    from gate.runtime.dequantize import dequantize_packed

    settings = checkpoint.quantization or {}
    rescanned = []
    for file in checkpoint.weight_files:
        names = [t for t in packed if checkpoint.tensors[t.name].file == file]
        if not names:
            continue
        arrays = mx.load(str(file))
        for scan in names:
            values = np.array(dequantize_packed(mx, arrays, scan.name, settings), copy=False)
            rescanned.append(_scan_values(scan, values, _stored_bytes(checkpoint, scan.name)))
    return rescanned


def _stored_bytes(checkpoint: Checkpoint, name: str) -> int:
    stem = name.removesuffix(".weight")
    return sum(checkpoint.tensors[n].nbytes for n in (name, f"{stem}.scales", f"{stem}.biases") if n in checkpoint.tensors)


def _scan_values(packed: TensorScan, values: np.ndarray, nbytes: int) -> TensorScan:
    where = classify(packed.name)
    nm: dict[str, bool | None] = {f"{n}:{m}": None for n, m in NM_PATTERNS} if where else {}
    if where and values.ndim == 2:
        flat = np.ascontiguousarray(values).reshape(-1)
        nm.update({f"{n}:{m}": _chunk_conforms(flat, n, m) for n, m in NM_PATTERNS if values.shape[-1] % m == 0})
    return TensorScan(
        name=packed.name, dtype=packed.dtype, shape=tuple(values.shape), numel=int(values.size), nbytes=nbytes,
        zeros=int(values.size - np.count_nonzero(values)), nonfinite=int(values.size - np.count_nonzero(np.isfinite(values))),
        layer=where[0] if where else None, kind=where[1] if where else None, quantized=False, nm=tuple(nm.items()),
    )
