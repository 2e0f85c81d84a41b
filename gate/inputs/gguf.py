"""Reading a GGUF file (llama.cpp's format) without loading a model.

A GGUF input is a `.gguf` file, or a directory holding exactly one. Its
header is parsed with the `gguf` package; every tensor must lie inside the
file and have a type that package can dequantize, else the file is refused
with one line (exit 2). Tensor names are given their Hugging Face names
(`blk.3.attn_q.weight` -> `model.layers.3.self_attn.q_proj.weight`) so the
sparsity scope and module kinds read as they do for safetensors checkpoints.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gate.core.errors import CheckpointError, IncompatibleModelsError

GGUF_SUFFIX = ".gguf"

# GGUF block names -> Hugging Face module names, for the Llama family transformers reads.
_BLOCK_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "attn_qkv": "self_attn.qkv_proj",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
}
_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_BLOCK_RE = re.compile(r"blk\.(\d{1,9})\.(\w+)\.(weight|bias)")
# GGUF architecture names that differ from the Hugging Face model_type of the same model.
_SAME_ARCHITECTURE = {"llama": {"llama", "mistral"}}


@dataclass(frozen=True)
class GgufTensor:
    name: str  # Hugging Face name where known, else the GGUF name
    gguf_name: str
    type_name: str  # GGML type: "Q4_1", "F32", ...
    shape: tuple[int, ...]  # row-major, as transformers holds it ([out, in] for a linear)
    numel: int
    nbytes: int
    offset: int  # absolute byte offset of the data in the file

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.nbytes / self.numel if self.numel else 0.0


@dataclass(frozen=True)
class GgufCheckpoint:
    """A validated GGUF file: what the checkpoint steps need, as `Checkpoint` offers it for safetensors."""

    path: Path  # the .gguf file
    architecture: str
    config: dict  # the few Hugging Face config fields derived from the metadata
    weight_files: tuple[Path, ...]
    tensors: dict[str, GgufTensor]
    metadata: dict  # small scalar metadata (general.*, <arch>.*), never the token lists

    @property
    def model_type(self) -> str | None:
        return self.architecture

    @property
    def quantization(self) -> dict | None:
        return None  # GGUF quantization is per tensor: see gate.measurements.quantization


def find_gguf(path: Path) -> Path | None:
    """The GGUF file `path` names (a .gguf file, or a directory holding exactly one and no config.json), else None."""
    path = Path(path)
    if path.is_file():
        return path if path.suffix.lower() == GGUF_SUFFIX else None
    if not path.is_dir() or (path / "config.json").exists():
        return None
    found = sorted(p for p in path.iterdir() if p.suffix.lower() == GGUF_SUFFIX and p.is_file())
    if len(found) > 1:
        raise CheckpointError(f"{path} holds {len(found)} .gguf files ({found[0].name}, {found[1].name}, ...); pass the one to check")
    return found[0] if found else None


def open_gguf(file: Path) -> GgufCheckpoint:
    """Parse and validate a GGUF file's header; one-line CheckpointError for anything unreadable."""
    reader = _reader(file)
    try:
        architecture = str(_field(reader, "general.architecture"))
        metadata = _scalar_metadata(reader)
        tensors = [_tensor(t) for t in reader.tensors]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        raise CheckpointError(f"{file.name} is not a valid GGUF file ({_first_line(error)})") from None
    _check_bounds(file, tensors)
    for tensor in tensors:
        if not dequantizable(tensor.type_name):
            raise CheckpointError(
                f"{file.name}: tensor {tensor.gguf_name[:80]} has type {tensor.type_name}, which gate cannot dequantize "
                f"(readable: {', '.join(sorted(supported_types()))})")
    if not tensors:
        raise CheckpointError(f"{file.name} holds no tensors")
    return GgufCheckpoint(path=file, architecture=architecture, config=_config(architecture, metadata),
                          weight_files=(file,), tensors={t.name: t for t in tensors}, metadata=metadata)


def check_gguf_compatible(gguf: GgufCheckpoint, other: Any, role: str = "candidate") -> None:
    """Refuse, with one line, a GGUF whose architecture or dimensions differ from the other model's."""
    theirs = other.model_type
    if isinstance(theirs, str) and theirs != gguf.architecture and theirs not in _SAME_ARCHITECTURE.get(gguf.architecture, ()):
        raise IncompatibleModelsError(f"the {role} GGUF is a {gguf.architecture} model but the other model is a {theirs} model")
    for key in ("num_hidden_layers", "hidden_size", "vocab_size"):
        mine, yours = gguf.config.get(key), other.config.get(key)
        if isinstance(mine, int) and isinstance(yours, int) and mine != yours:
            raise IncompatibleModelsError(f"the {role} GGUF has {key} {mine} but the other model has {yours}")


def read_tensor_rows(file: Path, tensor: GgufTensor, rows_per_chunk: int = 1024):
    """The tensor dequantized to float32, `rows_per_chunk` rows at a time (bounded memory for large tensors)."""
    from gguf import GGMLQuantizationType, quants

    kind = GGMLQuantizationType[tensor.type_name]
    rows = tensor.shape[0] if len(tensor.shape) > 1 else 1
    row_bytes = tensor.nbytes // rows
    data = np.memmap(file, dtype=np.uint8, mode="r", offset=tensor.offset, shape=(tensor.nbytes,))
    row_shape = tensor.shape[1:] if len(tensor.shape) > 1 else tensor.shape
    for start in range(0, rows, rows_per_chunk):
        count = min(rows_per_chunk, rows - start)
        raw = np.asarray(data[start * row_bytes:(start + count) * row_bytes])
        yield _dequantize(raw, kind, count, row_shape, quants)


def _dequantize(raw: np.ndarray, kind: Any, count: int, row_shape: tuple[int, ...], quants: Any) -> np.ndarray:
    from gguf import GGMLQuantizationType as T

    plain = {T.F32: np.float32, T.F16: np.float16, T.F64: np.float64}
    if kind in plain:
        return raw.view(plain[kind]).astype(np.float32).reshape((count, *row_shape))
    return quants.dequantize(raw.reshape(count, -1), kind).astype(np.float32, copy=False).reshape((count, *row_shape))


@functools.cache
def supported_types() -> frozenset[str]:
    """GGML tensor types the installed `gguf` package dequantizes (F32, F16, BF16, Q4_0, ..., K-quants)."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, quants

    found = {"F32", "F16", "F64"}
    for kind in GGMLQuantizationType:
        if kind.name in found or kind not in GGML_QUANT_SIZES:
            continue
        _, type_size = GGML_QUANT_SIZES[kind]
        try:
            quants.dequantize(np.zeros((1, type_size), dtype=np.uint8), kind)
        except (NotImplementedError, ValueError, TypeError, KeyError):
            continue
        found.add(kind.name)
    return frozenset(found)


def dequantizable(type_name: str) -> bool:
    return type_name in supported_types()


def hf_name(gguf_name: str) -> str:
    """The Hugging Face name of a GGUF tensor where the mapping is known, else the GGUF name itself."""
    match = _BLOCK_RE.fullmatch(gguf_name)
    if match and match.group(2) in _BLOCK_NAMES:
        return f"model.layers.{match.group(1)}.{_BLOCK_NAMES[match.group(2)]}.{match.group(3)}"
    stem, _, suffix = gguf_name.rpartition(".")
    return f"{_TOP_NAMES[stem]}.{suffix}" if stem in _TOP_NAMES else gguf_name


def _reader(file: Path) -> Any:
    try:
        from gguf import GGUFReader
    except ImportError:
        raise CheckpointError("reading GGUF files needs the gguf package: pip install gguf") from None
    try:
        return GGUFReader(str(file), "r")
    except OSError as error:
        raise CheckpointError(f"cannot read {file}: {error.strerror or _first_line(error)}") from None
    except Exception as error:  # noqa: BLE001 - the parser raises many kinds on a truncated or corrupt header
        raise CheckpointError(f"{file.name} is not a valid GGUF file (truncated or corrupt: {_first_line(error)})") from None


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    if field is None:
        raise KeyError(f"no {key} in its metadata")
    return field.contents()


def _scalar_metadata(reader: Any) -> dict:
    """Metadata that is a number or a short string: names, hyperparameters, file type; never the vocabulary."""
    found = {}
    for key, field in reader.fields.items():
        if key.startswith("tokenizer.") and key not in ("tokenizer.ggml.model", "tokenizer.ggml.pre"):
            continue
        if len(field.types) != 1:
            continue  # an array
        value = field.contents()
        if isinstance(value, (int, float)) or (isinstance(value, str) and len(value) <= 200):
            found[key] = value
    return found


def _config(architecture: str, metadata: dict) -> dict:
    """The Hugging Face config fields the compatibility check compares."""
    def integer(key: str) -> int | None:
        value = metadata.get(f"{architecture}.{key}")
        return value if isinstance(value, int) else None

    return {"model_type": architecture, "num_hidden_layers": integer("block_count"),
            "hidden_size": integer("embedding_length"), "vocab_size": integer("vocab_size")}


def _tensor(raw: Any) -> GgufTensor:
    shape = tuple(int(d) for d in reversed(raw.shape.tolist()))  # GGUF lists the fastest dimension first
    return GgufTensor(name=hf_name(raw.name), gguf_name=raw.name, type_name=raw.tensor_type.name, shape=shape,
                      numel=math.prod(shape), nbytes=int(raw.n_bytes), offset=int(raw.data_offset))


def _check_bounds(file: Path, tensors: list[GgufTensor]) -> None:
    size = file.stat().st_size
    names = set()
    for tensor in tensors:
        if tensor.offset + tensor.nbytes > size:
            raise CheckpointError(f"{file.name} is truncated: tensor {tensor.gguf_name[:80]} ends past the end of the file")
        if tensor.name in names:
            raise CheckpointError(f"{file.name} holds tensor {tensor.gguf_name[:80]} twice")
        names.add(tensor.name)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:160] if text else type(error).__name__
