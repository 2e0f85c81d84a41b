"""Opening whatever a model reference names: a safetensors checkpoint directory or a GGUF file.

The checkpoint steps (sparsity, size) and the compatibility check take
either; the model steps load a runtime's form of it (gate.runtime.runnable).
"""

from __future__ import annotations

from pathlib import Path

from gate.inputs.checkpoint import Checkpoint, open_checkpoint
from gate.inputs.compat import check_compatible
from gate.inputs.gguf import GgufCheckpoint, check_gguf_compatible, find_gguf, open_gguf


def open_model_input(path: Path) -> Checkpoint | GgufCheckpoint:
    gguf = find_gguf(Path(path))
    return open_gguf(gguf) if gguf is not None else open_checkpoint(path)


def check_inputs_compatible(candidate: Checkpoint | GgufCheckpoint, base: Checkpoint | GgufCheckpoint) -> None:
    """Same architecture and dimensions; tensor by tensor where both are safetensors checkpoints."""
    if isinstance(candidate, GgufCheckpoint):
        check_gguf_compatible(candidate, base, "candidate")
    elif isinstance(base, GgufCheckpoint):
        check_gguf_compatible(base, candidate, "base")
    else:
        check_compatible(candidate, base)
