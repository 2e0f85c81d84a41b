"""The scan of whatever a model input is: a safetensors checkpoint, an mlx-lm quantized one, or a GGUF file.

A safetensors checkpoint is streamed as it is stored (gate.measurements.scan);
mlx-lm's packed weights are then counted again on their MLX-dequantized
values (gate.measurements.mlx_scan), and a GGUF file's tensors are
dequantized to be counted (gate.measurements.gguf_scan).
"""

from __future__ import annotations

from gate.core.progress import NULL_REPORTER, Reporter
from gate.inputs.checkpoint import Checkpoint
from gate.inputs.gguf import GgufCheckpoint
from gate.measurements.gguf_scan import scan_gguf
from gate.measurements.mlx_scan import dequantized_scans
from gate.measurements.scan import CheckpointScan, scan_checkpoint


def scan_model_input(checkpoint: Checkpoint | GgufCheckpoint, reporter: Reporter = NULL_REPORTER, label: str = "") -> CheckpointScan:
    if isinstance(checkpoint, GgufCheckpoint):
        return scan_gguf(checkpoint, reporter, label)
    scan = scan_checkpoint(checkpoint, reporter, label)
    packed = [t for t in scan.tensors if t.quantized]
    if not packed:
        return scan
    # mlx-lm's packed weights: counted on their dequantized values where MLX is installed.
    tensors = [t for t in scan.tensors if not t.quantized] + dequantized_scans(checkpoint, packed)
    return CheckpointScan(path=scan.path, tensors=tuple(sorted(tensors, key=lambda t: t.name)))
