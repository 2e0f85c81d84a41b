"""Reading checkpoint directories: layouts, refusals, and every kind of bad input."""

from __future__ import annotations

import json
import struct

import pytest

from fixtures.checkpoints import build_checkpoint, truncate
from gate.inputs.checkpoint import iter_chunks, open_checkpoint, read_header
from gate.inputs.compat import check_compatible
from gate.core.errors import CheckpointError, IncompatibleModelsError, UnsafeCheckpointError


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
    (struct.pack("<Q", 10**12) + b"{}", "header length exceeds the file's 10 bytes"),
    (struct.pack("<Q", 5) + b"{nope", "not valid JSON"),
    (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    (_header({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 16), "spans 8 bytes"),
    (_header({"w": {"dtype": "Q4", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 16), "unsupported dtype"),
    (_header({"w": {"dtype": "F32", "shape": [4]}}, b"\0" * 16), "bad header entry for tensor w"),
    # What safetensors' own loader refuses ("invalid offset"): a shared range could fake any sparsity.
    (_header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
              "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8), "overlaps the tensor before it"),
    (_header({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8), "leaves a gap before it"),
    (_header({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 8), "4 bytes after its last tensor"),
    (_header({"a": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}, b"\0" * 8), "spans -4 bytes"),
    (_header({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4), "not a list of sizes"),
    (_header({"a": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}, b"\0" * 4), "not a list of sizes"),
    (_header({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 2**64]}}, b"\0" * 4), "not two byte offsets"),
    (_header({"a": {"dtype": "F32", "shape": [1], "data_offsets": [True, 4]}}, b"\0" * 4), "not two byte offsets"),
    (_header({"__metadata__": {"format": 1}}, b""), "__metadata__ must map names to strings"),
    (struct.pack("<Q", 79) + b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"x": 1}}' + b"\0" * 4,
     "repeats a key"),
    (struct.pack("<Q", 6) + b'{"\xff":1}', "not UTF-8"),
    (_header({"\ud800": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4), "lone surrogate"),
    (struct.pack("<Q", 20001) + b"[" * 10000 + b"]" * 10000 + b" ", "deeper than 32 levels"),
    (struct.pack("<Q", 5002) + b"[" + b"9" * 5000 + b"]", "a number out of range"),
])
def test_corrupt_headers(tmp_path, payload, message):
    file = tmp_path / "model.safetensors"
    file.write_bytes(payload)
    with pytest.raises(CheckpointError, match=message):
        read_header(file)


def test_error_messages_never_echo_file_bytes_or_break_lines(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"SECRET-SECRET-DATA")
    with pytest.raises(CheckpointError) as caught:
        read_header(file)
    assert "SECRET" not in str(caught.value) and str(struct.unpack("<Q", b"SECRET-S")[0]) not in str(caught.value)
    file.write_bytes(_header({"a\nb": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4))
    with pytest.raises(CheckpointError, match=r"tensor a\\nb spans 4 bytes") as caught:
        read_header(file)
    assert "\n" not in str(caught.value)


def test_empty_tensors_and_metadata_are_valid(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(_header({"__metadata__": {"format": "pt"}, "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]},
                              "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4))
    assert sorted(t.name for t in read_header(file)) == ["e", "w"]


@pytest.mark.parametrize("target", ["../outside.safetensors", "/tmp/outside.safetensors", "sub/../../outside.safetensors"])
def test_shard_index_cannot_reach_outside_the_checkpoint(tmp_path, target):
    built = build_checkpoint(tmp_path / "m", "dense", shards=2)
    (tmp_path / "outside.safetensors").write_bytes(b"SECRET-SECRET-DATA")
    index = built.path / "model.safetensors.index.json"
    document = json.loads(index.read_text())
    document["weight_map"][next(iter(document["weight_map"]))] = target
    index.write_text(json.dumps(document))
    with pytest.raises(UnsafeCheckpointError, match="outside the checkpoint directory") as caught:
        open_checkpoint(built.path)
    assert "SECRET" not in str(caught.value)


@pytest.mark.parametrize("link", ["model.safetensors", "config.json", "model-00001-of-00002.safetensors", "tokenizer.json"])
def test_symlinks_out_of_the_checkpoint_are_refused(tmp_path, link):
    elsewhere = build_checkpoint(tmp_path / "elsewhere", "dense", shards=2 if "of" in link else 1).path
    built = build_checkpoint(tmp_path / "m", "dense", shards=2 if "of" in link else 1)
    (elsewhere / link).touch()
    (built.path / link).unlink(missing_ok=True)
    (built.path / link).symlink_to(elsewhere / link)
    with pytest.raises(UnsafeCheckpointError, match=f"{link} in .* resolves to a file outside the checkpoint"):
        open_checkpoint(built.path)


def test_symlinks_inside_the_checkpoint_and_hub_snapshots_are_read(tmp_path):
    built = build_checkpoint(tmp_path / "m", "dense")
    (built.path / "model.safetensors").rename(built.path / "weights.bin.safetensors-data")
    (built.path / "model.safetensors").symlink_to(built.path / "weights.bin.safetensors-data")
    assert open_checkpoint(built.path).weight_files == (built.path / "model.safetensors",)
    # The Hugging Face cache: snapshots/REV/* link to blobs/ of the same repository.
    repo = tmp_path / "hub" / "models--org--name"
    snapshot, blobs = repo / "snapshots" / "abc123", repo / "blobs"
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    for name in ("config.json", "model.safetensors"):
        (built.path / name).resolve().rename(blobs / name)
        (snapshot / name).symlink_to(blobs / name)
    assert len(open_checkpoint(snapshot).tensors) == len(open_checkpoint(snapshot).tensors) > 0


@pytest.mark.parametrize("weight_map", ['{"a": 5}', '{"a": ["x"]}', '[]', '"x"'])
def test_index_with_non_string_shards_is_refused(tmp_path, weight_map):
    built = build_checkpoint(tmp_path / "m", "dense", shards=2)
    (built.path / "model.safetensors.index.json").write_text('{"weight_map": %s}' % weight_map)
    with pytest.raises(CheckpointError, match="not a valid safetensors index"):
        open_checkpoint(built.path)


@pytest.mark.parametrize("config, message", [
    ('{"x": ' + "[" * 5000 + "]" * 5000 + "}", "deeper than 32 levels"),
    ('{"x": ' + "[" * 40 + "]" * 40 + "}", "deeper than 32 levels"),
    ('{"vocab_size": 1' + "0" * 5000 + "}", "a number out of range"),
    ('{"a": 1', "not valid JSON"),
])
def test_hostile_config_json(tmp_path, config, message):
    built = build_checkpoint(tmp_path / "m", "dense")
    (built.path / "config.json").write_text(config)
    with pytest.raises(CheckpointError, match=message):
        open_checkpoint(built.path)


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
    from gate.measurements.scan import scan_checkpoint

    scan_checkpoint(open_checkpoint(built.path))
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in built.path.iterdir()} == before


def test_a_symlink_loop_is_an_input_error(tmp_path):
    built = build_checkpoint(tmp_path / "m", "dense")
    (built.path / "loop.json").symlink_to(built.path / "loop.json")
    with pytest.raises(CheckpointError, match="cannot be resolved"):
        open_checkpoint(built.path)
