"""Reading checkpoint directories without loading them.

A checkpoint is a directory in Hugging Face layout (config.json plus
`model.safetensors`, or shards listed in `model.safetensors.index.json`); the
directories mlx-lm writes have the same layout. Only the safetensors headers
are parsed here; tensor data is streamed in bounded chunks by `iter_chunks`,
so auditing a 14 GB checkpoint needs a few MB of memory, not 14 GB.

The directory itself (layout, pickle refusal, files inside it) is checked by
`gate.core.checkpoint_dir`, which the runtimes share before loading. Headers are validated as strictly as safetensors
itself does (unique names, contiguous in-bounds offsets covering the data), and
every file read must lie inside the checkpoint directory, symlinks followed
(docs/security.md). Error messages name files and tensors, never echo bytes.
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from gate.core.checkpoint_dir import check_checkpoint_dir, shown_name
from gate.core.errors import CheckpointError
from gate.core.safejson import load_json

# The safetensors spec caps the header at 100 MB; anything larger is corrupt.
MAX_HEADER_BYTES = 100 * 1024 * 1024
CHUNK_BYTES = 4 * 1024 * 1024
# Offsets and dimensions are u64 in safetensors; anything larger is corrupt.
MAX_U64 = 2**64 - 1

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
    checked = check_checkpoint_dir(path)
    tensors: dict[str, TensorInfo] = {}
    for file in checked.weight_files:
        for info in read_header(file):
            if info.name in tensors:
                raise CheckpointError(f"tensor {shown_name(info.name)} appears in both {tensors[info.name].file.name} and {file.name}")
            tensors[info.name] = info
    if not tensors:
        raise CheckpointError(f"no tensors in the weight files of {checked.path}")
    return Checkpoint(path=checked.path, config=checked.config, weight_files=checked.weight_files, tensors=tensors)


def read_header(file: Path) -> list[TensorInfo]:
    """Parse and validate one safetensors file's header (no tensor data is read).

    As safetensors' own loader does: names are unique, each tensor's bytes
    match its dtype and shape, and the tensors' byte ranges are contiguous and
    cover the data exactly (no overlap, no gap, nothing past the end).
    """
    try:
        size = file.stat().st_size
        with open(file, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise CheckpointError(f"{file} is truncated: shorter than a safetensors header")
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > MAX_HEADER_BYTES or 8 + header_len > size:
                raise CheckpointError(f"{file} is corrupt or truncated: its header length exceeds the file's {size} "
                                      f"bytes (or the {MAX_HEADER_BYTES // 2**20} MiB limit)")
            raw = f.read(header_len)
    except OSError as exc:
        raise CheckpointError(f"cannot read {file}: {exc.strerror or type(exc).__name__}") from None
    header = load_json(raw, f"{file} (safetensors header)", CheckpointError, unique_keys=True)
    if not isinstance(header, dict):
        raise CheckpointError(f"{file} is corrupt: its safetensors header is not a JSON object")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{file} is corrupt: its __metadata__ must map names to strings")
    data_start = 8 + header_len
    infos = [_tensor_info(file, name, entry, data_start, size) for name, entry in header.items() if name != "__metadata__"]
    _check_layout(file, infos, data_start, size)
    return infos


def _tensor_info(file: Path, name: str, entry: object, data_start: int, size: int) -> TensorInfo:
    shown = shown_name(name)
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise CheckpointError(f"{file} is corrupt: bad header entry for tensor {shown}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(shape, list) or not all(_is_u64(d) for d in shape):
        raise CheckpointError(f"{file} is corrupt: tensor {shown} has a shape that is not a list of sizes")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_u64(o) for o in offsets):
        raise CheckpointError(f"{file} is corrupt: tensor {shown} has data_offsets that are not two byte offsets")
    if dtype not in DTYPE_BYTES:
        named = dtype if isinstance(dtype, str) and re.fullmatch(r"\w{1,16}", dtype) else "(not a dtype name)"
        raise CheckpointError(f"{file}: tensor {shown} has unsupported dtype {named} (supported: {', '.join(DTYPE_BYTES)})")
    begin, end = offsets
    shape = tuple(shape)
    expected = math.prod(shape) * DTYPE_BYTES[dtype]
    if end < begin or end - begin != expected:
        raise CheckpointError(f"{file} is corrupt: tensor {shown} spans {end - begin} bytes, "
                              f"its shape {list(shape)} needs {expected}")
    if data_start + end > size:
        raise CheckpointError(
            f"{file} is truncated: tensor {shown} ends at byte {data_start + end}, the file has {size} bytes"
        )
    return TensorInfo(name=name, dtype=dtype, shape=shape, file=file, offset=data_start + begin, nbytes=end - begin)


def _check_layout(file: Path, infos: list[TensorInfo], data_start: int, size: int) -> None:
    """The byte ranges tile the data: two tensors sharing bytes could fake any sparsity."""
    position = data_start
    for info in sorted(infos, key=lambda t: (t.offset, t.nbytes)):
        if info.offset != position:
            what = "overlaps the tensor before it" if info.offset < position else "leaves a gap before it"
            raise CheckpointError(f"{file} is corrupt: tensor {shown_name(info.name)} {what} (invalid data_offsets)")
        position += info.nbytes
    if position != size:
        raise CheckpointError(f"{file} is corrupt: {size - position} bytes after its last tensor belong to no tensor")


def _is_u64(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_U64


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
