"""Reading checkpoint directories without loading them.

A checkpoint is a directory in Hugging Face layout (config.json plus
`model.safetensors`, or shards listed in `model.safetensors.index.json`); the
directories mlx-lm writes have the same layout. Only the safetensors headers
are parsed here; tensor data is streamed in bounded chunks by `iter_chunks`,
so auditing a 14 GB checkpoint needs a few MB of memory, not 14 GB.

Pickle checkpoints (`*.bin`, `*.pt`, `*.pth`, `*.ckpt`) are refused: loading
them runs arbitrary code.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from gate.errors import CheckpointError, UnsafeCheckpointError

INDEX_FILE = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# The safetensors spec caps the header at 100 MB; anything larger is corrupt.
MAX_HEADER_BYTES = 100 * 1024 * 1024
CHUNK_BYTES = 4 * 1024 * 1024

# Bytes per element of each safetensors dtype.
DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2,
    "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1,
    "U64": 8, "U32": 4, "U16": 2, "U8": 1,
    "BOOL": 1,
}
FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"})


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # safetensors dtype name, e.g. "BF16"
    shape: tuple[int, ...]
    file: Path
    offset: int  # absolute byte offset of the data in `file`
    nbytes: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return DTYPE_BYTES[self.dtype]


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint directory whose weight files have been validated."""

    path: Path
    config: dict
    weight_files: tuple[Path, ...]
    tensors: dict[str, TensorInfo]

    @property
    def model_type(self) -> str | None:
        return self.config.get("model_type")

    @property
    def quantization(self) -> dict | None:
        """mlx-lm's quantization settings ({"group_size", "bits"}), if any."""
        q = self.config.get("quantization") or self.config.get("quantization_config")
        return q if isinstance(q, dict) else None


def open_checkpoint(path: Path) -> Checkpoint:
    """Validate a checkpoint directory and parse every weight file's header."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no such file or directory: {path}")
    if path.is_file():
        if path.suffix in PICKLE_SUFFIXES:
            raise _pickle_refusal(path, [path])
        raise CheckpointError(f"{path} is a file; pass the checkpoint directory that holds config.json and the weights")
    config = _read_config(path)
    files = _weight_files(path)
    tensors: dict[str, TensorInfo] = {}
    for file in files:
        for info in read_header(file):
            if info.name in tensors:
                raise CheckpointError(f"tensor {info.name} appears in both {tensors[info.name].file.name} and {file.name}")
            tensors[info.name] = info
    if not tensors:
        raise CheckpointError(f"no tensors in the weight files of {path}")
    return Checkpoint(path=path, config=config, weight_files=tuple(files), tensors=tensors)


def _read_config(path: Path) -> dict:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"no config.json in {path}: not a Hugging Face or mlx-lm checkpoint directory")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config_file} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_file} does not hold a JSON object")
    return config


def _weight_files(path: Path) -> list[Path]:
    index = path / INDEX_FILE
    if index.is_file():
        return _shards_from_index(index)
    files = sorted(p for p in path.glob("*.safetensors") if p.is_file())
    if files:
        return files
    pickles = sorted(p for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise _pickle_refusal(path, pickles)
    raise CheckpointError(f"no weight files (*.safetensors) in {path}")


def _shards_from_index(index: Path) -> list[Path]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        shard_names = sorted(set(weight_map.values()))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{index} is not a valid safetensors index ({type(exc).__name__}: {exc})") from None
    shards = [index.parent / name for name in shard_names]
    missing = [s.name for s in shards if not s.is_file()]
    if missing:
        raise CheckpointError(f"shard {missing[0]} named in {index.name} is missing from {index.parent}"
                              + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return shards


def _pickle_refusal(path: Path, pickles: list[Path]) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"{path} holds only pickle weights ({pickles[0].name}); loading them would run arbitrary code, "
        "so gate refuses: convert the checkpoint to safetensors first"
    )


def read_header(file: Path) -> list[TensorInfo]:
    """Parse and validate one safetensors file's header (no tensor data is read)."""
    size = file.stat().st_size
    with open(file, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise CheckpointError(f"{file} is truncated: shorter than a safetensors header")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > MAX_HEADER_BYTES or 8 + header_len > size:
            raise CheckpointError(f"{file} is corrupt or truncated: its header claims {header_len} bytes, the file has {size}")
        raw = f.read(header_len)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(f"{file} is corrupt: its safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{file} is corrupt: its safetensors header is not a JSON object")
    data_start = 8 + header_len
    infos = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        infos.append(_tensor_info(file, name, entry, data_start, size))
    return infos


def _tensor_info(file: Path, name: str, entry: object, data_start: int, size: int) -> TensorInfo:
    try:
        dtype = entry["dtype"]
        shape = tuple(int(d) for d in entry["shape"])
        begin, end = (int(o) for o in entry["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{file} is corrupt: bad header entry for tensor {name}") from None
    if dtype not in DTYPE_BYTES:
        raise CheckpointError(f"{file}: tensor {name} has unsupported dtype {dtype}")
    expected = math.prod(shape) * DTYPE_BYTES[dtype]
    if end - begin != expected or begin < 0 or any(d < 0 for d in shape):
        raise CheckpointError(f"{file} is corrupt: tensor {name} spans {end - begin} bytes, its shape {list(shape)} needs {expected}")
    if data_start + end > size:
        raise CheckpointError(
            f"{file} is truncated: tensor {name} ends at byte {data_start + end}, the file has {size} bytes"
        )
    return TensorInfo(name=name, dtype=dtype, shape=shape, file=file, offset=data_start + begin, nbytes=end - begin)


# Unsigned views used to inspect bit patterns without converting the values.
_UINT_VIEW = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_SIGNED_VIEW = {"I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
                "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.uint8}


def raw_dtype(tensor: TensorInfo) -> np.dtype:
    """The numpy dtype to view this tensor's bytes as: unsigned bit patterns for floats."""
    if tensor.dtype in FLOAT_DTYPES:
        return np.dtype(_UINT_VIEW[tensor.itemsize]).newbyteorder("<")
    return np.dtype(_SIGNED_VIEW[tensor.dtype]).newbyteorder("<")


def chunk_spans(tensor: TensorInfo, chunk_bytes: int = CHUNK_BYTES) -> list[tuple[int, int]]:
    """(absolute offset, length) of each chunk: whole rows of the last dimension, about chunk_bytes each.

    Whole rows mean that groups along the input dimension (N:M) never
    straddle two chunks.
    """
    row_bytes = max((tensor.shape[-1] if tensor.shape else 1) * tensor.itemsize, 1)
    step = max(1, chunk_bytes // row_bytes) * row_bytes
    return [(tensor.offset + start, min(step, tensor.nbytes - start)) for start in range(0, tensor.nbytes, step)]


def stream_chunks(tensors: Iterable[TensorInfo], chunk_bytes: int = CHUNK_BYTES,
                  read_ahead: int = 2) -> Iterator[tuple[TensorInfo, np.ndarray]]:
    """Yield (tensor, chunk) for every chunk of every tensor, in order.

    Chunks are raw 1-D arrays (see `raw_dtype`) in a few reusable buffers,
    filled by a background thread `read_ahead` chunks ahead, so reading and
    inspecting overlap; memory stays at (read_ahead + 1) chunks whatever the
    checkpoint's size. Consume each chunk before asking for the next.
    """
    plan = [(t, offset, n) for t in tensors for offset, n in chunk_spans(t, chunk_bytes)]
    if not plan:
        return
    buffers = [bytearray(max(n for _, _, n in plan)) for _ in range(read_ahead + 1)]
    files: dict[Path, int] = {}
    try:
        for t in {t.file for t, _, _ in plan}:
            files[t] = os.open(t, os.O_RDONLY)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gate-read") as pool:
            pending = deque(pool.submit(_read_span, files, plan[i], buffers[i % len(buffers)])
                            for i in range(min(read_ahead, len(plan))))
            for i in range(len(plan)):
                chunk = pending.popleft().result()
                ahead = i + read_ahead
                if ahead < len(plan):
                    pending.append(pool.submit(_read_span, files, plan[ahead], buffers[ahead % len(buffers)]))
                yield plan[i][0], chunk
    finally:
        for fd in files.values():
            os.close(fd)


def iter_chunks(tensor: TensorInfo, chunk_bytes: int = CHUNK_BYTES) -> Iterator[np.ndarray]:
    """The chunks of one tensor (see `stream_chunks`)."""
    for _, chunk in stream_chunks([tensor], chunk_bytes):
        yield chunk


def _read_span(files: dict[Path, int], span: tuple[TensorInfo, int, int], buffer: bytearray) -> np.ndarray:
    tensor, offset, n = span
    mv = memoryview(buffer)[:n]
    filled = 0
    while filled < n:
        got = os.preadv(files[tensor.file], [mv[filled:]], offset + filled)
        if not got:
            raise CheckpointError(f"{tensor.file} is truncated while reading tensor {tensor.name}")
        filled += got
    return np.frombuffer(mv, dtype=raw_dtype(tensor))
