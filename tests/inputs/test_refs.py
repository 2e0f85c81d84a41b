"""Model references: local paths, aliases, and Hugging Face ids served from a local cache."""

from __future__ import annotations

import pytest

from fixtures.checkpoints import build_checkpoint
from gate.core.errors import ModelNotFoundError
from gate.inputs.refs import aliases, resolve_model


def test_local_directory(tmp_path):
    built = build_checkpoint(tmp_path / "m", "dense")
    ref = resolve_model(str(built.path))
    assert ref.source == "local" and ref.path == built.path.resolve()


def test_alias_table_covers_the_families():
    table = aliases()
    assert table["mistral-7b"] == "mistralai/Mistral-7B-Instruct-v0.3"
    for family in ("llama", "gemma", "phi", "qwen", "smollm2"):
        assert any(alias.startswith(family) for alias in table), family
    assert table["demo"].startswith("demo:")


def _fake_hub_cache(cache, repo_id, tmp_path):
    """Lay a repository out the way huggingface_hub caches it: blobs, a snapshot, refs/main."""
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    built = build_checkpoint(tmp_path / "src", "dense")
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in built.path.iterdir():
        (snapshot / f.name).write_bytes(f.read_bytes())
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    return snapshot


def test_hub_id_from_local_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf

    cache = tmp_path / "hub"
    snapshot = _fake_hub_cache(cache, "acme/tiny-llama", tmp_path)
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    ref = resolve_model("acme/tiny-llama")
    assert ref.source == "hub" and ref.repo_id == "acme/tiny-llama"
    assert ref.path == snapshot


def test_hub_id_unreachable_is_a_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf

    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError, match="cannot fetch acme/absent from the Hugging Face hub"):
        resolve_model("acme/absent")


@pytest.mark.parametrize("spec", ["./pruned", "/nowhere/model", "pruned/"])
def test_path_like_specs_are_not_sent_to_the_hub(spec):
    with pytest.raises(ModelNotFoundError, match="no such file or directory"):
        resolve_model(spec)


@pytest.mark.parametrize("spec", ["a" * 5000, "a/" * 3000 + "x", "org/" + "n" * 300])
def test_references_that_cannot_be_paths_or_repositories_are_input_errors(spec):
    with pytest.raises(ModelNotFoundError) as caught:
        resolve_model(spec)
    assert len(str(caught.value)) < 200
