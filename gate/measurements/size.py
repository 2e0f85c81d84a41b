"""Size on disk, and what a sparse encoding of the same weights would take.

Safetensors stores every tensor dense, so unstructured zeros save nothing on
disk. Beside the actual bytes this reports the achievable figure: each
prunable tensor stored in the smallest of dense, bitmask ((1 − s)·b bytes per
element plus one bit per element) and, where it conforms, 2:4 (half the
values plus a 2-bit index per kept value); other tensors and the file headers
stay as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gate.inputs.checkpoint import Checkpoint
from gate.measurements.scan import CheckpointScan, TensorScan
from gate.core.result import Metric


@dataclass(frozen=True)
class ModelSize:
    weight_file_bytes: int  # apparent size of the weight files
    allocated_bytes: int  # blocks the weight files occupy (less if the filesystem stores holes)
    directory_bytes: int  # every file under the checkpoint directory
    prunable_bytes: int  # dense bytes of the prunable tensors
    bitmask_bytes: int  # the weight files with every prunable tensor bitmask-encoded
    best_sparse_bytes: int  # the weight files with each prunable tensor in its smallest encoding
    nm24_tensors: int  # prunable tensors that conform to 2:4, so could be stored in that form

    @property
    def sparse_saving(self) -> float:
        """Fraction of the weight files a sparse encoding would save."""
        return 1 - self.best_sparse_bytes / self.weight_file_bytes if self.weight_file_bytes else 0.0


def bitmask_bytes(t: TensorScan) -> int:
    # Stored bytes per element may be fractional (a GGUF Q4_1 weight takes 5 bits): scale the tensor's bytes.
    return (t.nbytes * t.nonzeros // t.numel if t.numel else 0) + (t.numel + 7) // 8


def nm24_bytes(t: TensorScan) -> int:
    kept = t.numel // 2
    return (t.nbytes * kept // t.numel if t.numel else 0) + (kept * 2 + 7) // 8


def measure_size(checkpoint: Checkpoint, scan: CheckpointScan) -> ModelSize:
    files = [f.stat() for f in checkpoint.weight_files]
    file_bytes = sum(s.st_size for s in files)
    prunable = scan.prunable
    dense = sum(t.nbytes for t in prunable)
    bitmask = sum(bitmask_bytes(t) for t in prunable)
    best = sum(min([t.nbytes, bitmask_bytes(t)] + ([nm24_bytes(t)] if t.conforms("2:4") else [])) for t in prunable)
    return ModelSize(
        weight_file_bytes=file_bytes,
        allocated_bytes=sum(getattr(s, "st_blocks", 0) * 512 for s in files) or file_bytes,
        directory_bytes=_directory_bytes(checkpoint.path),
        prunable_bytes=dense,
        bitmask_bytes=file_bytes - dense + bitmask,
        best_sparse_bytes=file_bytes - dense + best,
        nm24_tensors=sum(1 for t in prunable if t.conforms("2:4")),
    )


def _directory_bytes(path: Path) -> int:
    if path.is_file():  # a GGUF file is the whole model
        return path.stat().st_size
    # os.stat follows file links: a Hugging Face cache snapshot is a directory of links to blobs.
    total = 0
    for root, _dirs, names in os.walk(path, followlinks=False):
        for name in names:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


@dataclass(frozen=True)
class SizeComparison:
    candidate: ModelSize
    base: ModelSize

    @property
    def ratio(self) -> float | None:
        return self.candidate.weight_file_bytes / self.base.weight_file_bytes if self.base.weight_file_bytes else None

    def metrics(self) -> tuple[Metric, ...]:
        c, b = self.candidate, self.base
        return (
            Metric("size.ratio", self.ratio, base=b.weight_file_bytes, candidate=c.weight_file_bytes, unit="bytes"),
            Metric("size.sparse_saving", c.sparse_saving, base=c.weight_file_bytes, candidate=c.best_sparse_bytes, unit="bytes"),
        )
