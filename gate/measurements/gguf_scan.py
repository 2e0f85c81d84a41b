"""The checkpoint scan of a GGUF file: zeros, non-finite values and N:M structure of its dequantized tensors.

Quantized blocks are dequantized with the `gguf` package, a bounded number
of rows at a time, and counted as the values the model computes with: a zero
is a weight that dequantizes to exactly 0 (Q4_0 and Q8_0 keep pruned zeros;
an affine type such as Q4_1 keeps them only where a block's minimum is 0).
"""

from __future__ import annotations

import numpy as np

from gate.core.progress import NULL_REPORTER, Reporter
from gate.inputs.gguf import GgufCheckpoint, GgufTensor, read_tensor_rows
from gate.measurements.scan import NM_PATTERNS, CheckpointScan, TensorScan, _chunk_conforms, classify


def scan_gguf(checkpoint: GgufCheckpoint, reporter: Reporter = NULL_REPORTER, label: str = "") -> CheckpointScan:
    tensors = sorted(checkpoint.tensors.values(), key=lambda t: t.offset)
    results = []
    with reporter.task(f"Auditing weights{' of ' + label if label else ''}", total=sum(t.nbytes for t in tensors)) as task:
        for tensor in tensors:
            results.append(_scan_tensor(checkpoint, tensor))
            task.advance(tensor.nbytes)
    return CheckpointScan(path=str(checkpoint.path), tensors=tuple(sorted(results, key=lambda s: s.name)))


def _scan_tensor(checkpoint: GgufCheckpoint, tensor: GgufTensor) -> TensorScan:
    where = classify(tensor.name)
    in_features = tensor.shape[-1] if tensor.shape else 1
    pending = [(n, m) for n, m in NM_PATTERNS if where and len(tensor.shape) == 2 and in_features % m == 0]
    nm: dict[str, bool | None] = {f"{n}:{m}": None for n, m in NM_PATTERNS} if where else {}
    nm.update({f"{n}:{m}": True for n, m in pending})
    zeros = nonfinite = 0
    for rows in read_tensor_rows(checkpoint.path, tensor):
        zeros += rows.size - int(np.count_nonzero(rows))
        nonfinite += rows.size - int(np.count_nonzero(np.isfinite(rows)))
        for n, m in list(pending):
            if not _chunk_conforms(np.ascontiguousarray(rows).reshape(-1), n, m):
                nm[f"{n}:{m}"] = False
                pending.remove((n, m))
    return TensorScan(
        name=tensor.name, dtype=tensor.type_name, shape=tensor.shape, numel=tensor.numel, nbytes=tensor.nbytes,
        zeros=zeros, nonfinite=nonfinite, layer=where[0] if where else None, kind=where[1] if where else None,
        quantized=False, nm=tuple(nm.items()),
    )
