"""Sparsity and size audit: exact counts against what the fixture builder wrote."""

from __future__ import annotations

import pytest

from fixtures.checkpoints import DTYPES, VARIANTS, WANDA_KINDS, build_checkpoint, put_nan
from gate.inputs.checkpoint import open_checkpoint
from gate.measurements.scan import classify
from gate.measurements.scan_input import scan_model_input
from gate.measurements.size import measure_size
from gate.measurements.sparsity import SparsityComparison, summarize_sparsity
from gate.core.result import Severity


def audit(path):
    checkpoint = open_checkpoint(path)
    scan = scan_model_input(checkpoint)
    return checkpoint, scan, summarize_sparsity(scan)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("variant", VARIANTS)
def test_zero_counts_are_exact(tmp_path, variant, dtype):
    built = build_checkpoint(tmp_path / "m", variant, dtype=dtype, sparsity=0.3 if variant == "random" else 0.5)
    _, scan, sparsity = audit(built.path)
    for t in scan.tensors:
        assert t.zeros == built.zeros[t.name], t.name
        assert t.nonfinite == 0
    zeros, numel = built.scope_zeros()
    assert (sparsity.overall.zeros, sparsity.overall.numel) == (zeros, numel)
    assert sparsity.checkpoint.zeros == sum(built.zeros.values())
    assert {t.name for t in scan.prunable} == built.prunable


def test_negative_zero_counts_as_zero(tmp_path):
    import torch
    from safetensors.torch import save_file

    (tmp_path / "config.json").write_text("{}")
    w = torch.tensor([[0.0, -0.0, 1.0, -2.0]] * 2, dtype=torch.bfloat16)
    save_file({"model.layers.0.mlp.up_proj.weight": w}, str(tmp_path / "model.safetensors"))
    _, scan, sparsity = audit(tmp_path)
    assert scan.tensors[0].zeros == 4
    assert sparsity.overall.sparsity == 0.5
    assert scan.tensors[0].conforms("2:4") is True


def test_magnitude_is_half_of_every_kind(tmp_path):
    _, _, sparsity = audit(build_checkpoint(tmp_path / "m", "magnitude").path)
    assert all(k.sparsity == 0.5 for k in sparsity.by_kind)
    assert all(layer.sparsity == 0.5 for layer in sparsity.by_layer)
    assert [layer.label for layer in sparsity.by_layer] == ["0", "1"]


def test_wanda_like_shows_dense_kinds_and_misses_declared_target(tmp_path):
    built = build_checkpoint(tmp_path / "w", "wanda")
    base = build_checkpoint(tmp_path / "b", "dense")
    cand, bas = audit(built.path)[2], audit(base.path)[2]
    zeros, numel = built.scope_zeros(WANDA_KINDS)
    assert zeros * 2 == numel  # the pruned kinds are exactly half zero
    assert cand.dense_kinds == ("o_proj", "down_proj")
    comparison = SparsityComparison(candidate=cand, base=bas, expected=0.5)
    assert comparison.declared_gap == pytest.approx(0.5 - cand.overall.sparsity)
    codes = {f.code: f.severity for f in comparison.findings()}
    assert codes["declared-sparsity-not-met"] is Severity.ERROR
    assert codes["dense-module-kinds"] is Severity.WARNING
    met = SparsityComparison(candidate=cand, base=bas, expected=round(cand.overall.sparsity, 3))
    assert "declared-sparsity-not-met" not in {f.code for f in met.findings()}


def test_nm_conformance(tmp_path):
    _, scan24, s24 = audit(build_checkpoint(tmp_path / "nm", "nm24").path)
    assert all(s.conforming == s.applicable == 14 for s in s24.nm)
    _, _, mag = audit(build_checkpoint(tmp_path / "mag", "magnitude").path)
    # Row-wise 50% magnitude pruning is 50% sparse but not 2:4.
    assert mag.overall.sparsity == 0.5
    assert all(s.conforming == 0 for s in mag.nm)
    assert all(t.conforms("2:4") is None for t in scan24.tensors if not t.prunable)


def test_nm_check_on_rows_not_multiple_of_m(tmp_path):
    import torch
    from safetensors.torch import save_file

    (tmp_path / "config.json").write_text("{}")
    save_file({"model.layers.0.self_attn.q_proj.weight": torch.zeros(4, 12)}, str(tmp_path / "model.safetensors"))
    _, scan, sparsity = audit(tmp_path)
    assert scan.tensors[0].conforms("2:4") is True
    assert scan.tensors[0].conforms("4:8") is None  # groups of 8 do not tile a row of 12
    assert sparsity.overall.sparsity == 1.0


def test_sharded_checkpoint_reads_every_shard(tmp_path):
    built = build_checkpoint(tmp_path / "s", "random", shards=3, sparsity=0.2)
    checkpoint, scan, sparsity = audit(built.path)
    assert len(checkpoint.weight_files) == 3
    assert {t.name: t.zeros for t in scan.tensors} == built.zeros
    assert sparsity.overall.zeros == built.scope_zeros()[0]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nonfinite_weight_is_an_error_finding(tmp_path, value):
    built = build_checkpoint(tmp_path / "n", "dense")
    put_nan(built, "model.layers.1.mlp.down_proj.weight", value)
    base = build_checkpoint(tmp_path / "b", "dense")
    cand = audit(built.path)[2]
    assert cand.nonfinite == 1
    assert cand.nonfinite_tensors == ("model.layers.1.mlp.down_proj.weight",)
    findings = SparsityComparison(candidate=cand, base=audit(base.path)[2]).findings()
    assert [f.severity for f in findings if f.code == "nonfinite-weights"] == [Severity.ERROR]


def test_small_chunks_give_the_same_counts(tmp_path, monkeypatch):
    built = build_checkpoint(tmp_path / "m", "nm24", hidden=64, intermediate=256)
    import gate.measurements.scan as scan_module

    monkeypatch.setattr(scan_module, "CHUNK_BYTES", 256)  # many chunks per tensor, one row each
    _, scan, sparsity = audit(built.path)
    assert {t.name: t.zeros for t in scan.tensors} == built.zeros
    assert all(s.conforming == s.applicable for s in sparsity.nm)


def test_classify_names():
    assert classify("model.layers.12.self_attn.o_proj.weight") == (12, "o_proj")
    assert classify("model.layers.3.mlp.gate_up_proj.weight") == (3, "gate_up_proj")
    assert classify("language_model.model.layers.0.self_attn.qkv_proj.weight") == (0, "qkv_proj")
    assert classify("model.layers.0.self_attn.q_proj.bias") is None
    assert classify("model.embed_tokens.weight") is None
    assert classify("lm_head.weight") is None


def test_size_dense_vs_pruned(tmp_path):
    dense = build_checkpoint(tmp_path / "d", "dense")
    pruned = build_checkpoint(tmp_path / "p", "magnitude")
    (ck_d, scan_d, _), (ck_p, scan_p, _) = audit(dense.path), audit(pruned.path)
    size_d, size_p = measure_size(ck_d, scan_d), measure_size(ck_p, scan_p)
    # Unstructured zeros save nothing on disk.
    assert size_p.weight_file_bytes == size_d.weight_file_bytes
    # bf16 at 50%: 2 bytes become 1 + 1/8 per prunable element.
    prunable = sum(t.numel for t in scan_p.prunable)
    assert size_p.prunable_bytes == 2 * prunable
    assert size_p.bitmask_bytes == size_p.weight_file_bytes - 2 * prunable + prunable + sum((t.numel + 7) // 8 for t in scan_p.prunable)
    assert size_p.sparse_saving > 0.3
    # A dense model gains nothing: the best encoding keeps it dense.
    assert size_d.best_sparse_bytes == size_d.weight_file_bytes
    assert size_d.sparse_saving == 0.0
    assert size_d.directory_bytes > size_d.weight_file_bytes


def test_size_counts_2_4_tensors(tmp_path):
    ck, scan, _ = audit(build_checkpoint(tmp_path / "nm", "nm24", dtype="float32").path)
    size = measure_size(ck, scan)
    assert size.nm24_tensors == 14
    # fp32 at 50%: 2:4 stores 2 of 4 values plus a 2-bit index each, bitmask one bit per element: equal.
    assert size.best_sparse_bytes < size.weight_file_bytes


def _packed_checkpoint(path):
    """mlx-lm 4-bit layout: packed uint32 weights with .scales/.biases (every code 0, scale 1, bias 0: all zeros)."""
    import json

    import torch
    from safetensors.torch import save_file

    (path / "config.json").write_text(json.dumps({"model_type": "llama", "quantization": {"group_size": 64, "bits": 4}}))
    save_file({
        "model.layers.0.mlp.up_proj.weight": torch.zeros(128, 8, dtype=torch.int32).view(torch.uint32),
        "model.layers.0.mlp.up_proj.scales": torch.ones(128, 1, dtype=torch.bfloat16),
        "model.layers.0.mlp.up_proj.biases": torch.zeros(128, 1, dtype=torch.bfloat16),
        "model.layers.0.self_attn.q_proj.weight": torch.tensor([[0.0, 1.0, 0.0, 2.0]] * 4, dtype=torch.bfloat16),
    }, str(path / "model.safetensors"))
    return path


def test_mlx_quantized_weights_are_not_counted_as_sparsity_without_mlx(tmp_path, monkeypatch):
    """Without MLX the packed words cannot be read as weights: their zeros are not counted."""
    import sys

    monkeypatch.setitem(sys.modules, "mlx.core", None)  # import mlx.core now raises ImportError
    checkpoint, scan, sparsity = audit(_packed_checkpoint(tmp_path))
    assert checkpoint.quantization == {"group_size": 64, "bits": 4}
    assert sparsity.quantized_tensors == 1
    assert (sparsity.overall.zeros, sparsity.overall.numel) == (8, 16)  # only the float q_proj
    comparison = SparsityComparison(candidate=sparsity, base=sparsity)
    assert "quantized-weights" in {f.code for f in comparison.findings()}


def test_mlx_quantized_weights_are_counted_dequantized_with_mlx(tmp_path):
    pytest.importorskip("mlx.core")
    _, scan, sparsity = audit(_packed_checkpoint(tmp_path))
    assert sparsity.quantized_tensors == 0
    up = next(t for t in scan.tensors if t.name == "model.layers.0.mlp.up_proj.weight")
    assert (up.shape, up.zeros) == ((128, 64), 128 * 64)  # 8 words of 8 codes per row, each 1·0 + 0
    assert (sparsity.overall.zeros, sparsity.overall.numel) == (8 + 128 * 64, 16 + 128 * 64)