"""The vLLM runtime: its refusals (no vLLM needed) and its agreement with torch on the demo model.

The agreement tests need vLLM's environment (`make test-vllm` builds it and names its python in
$GATE_VLLM_PYTHON); without one they are skipped. They compare, in float32 on the same token ids,
perplexity on the same windows, the letters-mode answers to the same BBQ items asked in all three
option orders, and greedy generation.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fixtures.tiny_model import write_tiny_model
from gate.cli.main import main
from gate.core.errors import InputError
from gate.runtime import vllm_backend

ITEMS = 96  # BBQ items asked in the agreement test, each in 3 option orders
PPL_TOKENS = 8 * 512


def _vllm_python() -> str | None:
    named = os.environ.get(vllm_backend.PYTHON_ENV)
    if named:
        return named
    return sys.executable if importlib.util.find_spec("vllm") is not None else None


needs_vllm = [pytest.mark.vllm,
              pytest.mark.skipif(_vllm_python() is None, reason="no vLLM here: `make test-vllm` builds its environment")]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def _check(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["check", *args, "--no-cache", "-q"], env=env)


def _one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


# --- refusals: no vLLM needed ------------------------------------------------


@pytest.mark.parametrize("option, value", [("--tensor-parallel-size", "0"), ("--tensor-parallel-size", "two"),
                                           ("--pipeline-parallel-size", "-1"), ("--tensor-parallel-size", "1.5")])
def test_a_bad_parallel_size_is_one_line_and_exit_2(tiny_path, option, value):
    result = _check([str(tiny_path), "--base", str(tiny_path), "--backend", "vllm", "--metrics", "perplexity",
                     option, value])
    assert result.exit_code == 2, result.output
    assert _one_line(result).startswith(f"gate: error: {option} must be")


def test_a_split_the_model_does_not_allow_is_refused_before_any_engine_starts(tiny_path):
    config = json.loads((tiny_path / "config.json").read_text())
    heads, layers = config["num_attention_heads"], config["num_hidden_layers"]
    split = vllm_backend.VllmSettings(tensor_parallel_size=heads + 1)
    with pytest.raises(InputError, match=f"does not divide the model's {heads} attention heads"):
        vllm_backend.check_split(tiny_path, split)
    with pytest.raises(InputError, match=f"more than the model's {layers} layers"):
        vllm_backend.check_split(tiny_path, vllm_backend.VllmSettings(pipeline_parallel_size=layers + 1))
    vllm_backend.check_split(tiny_path, vllm_backend.VllmSettings(tensor_parallel_size=heads))


def test_more_gpus_than_the_machine_has_need_a_ray_cluster(monkeypatch):
    eight = vllm_backend.VllmSettings(tensor_parallel_size=8)
    one_gpu = {"device": "cuda", "gpus": 1}
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(InputError, match="8 GPUs, but this machine has 1"):
        vllm_backend.check_devices(eight, one_gpu)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    vllm_backend.check_devices(eight, one_gpu)  # vLLM's Ray launcher places the ranks across nodes
    vllm_backend.check_devices(vllm_backend.VllmSettings(), {"device": "cpu", "gpus": 0})


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM imports here")
def test_a_missing_vllm_is_one_line_naming_how_to_install_it(tiny_path, monkeypatch):
    monkeypatch.delenv(vllm_backend.PYTHON_ENV, raising=False)
    result = _check([str(tiny_path), "--base", str(tiny_path), "--backend", "vllm", "--metrics", "perplexity,bias"])
    assert result.exit_code == 2, result.output
    line = _one_line(result)
    assert "needs vLLM" in line and "make vllm-venv" in line and "--vllm-python" in line


def test_a_vllm_python_that_is_not_there_is_one_line(tiny_path, tmp_path):
    missing = tmp_path / "no-such-env" / "bin" / "python"
    result = _check([str(tiny_path), "--base", str(tiny_path), "--backend", "vllm", "--metrics", "perplexity",
                     "--vllm-python", str(missing)])
    assert result.exit_code == 2, result.output
    assert "is not an executable file" in _one_line(result)


def test_a_python_without_vllm_is_one_line(tiny_path):
    # This interpreter runs the worker's probe, which cannot import vLLM here (or can: then it passes).
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM imports here")
    result = _check([str(tiny_path), "--base", str(tiny_path), "--backend", "vllm", "--metrics", "perplexity",
                     "--vllm-python", sys.executable])
    assert result.exit_code == 2, result.output
    assert "vLLM does not run with" in _one_line(result)


# --- agreement with torch on the demo model ------------------------------------


@pytest.fixture(scope="module")
def demo_dense() -> Path:
    from gate.demo.build import ensure_demo_checkpoint

    return Path(ensure_demo_checkpoint("dense"))


@pytest.fixture(scope="class")  # freed before the command-line tests start engines of their own
def vllm_model(demo_dense):
    settings = vllm_backend.VllmSettings(python=_vllm_python())
    model = vllm_backend.load_vllm_model(demo_dense, dtype="float32", settings=settings)
    yield model
    model.close()


@pytest.fixture(scope="class")  # freed before the command-line tests start engines of their own
def torch_model(demo_dense):
    from gate.runtime.torch_backend import load_torch_model

    model = load_torch_model(demo_dense, device="cpu", dtype="float32")
    yield model
    model.close()


class TestAgainstTorch:
    pytestmark = needs_vllm

    def test_perplexity_is_within_half_a_percent_of_torch_on_the_same_windows(self, vllm_model, torch_model):
        from gate.inputs.corpus import load_text
        from gate.measurements.perplexity import make_windows, measure_perplexity

        windows = make_windows(torch_model.tokenizer, load_text(None).text, max_tokens=PPL_TOKENS)
        on_vllm, on_torch = measure_perplexity(vllm_model, windows), measure_perplexity(torch_model, windows)
        assert on_vllm.windows_fingerprint == on_torch.windows_fingerprint
        assert abs(on_vllm.perplexity / on_torch.perplexity - 1) < 0.005
        per_window = np.array(on_vllm.nll) / np.array(on_torch.nll)
        assert np.all(np.abs(per_window - 1) < 0.005)

    def test_letters_answers_and_srs_agree_with_torch(self, vllm_model, torch_model):
        from gate.measurements.bias.ask import answer_items
        from gate.measurements.bias.bbq import load_bbq_source
        from gate.measurements.bias.order import asking_order, first_items

        items = [item for family in first_items(asking_order(load_bbq_source(None).items), ITEMS) for item in family]
        on_vllm = answer_items(vllm_model, items, mode="letters", permute=True)
        on_torch = answer_items(torch_model, items, mode="letters", permute=True)
        same = np.mean([a.choices == b.choices for a, b in zip(on_vllm.answers, on_torch.answers)])
        assert same >= 0.99
        srs = lambda run: run.scores().overall.srs.value  # noqa: E731
        assert abs(srs(on_vllm) - srs(on_torch)) <= 0.01
        probabilities = lambda run: np.array([a.option_probabilities for a in run.answers])  # noqa: E731
        assert np.max(np.abs(probabilities(on_vllm) - probabilities(on_torch))) < 1e-3

    def test_next_token_log_probabilities_are_exact_not_top_k(self, vllm_model, torch_model):
        # Tokens far down the ranking get their exact log-probability, as torch computes it.
        prompt = torch_model.tokenizer.encode("The capital of France is")
        everything = torch_model.last_token_logprobs([prompt], list(range(torch_model.vocab_size)))[0]
        unlikely = [int(i) for i in np.argsort(everything)[:5]] + [int(np.argmax(everything))]
        got = vllm_model.last_token_logprobs([prompt, prompt[:-1]], unlikely)
        want = torch_model.last_token_logprobs([prompt, prompt[:-1]], unlikely)
        np.testing.assert_allclose(got, want, atol=1e-3)

    def test_greedy_generation_matches_torch_and_sampling_is_seeded(self, vllm_model, torch_model):
        prompts = [torch_model.tokenizer.encode(text) for text in ("Once upon a time, there", "Three primary colors are")]
        for prompt in prompts:
            greedy = vllm_model.generate(prompt, max_new_tokens=8, temperature=0.0, seed=0)
            assert greedy.token_ids == torch_model.generate(prompt, max_new_tokens=8, temperature=0.0, seed=0).token_ids
            assert greedy.text and 0 < greedy.prefill_seconds <= greedy.total_seconds
        first, again = (vllm_model.generate(prompts[0], max_new_tokens=8, temperature=0.3, seed=42) for _ in range(2))
        assert first.token_ids == again.token_ids

    def test_the_runtime_describes_itself(self, vllm_model):
        info = vllm_model.runtime_info()
        assert info["backend"] == "vllm" and info["device"] == "cpu" and info["dtype"] == "float32"
        assert info["backend_version"] == info["vllm_version"] and info["vllm_version"][0].isdigit()
        assert info["tensor_parallel_size"] == 1 and info["pipeline_parallel_size"] == 1
        assert vllm_model.peak_memory_bytes() > 4 * 134_000_000  # at least the float32 weights


@pytest.mark.vllm
@pytest.mark.skipif(_vllm_python() is None, reason="no vLLM here: `make test-vllm` builds its environment")
def test_a_split_vllm_refuses_is_one_line_and_exit_2(demo_dense):
    # The demo model has 9 attention heads: no 2-way tensor split.
    result = _check([str(demo_dense), "--base", str(demo_dense), "--backend", "vllm", "--metrics", "perplexity",
                     "--tensor-parallel-size", "2", "--vllm-python", _vllm_python()])
    assert result.exit_code == 2, result.output
    assert "does not divide the model's 9 attention heads" in _one_line(result)


@pytest.mark.vllm
@pytest.mark.skipif(_vllm_python() is None, reason="no vLLM here: `make test-vllm` builds its environment")
def test_gate_check_runs_quality_on_vllm_and_latency_on_the_edge_runtime(demo_dense, tmp_path, monkeypatch):
    from gate.demo.build import ensure_demo_checkpoint

    candidate = Path(ensure_demo_checkpoint("random10"))
    monkeypatch.setenv("GATE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "result.json"
    result = CliRunner().invoke(main, [
        "check", str(candidate), "--base", str(demo_dense), "--backend", "vllm", "--vllm-python", _vllm_python(),
        "--dtype", "float32", "--metrics", "latency,perplexity,bias", "--ppl-tokens", "1024", "--bbq-limit", "48",
        "--latency-prompts", "1", "--latency-repeats", "1", "--latency-warmup", "0", "--json", str(out), "-q"])
    assert result.exit_code in (0, 1, 3), result.output
    outcomes = {o["name"]: o for o in json.loads(out.read_text())["outcomes"]}
    assert all(o["error"] is None for o in outcomes.values()), [o["error"] for o in outcomes.values()]
    for name in ("perplexity", "bias"):
        runtime = outcomes[name]["result"]["runtime"]
        assert runtime["base"]["backend"] == runtime["candidate"]["backend"] == "vllm"
        assert runtime["base"]["vllm_version"] and runtime["base"]["device"] == "cpu"
        assert {f["subject"] for f in outcomes[name]["findings"] if f["code"] == "vllm-runtime"} == {"base", "candidate"}
    latency = outcomes["latency"]
    assert latency["result"]["backend"] in ("torch", "mlx")
    assert "latency-edge-runtime" in {f["code"] for f in latency["findings"]}
    # The base's runs are cached under keys that name the vllm runtime: two entries, perplexity and bias.
    assert len(list((tmp_path / "cache" / "base-runs").glob("*.json"))) == 2
