"""One streaming pass over a checkpoint's tensors: zeros, non-finite values, N:M structure.

Sparsity and size are both computed from this scan, so a checkpoint is read
once. Floats are inspected as bit patterns: a zero is any value whose bits
other than the sign are all 0 (negative zero counts), a non-finite value one
whose exponent bits are all 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from gate.inputs.checkpoint import CHUNK_BYTES, FLOAT_DTYPES, Checkpoint, TensorInfo, stream_chunks
from gate.core.progress import NULL_REPORTER, Reporter

# Linear layers inside the transformer blocks: the "prunable" scope (measurements.md §1), the one definition
# of it in gate/. It includes the fused projections (Phi-3's qkv_proj, gate_up_proj) so that a fused model's
# sparsity counts every block weight; the demo, a Llama layout without them, prunes the rest (demo/pruning.py).
PRUNABLE_KINDS = ("q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "gate_proj", "up_proj", "down_proj", "gate_up_proj")
FUSED_KINDS = ("qkv_proj", "gate_up_proj")
# At most 9 digits: a name is input, and a 5,000-digit "layer" is no layer (int() would refuse it).
_SCOPE_RE = re.compile(
    r"(?:^|\.)layers\.(\d{1,9})\.(?:self_attn|attention|mlp|feed_forward)\.(" + "|".join(PRUNABLE_KINDS) + r")\.weight$"
)
# N:M patterns checked on every prunable tensor: at most N non-zeros in each M consecutive inputs.
NM_PATTERNS = ((2, 4), (4, 8))

# (mask clearing the sign bit, smallest masked pattern that is Inf or NaN) per float dtype.
_FLOAT_BITS = {
    "BF16": (0x7FFF, 0x7F80),
    "F16": (0x7FFF, 0x7C00),
    "F32": (0x7FFF_FFFF, 0x7F80_0000),
    "F64": (0x7FFF_FFFF_FFFF_FFFF, 0x7FF0_0000_0000_0000),
    "F8_E4M3": (0x7F, 0x7F),  # e4m3fn has no Inf; 0x7F is its NaN
    "F8_E5M2": (0x7F, 0x7C),
}
# Multiplying packed 0/1 bytes by this constant sums them into the top byte.
_BYTE_SUM = {4: (np.uint32, np.uint32(0x0101_0101), np.uint32(24)),
             8: (np.uint64, np.uint64(0x0101_0101_0101_0101), np.uint64(56))}


@dataclass(frozen=True)
class TensorScan:
    name: str
    dtype: str
    shape: tuple[int, ...]
    numel: int
    nbytes: int
    zeros: int
    nonfinite: int
    layer: int | None  # block index, for prunable tensors
    kind: str | None  # module kind (q_proj, ...), for prunable tensors
    quantized: bool  # packed integer weights: zeros are not weights, sparsity not measured
    nm: tuple[tuple[str, bool | None], ...]  # ("2:4", conforms?) — None where not applicable

    @property
    def prunable(self) -> bool:
        return self.kind is not None

    @property
    def nonzeros(self) -> int:
        return self.numel - self.zeros

    def conforms(self, pattern: str) -> bool | None:
        return dict(self.nm).get(pattern)


@dataclass(frozen=True)
class CheckpointScan:
    path: str
    tensors: tuple[TensorScan, ...]

    @property
    def prunable(self) -> tuple[TensorScan, ...]:
        return tuple(t for t in self.tensors if t.prunable and not t.quantized)


def classify(name: str) -> tuple[int, str] | None:
    """(layer, module kind) for a prunable weight's name, else None."""
    m = _SCOPE_RE.search(name)
    return (int(m.group(1)), m.group(2)) if m else None


def scan_checkpoint(checkpoint: Checkpoint, reporter: Reporter = NULL_REPORTER, label: str = "") -> CheckpointScan:
    # File order makes the reads sequential.
    tensors = sorted(checkpoint.tensors.values(), key=lambda t: (str(t.file), t.offset))
    scanners = {t.name: _TensorScanner(t, _is_packed(t, checkpoint)) for t in tensors}
    with reporter.task(f"Auditing weights{' of ' + label if label else ''}", total=sum(t.nbytes for t in tensors)) as task:
        for tensor, chunk in stream_chunks(tensors, CHUNK_BYTES):
            scanners[tensor.name].add(chunk)
            task.advance(chunk.nbytes)
    results = sorted((s.result() for s in scanners.values()), key=lambda s: s.name)
    return CheckpointScan(path=str(checkpoint.path), tensors=tuple(results))


def _is_packed(tensor: TensorInfo, checkpoint: Checkpoint) -> bool:
    base = tensor.name.removesuffix(".weight")
    return tensor.dtype not in FLOAT_DTYPES and f"{base}.scales" in checkpoint.tensors


class _TensorScanner:
    """Counts for one tensor, accumulated chunk by chunk."""

    def __init__(self, tensor: TensorInfo, quantized: bool):
        self.tensor, self.quantized = tensor, quantized
        self.where = classify(tensor.name)
        self.bits = _FLOAT_BITS.get(tensor.dtype)
        self.zeros = self.nonfinite = 0
        in_features = tensor.shape[-1] if tensor.shape else 1
        # An N:M check is only possible when groups tile each row, and only worth doing while it still holds.
        self.pending = [(n, m) for n, m in NM_PATTERNS
                        if self.where and not quantized and len(tensor.shape) == 2 and in_features % m == 0]
        self.nm: dict[str, bool | None] = {f"{n}:{m}": None for n, m in NM_PATTERNS} if self.where else {}
        self.nm.update({f"{n}:{m}": True for n, m in self.pending})

    def add(self, chunk: np.ndarray) -> None:
        """Count one chunk (overwritten in place: the chunk is the reader's scratch buffer)."""
        values = chunk
        if self.bits is not None:
            # In place: the chunk is ours until the next one is asked for, and one pass less of memory traffic.
            values = np.bitwise_and(chunk, chunk.dtype.type(self.bits[0]), out=chunk)
            if values.size and values.max() >= self.bits[1]:
                self.nonfinite += int(np.count_nonzero(values >= self.bits[1]))
        self.zeros += values.size - int(np.count_nonzero(values))
        for n, m in list(self.pending):
            if not _chunk_conforms(values, n, m):
                self.nm[f"{n}:{m}"] = False
                self.pending.remove((n, m))

    def result(self) -> TensorScan:
        t, where = self.tensor, self.where
        return TensorScan(
            name=t.name, dtype=t.dtype, shape=t.shape, numel=t.numel, nbytes=t.nbytes, zeros=self.zeros,
            nonfinite=self.nonfinite, layer=where[0] if where else None, kind=where[1] if where else None,
            quantized=self.quantized, nm=tuple(self.nm.items()),
        )


def _chunk_conforms(values: np.ndarray, n: int, m: int) -> bool:
    """Every group of m consecutive elements has at most n non-zeros."""
    nonzero = (values != 0).view(np.uint8)
    word, spread, shift = _BYTE_SUM[m]
    counts = (nonzero.view(word) * spread) >> shift
    return int(counts.max(initial=0)) <= n
