"""The model backends (torch and MLX) on a tiny real Llama, and backend selection."""

from __future__ import annotations

import json
import platform
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from fixtures.tiny_model import write_tiny_model
from gate.core.checkpoint_dir import check_checkpoint_dir
from gate.runtime.common import length_batches, normalize_dtype
from gate.runtime.host import install_hint
from gate.runtime.registry import load_model, resolve_backend
from gate.runtime.torch_backend import load_torch_model
from gate.core.errors import BackendUnavailableError, CheckpointError, InputError, UnsafeCheckpointError

REPO_ROOT = Path(__file__).resolve().parents[2]
WIKITEXT = REPO_ROOT.parent / "shared" / "data" / "wikitext-2" / "wiki.test.raw"

try:
    import mlx.core  # noqa: F401
    import mlx_lm  # noqa: F401

    HAS_MLX = True
except ImportError:
    HAS_MLX = False

BACKENDS = ["torch", pytest.param("mlx", marks=pytest.mark.skipif(not HAS_MLX, reason="mlx not installed"))]
TEXTS = (
    "The doctor walked to the river in the morning, and then went home.",
    "A teacher",
    "Context: Two people met at the station.\nQuestion: Who was late?\nAnswer: A",
    "hi",
)


@pytest.fixture(scope="module")
def reference_model(tiny_model_dir):
    """The same checkpoint run directly by transformers, in float32: the ground truth."""
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


@pytest.fixture(scope="module", params=BACKENDS)
def handle(request, tiny_model_dir):
    model = load_model(tiny_model_dir, backend=request.param, device="cpu", dtype="float32")
    yield model
    model.close()


@pytest.fixture(scope="module")
def sequences(handle) -> list[list[int]]:
    return [handle.tokenizer.encode(text) for text in TEXTS]


def reference_token_logprobs(model, sequence: list[int]) -> np.ndarray:
    with torch.no_grad():
        logits = model(torch.tensor([sequence])).logits[0, :-1].float()
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, torch.tensor(sequence[1:])[:, None])[:, 0]
    return logprobs.double().numpy()


def reference_last_logprobs(model, prompt: list[int]) -> np.ndarray:
    with torch.no_grad():
        logits = model(torch.tensor([prompt])).logits[0, -1].float()
    return torch.log_softmax(logits, dim=-1).double().numpy()


# --- the ModelHandle interface, on both backends -----------------------------


def test_handle_describes_itself(handle, request):
    assert handle.backend == request.node.callspec.params["handle"]
    assert handle.device == "cpu"
    assert handle.dtype == "float32"
    assert "assistant" in handle.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )


def test_token_logprobs_shapes(handle, sequences):
    result = handle.token_logprobs(sequences)
    assert [len(values) for values in result] == [len(sequence) - 1 for sequence in sequences]
    for values in result:
        assert values.dtype == np.float64
        assert np.all(np.isfinite(values)) and np.all(values <= 0)


def test_token_logprobs_agree_with_a_direct_transformers_forward(handle, sequences, reference_model):
    for sequence, values in zip(sequences, handle.token_logprobs(sequences)):
        np.testing.assert_allclose(values, reference_token_logprobs(reference_model, sequence), atol=1e-4)


def test_batched_scoring_equals_one_by_one(handle, sequences):
    batched = handle.token_logprobs(sequences)
    for sequence, values in zip(sequences, batched):
        np.testing.assert_allclose(values, handle.token_logprobs([sequence])[0], atol=1e-5)


def test_next_token_distribution_normalises_over_the_vocabulary(handle, sequences):
    everything = handle.last_token_logprobs(sequences, list(range(handle.vocab_size)))
    assert everything.shape == (len(sequences), handle.vocab_size)
    np.testing.assert_allclose(np.exp(everything).sum(axis=1), 1.0, atol=1e-5)


def test_left_padded_batch_gives_each_prompt_its_own_distribution(handle, sequences, reference_model):
    letters = [handle.tokenizer.encode(letter)[0] for letter in (" A", " B", " C")]
    batched = handle.last_token_logprobs(sequences, letters)
    assert batched.shape == (len(sequences), 3)
    for row, prompt in enumerate(sequences):
        np.testing.assert_allclose(batched[row], handle.last_token_logprobs([prompt], letters)[0], atol=1e-5)
        np.testing.assert_allclose(batched[row], reference_last_logprobs(reference_model, prompt)[letters], atol=1e-4)


def test_shared_prefix_scoring_equals_scoring_each_whole_prompt(tiny_model_dir):
    # Groups of different sizes and lengths, and a token budget small enough to split them over batches.
    handle = load_torch_model(tiny_model_dir, device="cpu", dtype="float32", max_batch_tokens=40)
    rng = np.random.default_rng(0)
    draw = lambda low, high: [int(t) for t in rng.integers(3, handle.input_vocab_size, rng.integers(low, high))]  # noqa: E731
    groups = [(draw(2, 20), [draw(1, 6) for _ in range(rng.integers(1, 4))]) for _ in range(9)]
    groups.append((draw(5, 10), [draw(1, 6) for _ in range(14)]))  # over the budget: split, sharing its prefix
    wanted = [3, 4, 5, 10]
    try:
        shared = handle.shared_prefix_logprobs(groups, wanted)
        for (prefix, rest), got in zip(groups, shared):
            assert got.shape == (len(rest), len(wanted))
            np.testing.assert_allclose(got, handle.last_token_logprobs([prefix + r for r in rest], wanted), atol=1e-5)
    finally:
        handle.close()


def test_shared_prefix_batches_keep_the_kv_cache_within_its_cap(tiny_model_dir):
    # Every continuation row holds a copy of its prefix in the cache: batches are cut by the cache's
    # size too, not only by the tokens computed; the answers do not change.
    from gate.runtime.torch_backend import _MAX_CACHE_BYTES, _kv_bytes_per_token

    handle = load_torch_model(tiny_model_dir, device="cpu", dtype="float32")
    assert _kv_bytes_per_token(handle.model) == 2 * 2 * 2 * 16 * 4  # K and V, 2 layers, 2 KV heads of 16, fp32
    assert handle.max_cache_tokens == _MAX_CACHE_BYTES // 512
    handle.max_cache_tokens = 60
    rng = np.random.default_rng(1)
    draw = lambda low, high: [int(t) for t in rng.integers(3, handle.input_vocab_size, rng.integers(low, high))]  # noqa: E731
    groups = [(draw(8, 16), [draw(2, 6) for _ in range(rng.integers(1, 6))]) for _ in range(8)]
    cached: list[int] = []

    def record(module, args, kwargs, output):
        if kwargs.get(handle._cache_name) is not None:  # the continuation pass: its mask spans prefix + continuation
            cached.append(kwargs["attention_mask"].numel())

    hook = handle.model.register_forward_hook(record, with_kwargs=True)
    try:
        shared = handle.shared_prefix_logprobs(groups, [3, 4, 5])
        for (prefix, rest), got in zip(groups, shared):
            np.testing.assert_allclose(got, handle.last_token_logprobs([prefix + r for r in rest], [3, 4, 5]), atol=1e-5)
    finally:
        hook.remove()
        handle.close()
    assert len(cached) > 1 and max(cached) <= 60


def test_seeded_sampling_is_reproducible(handle, sequences):
    first = handle.generate(sequences[0], max_new_tokens=12, temperature=1.0, seed=7)
    again = handle.generate(sequences[0], max_new_tokens=12, temperature=1.0, seed=7)
    other_seeds = {handle.generate(sequences[0], 12, 1.0, seed).token_ids for seed in (8, 9, 10)}
    assert first.token_ids == again.token_ids
    assert other_seeds != {first.token_ids}


def test_greedy_generation_matches_transformers_generate(handle, sequences, reference_model):
    for prompt in sequences[:3]:
        ours = handle.generate(prompt, max_new_tokens=12, temperature=0.0, seed=0)
        with torch.no_grad():
            theirs = reference_model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False)
        assert list(ours.token_ids) == theirs[0, len(prompt) :].tolist()
        assert ours.text == handle.tokenizer.decode(ours.token_ids, skip_special_tokens=True)


def test_generation_reports_its_timing(handle, sequences):
    generation = handle.generate(sequences[0], max_new_tokens=4, temperature=0.0, seed=0)
    assert generation.prompt_tokens == len(sequences[0])
    assert len(generation.token_ids) == 4
    assert 0 < generation.prefill_seconds <= generation.total_seconds


def test_peak_memory_is_reported(handle):
    peak = handle.peak_memory_bytes()
    assert isinstance(peak, int) and peak > 0


def test_bad_inputs_are_one_line_input_errors(handle, sequences):
    with pytest.raises(InputError, match="sequence 1 is empty"):
        handle.token_logprobs([sequences[0], []])
    with pytest.raises(InputError, match="outside the vocabulary"):
        handle.token_logprobs([[1, handle.vocab_size + 5]])
    with pytest.raises(InputError, match="outside the vocabulary"):
        handle.last_token_logprobs([sequences[0]], [-1])
    with pytest.raises(InputError, match="temperature"):
        handle.generate(sequences[0], max_new_tokens=2, temperature=-1.0, seed=0)


def test_runtime_info_names_backend_and_hardware(handle):
    info = handle.runtime_info()
    assert info["backend"] == handle.backend
    assert info["backend_version"]
    assert info["device_description"]
    on_linux_cpu = handle.backend == "mlx" and platform.system() == "Linux"
    assert info["mlx_linux_cpu"] is on_linux_cpu


# --- behaviour that needs its own checkpoint -------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_generation_stops_at_an_eos_from_generation_config(tmp_path, tiny_model_dir, backend):
    path = shutil.copytree(tiny_model_dir, tmp_path / "model")
    probe = load_model(path, backend=backend, device="cpu", dtype="float32")
    prompt = probe.tokenizer.encode(TEXTS[0])
    free_run = probe.generate(prompt, max_new_tokens=8, temperature=0.0, seed=0).token_ids
    probe.close()
    # Declare the third greedy token an end-of-sequence id, as a model's generation_config may.
    config_file = path / "generation_config.json"
    config = json.loads(config_file.read_text())
    config["eos_token_id"] = [config["eos_token_id"], free_run[2]]
    config_file.write_text(json.dumps(config))
    model = load_model(path, backend=backend, device="cpu", dtype="float32")
    stopped = model.generate(prompt, max_new_tokens=8, temperature=0.0, seed=0).token_ids
    model.close()
    assert stopped == free_run[: free_run.index(free_run[2]) + 1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_bfloat16_weights_give_close_numbers(tiny_model_dir, backend, reference_model):
    model = load_model(tiny_model_dir, backend=backend, device="cpu", dtype="bf16")
    assert model.dtype == "bfloat16"
    sequence = model.tokenizer.encode(TEXTS[0])
    values = model.token_logprobs([sequence])[0]
    model.close()
    assert values.dtype == np.float64
    np.testing.assert_allclose(values, reference_token_logprobs(reference_model, sequence), atol=0.15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_closed_handle_refuses_work(tiny_model_dir, backend):
    model = load_model(tiny_model_dir, backend=backend, device="cpu")
    model.close()
    with pytest.raises(RuntimeError, match="closed"):
        model.token_logprobs([[1, 2, 3]])


@pytest.mark.skipif(not HAS_MLX, reason="mlx not installed")
def test_mlx_reads_the_rope_base_of_a_transformers5_config(tmp_path):
    from mlx_lm.utils import load_model as mlx_lm_load_model

    path = write_tiny_model(tmp_path / "model", rope_theta=100.0)
    config = json.loads((path / "config.json").read_text())
    assert "rope_theta" not in config and config["rope_parameters"]["rope_theta"] == 100.0

    sequence = list(range(3, 40))
    torch_model = load_model(path, backend="torch", device="cpu", dtype="float32")
    expected = torch_model.token_logprobs([sequence])[0]
    torch_model.close()
    mlx_model = load_model(path, backend="mlx", device="cpu", dtype="float32")
    np.testing.assert_allclose(mlx_model.token_logprobs([sequence])[0], expected, atol=1e-4)
    mlx_model.close()

    # Loaded by mlx-lm as is, the same checkpoint gets RoPE base 10,000: the
    # test above would catch a loader that lost the fix.
    import mlx.core as mx

    unfixed, _ = mlx_lm_load_model(path)
    logits = unfixed(mx.array([sequence]))[0, :-1].astype(mx.float32)
    unfixed_values = np.array(
        mx.take_along_axis(logits, mx.array(sequence[1:])[:, None], axis=-1)[:, 0] - mx.logsumexp(logits, axis=-1)
    )
    assert np.abs(unfixed_values - expected).max() > 1e-2


def test_rope_fix_lifts_scaling_and_leaves_old_configs_alone():
    from gate.runtime.common import rope_config_fix

    llama3 = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0}
    assert rope_config_fix({"rope_parameters": llama3}) == {
        "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0},
    }
    assert rope_config_fix({"rope_theta": 10000.0}) == {}
    assert rope_config_fix({"rope_theta": 5.0, "rope_parameters": {"rope_theta": 5.0, "rope_type": "default"}}) == {}


# --- the tiny model fixture -------------------------------------------------


def test_tiny_model_is_reproducible_and_seeded(tmp_path):
    first = write_tiny_model(tmp_path / "a", seed=3)
    again = write_tiny_model(tmp_path / "b", seed=3)
    other = write_tiny_model(tmp_path / "c", seed=4, chat_template=False)
    assert (first / "model.safetensors").read_bytes() == (again / "model.safetensors").read_bytes()
    assert (first / "tokenizer.json").read_bytes() == (again / "tokenizer.json").read_bytes()
    assert (first / "model.safetensors").read_bytes() != (other / "model.safetensors").read_bytes()
    assert (first / "chat_template.jinja").is_file() and not (other / "chat_template.jinja").exists()


# --- choosing and loading a backend ----------------------------------------


def test_auto_picks_mlx_only_on_apple_silicon():
    expected = "mlx" if (platform.system(), platform.machine()) == ("Darwin", "arm64") and HAS_MLX else "torch"
    assert resolve_backend("auto") == expected
    assert resolve_backend("torch") == "torch" and resolve_backend("mlx") == "mlx"


def test_unknown_names_are_input_errors(tiny_model_dir):
    with pytest.raises(InputError, match="unknown backend 'tensorflow'"):
        load_model(tiny_model_dir, backend="tensorflow")
    with pytest.raises(InputError, match="unknown dtype 'int3'"):
        normalize_dtype("int3")
    with pytest.raises(InputError, match="unknown torch device"):
        load_model(tiny_model_dir, backend="torch", device="abacus")
    if HAS_MLX:
        with pytest.raises(InputError, match="unknown MLX device"):
            load_model(tiny_model_dir, backend="mlx", device="metal")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_accelerator_is_a_backend_error(tiny_model_dir):
    with pytest.raises(BackendUnavailableError, match="no CUDA GPU"):
        load_model(tiny_model_dir, backend="torch", device="cuda")


@pytest.mark.parametrize(
    ("backend", "hidden_modules", "extra"),
    [
        ("torch", ("torch", "transformers"), "gate-llm[torch]"),
        ("mlx", ("mlx", "mlx.core", "mlx_lm"), "gate-llm[mlx]" if platform.system() == "Darwin" else "gate-llm[mlx-cpu]"),
    ],
)
def test_a_missing_runtime_names_the_extra_to_install(tiny_model_dir, monkeypatch, backend, hidden_modules, extra):
    for module in hidden_modules:
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail, as if not installed
    with pytest.raises(BackendUnavailableError, match=re.escape(f"pip install '{extra}'")):
        load_model(tiny_model_dir, backend=backend)
    assert extra in install_hint(backend)


def test_unloadable_checkpoint_directories_are_refused(tmp_path, tiny_model_dir):
    with pytest.raises(CheckpointError, match="no such file or directory"):
        check_checkpoint_dir(tmp_path / "nowhere")
    a_file = tmp_path / "model.safetensors"
    a_file.write_bytes(b"")
    with pytest.raises(CheckpointError, match="is a file; pass the checkpoint directory"):
        check_checkpoint_dir(a_file)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(UnsafeCheckpointError, match="pickle"):
        check_checkpoint_dir(pickled)
    bad_json = tmp_path / "bad_json"
    bad_json.mkdir()
    (bad_json / "config.json").write_text("{not json")
    (bad_json / "model.safetensors").write_bytes((tiny_model_dir / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="not valid JSON"):
        check_checkpoint_dir(bad_json)
    no_tokenizer = tmp_path / "no_tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        (no_tokenizer / name).write_bytes((tiny_model_dir / name).read_bytes())
    with pytest.raises(CheckpointError, match="tokenizer"):
        load_model(no_tokenizer, backend="torch", device="cpu")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_truncated_weights_file_is_a_checkpoint_error(tmp_path, tiny_model_dir, backend):
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    for file in tiny_model_dir.iterdir():
        (truncated / file.name).write_bytes(file.read_bytes())
    weights = (tiny_model_dir / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(CheckpointError, match="cannot load the model"):
        load_model(truncated, backend=backend, device="cpu")


def test_one_token_sequences_have_nothing_to_score(handle):
    assert [len(values) for values in handle.token_logprobs([[5], [6]])] == [0, 0]


def test_length_batches_respect_the_token_budget():
    lengths = [5, 50, 7, 50, 1, 30]
    batches = length_batches(lengths, max_batch_tokens=100)
    assert sorted(index for batch in batches for index in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 100
    assert batches[0] == [1, 3]  # longest first, two of 50 fill the budget
    assert length_batches([500], max_batch_tokens=100) == [[0]]


# --- the real demo model ----------------------------------------------------


@pytest.mark.e2e
@pytest.mark.skipif(not HAS_MLX, reason="mlx not installed")
def test_mlx_and_torch_agree_on_the_demo_model(tmp_path):
    """Perplexity within 1% and identical greedy tokens, both in float32.

    MLX reads a copy whose config.json keeps the RoPE base only under
    `rope_parameters`, as transformers 5 writes it, so the loader's fix is
    exercised on the real model. MLX's Linux CPU backend is slow (reference
    BLAS), so the windows are short.
    """
    from gate.demo.build import ensure_demo_checkpoint

    dense = ensure_demo_checkpoint("dense")
    transformers5_copy = tmp_path / "dense"
    transformers5_copy.mkdir()
    for file in dense.iterdir():
        if file.suffix == ".safetensors":  # a copy, not a symlink: loaders refuse weights that resolve elsewhere
            shutil.copyfile(file, transformers5_copy / file.name)
        else:
            (transformers5_copy / file.name).write_bytes(file.read_bytes())
    config = json.loads((dense / "config.json").read_text())
    config.pop("rope_theta", None)
    assert config["rope_parameters"]["rope_theta"] != 10_000
    (transformers5_copy / "config.json").write_text(json.dumps(config))

    text = WIKITEXT.read_text(encoding="utf-8")[:20_000]
    prompts = ("The capital of France is", "Three primary colors are", "Once upon a time, there")
    results = {}
    for backend, path in (("torch", dense), ("mlx", transformers5_copy)):
        model = load_model(path, backend=backend, device="cpu", dtype="float32")
        ids = model.tokenizer.encode(text)
        windows = [ids[i * 96 : (i + 1) * 96] for i in range(2)]
        nll = -np.concatenate(model.token_logprobs(windows))
        greedy = [
            model.generate(model.tokenizer.encode(prompt), max_new_tokens=8, temperature=0.0, seed=0).token_ids
            for prompt in prompts
        ]
        results[backend] = (float(np.exp(nll.mean())), greedy)
        model.close()
    torch_ppl, torch_greedy = results["torch"]
    mlx_ppl, mlx_greedy = results["mlx"]
    assert abs(mlx_ppl / torch_ppl - 1) < 0.01
    assert mlx_greedy == torch_greedy


def test_cpu_threads_are_set_process_wide_and_checked():
    from gate.runtime.host import set_cpu_threads

    before = torch.get_num_threads()
    try:
        set_cpu_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(InputError, match="at least 1"):
        set_cpu_threads(0)


def test_a_chat_template_the_sandbox_refuses_is_an_input_error(tiny_model_dir, tmp_path):
    # Templates run in jinja's sandbox; one that reaches for Python internals is refused before any model runs.
    from click.testing import CliRunner

    from gate.runtime.common import load_tokenizer
    from gate.cli.main import main

    hostile = tmp_path / "hostile"
    shutil.copytree(tiny_model_dir, hostile)
    (hostile / "chat_template.jinja").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(UnsafeCheckpointError, match="refused by jinja's sandbox"):
        load_tokenizer(hostile)
    for args in ([str(tiny_model_dir), "--base", str(hostile)], [str(hostile), "--base", str(tiny_model_dir)]):
        policy = Path(__file__).parents[2] / "policies" / "audit.yaml"  # this checkout's, whatever is installed
        result = CliRunner().invoke(main, ["check", *args, "--metrics", "bias", "--bbq-limit", "6", "--no-cache", "-q",
                                           "--policy", str(policy)])
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("gate: error: the chat template in") and "sandbox" in line
