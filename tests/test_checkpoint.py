"""Reading checkpoint directories: layouts, refusals, and every kind of bad input."""

from __future__ import annotations

import json
import struct

import pytest

from fixtures.checkpoints import build_checkpoint, truncate
from gate.checkpoint import iter_chunks, open_checkpoint, read_header
from gate.compat import check_compatible
from gate.errors import CheckpointError, IncompatibleModelsError, UnsafeCheckpointError


def test_single_file_and_sharded_layouts(tmp_path):
    single = open_checkpoint(build_checkpoint(tmp_path / "a", "dense").path)
    sharded = open_checkpoint(build_checkpoint(tmp_path / "b", "dense", shards=2).path)
    assert len(single.weight_files) == 1 and len(sharded.weight_files) == 2
    assert single.tensors.keys() == sharded.tensors.keys()
    assert single.model_type == "llama"
    check_compatible(single, sharded)


def test_chunks_cover_the_tensor_in_whole_rows(tmp_path):
    checkpoint = open_checkpoint(build_checkpoint(tmp_path / "a", "dense", dtype="float32").path)
    tensor = checkpoint.tensors["model.layers.0.mlp.up_proj.weight"]  # 128 x 64 fp32: 256 B rows
    chunks = [c.copy() for c in iter_chunks(tensor, chunk_bytes=1000)]
    assert all(c.size % 64 == 0 for c in chunks)
    assert sum(c.size for c in chunks) == tensor.numel


def test_missing_path(tmp_path):
    with pytest.raises(CheckpointError, match="no such file or directory"):
        open_checkpoint(tmp_path / "nope")


def test_no_config(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        open_checkpoint(tmp_path)


def test_no_weight_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"no weight files \(\*.safetensors\)"):
        open_checkpoint(tmp_path)


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.pth", "last.ckpt"])
def test_pickle_weights_are_refused(tmp_path, name):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / name).write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(UnsafeCheckpointError, match="arbitrary code"):
        open_checkpoint(tmp_path)
    with pytest.raises(UnsafeCheckpointError, match="arbitrary code"):
        open_checkpoint(tmp_path / name)


def test_pickles_beside_safetensors_are_ignored(tmp_path):
    built = build_checkpoint(tmp_path / "m", "dense")
    (built.path / "pytorch_model.bin").write_bytes(b"junk")
    assert open_checkpoint(built.path).weight_files == (built.path / "model.safetensors",)


def test_truncated_file(tmp_path):
    built = build_checkpoint(tmp_path / "m", "dense")
    truncate(built.path / "model.safetensors", 100)
    with pytest.raises(CheckpointError, match="is truncated: tensor .* ends at byte"):
        open_checkpoint(built.path)


def _header(entry: dict, data: bytes) -> bytes:
    raw = json.dumps(entry).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize("payload, message", [
    (b"\x01", "shorter than a safetensors header"),
    (struct.pack("<Q", 10**12) + b"{}", "header claims"),
    (struct.pack("<Q", 5) + b"{nope", "not valid JSON"),
    (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    (_header({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 16), "spans 8 bytes"),
    (_header({"w": {"dtype": "Q4", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 16), "unsupported dtype"),
    (_header({"w": {"dtype": "F32", "shape": [4]}}, b"\0" * 16), "bad header entry for tensor w"),
])
def test_corrupt_headers(tmp_path, payload, message):
    file = tmp_path / "model.safetensors"
    file.write_bytes(payload)
    with pytest.raises(CheckpointError, match=message):
        read_header(file)


def test_missing_shard(tmp_path):
    built = build_checkpoint(tmp_path / "m", "dense", shards=3)
    (built.path / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(CheckpointError, match="shard model-00002-of-00003.safetensors named in model.safetensors.index.json is missing"):
        open_checkpoint(built.path)


def test_bad_index(tmp_path):
    built = build_checkpoint(tmp_path / "m", "dense", shards=2)
    (built.path / "model.safetensors.index.json").write_text('{"metadata": {}}')
    with pytest.raises(CheckpointError, match="not a valid safetensors index"):
        open_checkpoint(built.path)


def test_different_shapes_are_incompatible(tmp_path):
    a = open_checkpoint(build_checkpoint(tmp_path / "a", "dense").path)
    b = open_checkpoint(build_checkpoint(tmp_path / "b", "dense", intermediate=256).path)
    with pytest.raises(IncompatibleModelsError, match=r"down_proj.weight has shape \[64, 128\] in the candidate but \[64, 256\] in the base"):
        check_compatible(a, b)


def test_different_depth_and_architecture_are_incompatible(tmp_path):
    a = open_checkpoint(build_checkpoint(tmp_path / "a", "dense", layers=2).path)
    b = open_checkpoint(build_checkpoint(tmp_path / "b", "dense", layers=3).path)
    with pytest.raises(IncompatibleModelsError, match="candidate lacks model.layers.2"):
        check_compatible(a, b)
    m = open_checkpoint(build_checkpoint(tmp_path / "m", "dense", model_type="mistral").path)
    with pytest.raises(IncompatibleModelsError, match="candidate is a mistral model but the base is a llama model"):
        check_compatible(m, a)


def test_reading_leaves_inputs_untouched(tmp_path):
    built = build_checkpoint(tmp_path / "m", "random", shards=2)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in built.path.iterdir()}
    from gate.measure.scan import scan_checkpoint

    scan_checkpoint(open_checkpoint(built.path))
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in built.path.iterdir()} == before
