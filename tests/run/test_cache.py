"""The base-run cache: exact round trips, keys that change with what was asked, clearing."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from click.testing import CliRunner

from gate.measurements.bias.ask import BiasRun
from gate.measurements.bias.scores import ItemAnswer
from gate.run.cache import BaseRunCache, _content_digest, from_jsonable, weights_digest
from gate.cli.main import main
from gate.measurements.options import BiasOptions, PerplexityOptions
from gate.measurements.perplexity import PerplexityRun, TokenizerCheck
from gate.measurements.perplexity_step import ScoredRun
from gate.core.result import Finding, Interval, Severity


def perplexity_run() -> ScoredRun:
    run = PerplexityRun(nll=(10.5, 12.25), tokens=(511, 511), byte_counts=(2000, 2100), windows_fingerprint="w",
                        text_fingerprint="t", perplexity=1.0234, interval=Interval(1.0, 1.05, 0.95, "delta"),
                        bits_per_byte=0.01, bits_per_byte_interval=None,
                        findings=(Finding(Severity.WARNING, "x", "y"),))
    return ScoredRun(run, TokenizerCheck(True))


def bias_run() -> BiasRun:
    answers = (
        ItemAnswer("age-1", "age", "ambig", "neg", 2, 2, 0, (0,), ("letters",), (0.5, 0.25, 0.25), 0.9),
        ItemAnswer("age-2", "age", "disambig", "nonneg", 1, 2, 1, (None, 1), ("seed=42", "seed=123"), None, None,
                   ("?", "B"), ()),
    )
    return BiasRun("letters", False, "chat", (), None, None, ((32, 330), (33, 331), (34, 332)), answers, 1.5,
                   "torch cpu float32")


@pytest.mark.parametrize("make, cls", [(perplexity_run, ScoredRun), (bias_run, BiasRun)])
def test_runs_survive_the_cache_exactly(tmp_path, make, cls):
    cache = BaseRunCache(tmp_path)
    run = make()
    cache.put("k", run)
    assert cache.get("k", cls) == run
    assert cache.get("other", cls) is None
    assert cache.size()[0] == 1


def test_disabled_cache_stores_nothing(tmp_path):
    cache = BaseRunCache(tmp_path, enabled=False)
    cache.put("k", perplexity_run())
    assert cache.get("k", ScoredRun) is None
    assert not (tmp_path / "base-runs").exists()


def test_an_unreadable_entry_is_dropped_not_fatal(tmp_path):
    cache = BaseRunCache(tmp_path)
    cache.root.mkdir(parents=True)
    (cache.root / "k.json").write_text('{"nll": "not a run"}')
    assert cache.get("k", ScoredRun) is None
    assert not (cache.root / "k.json").exists()


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gate.run.cache"]


def test_an_edited_entry_is_never_used(tmp_path, caplog):
    # One edited digit once moved perplexity.ratio from 1.0002 to 0.21, silently.
    cache = BaseRunCache(tmp_path)
    cache.put("k", perplexity_run())
    entry = cache.root / "k.json"
    entry.write_text(entry.read_text().replace("1.0234", "0.2134"))
    assert cache.get("k", ScoredRun) is None
    assert not entry.exists()
    (warning,) = _warnings(caplog)
    assert warning.startswith("gate: warning: cache entry k.json does not match its checksum") and "\n" not in warning


def test_an_entry_under_another_key_is_never_used(tmp_path, caplog):
    cache = BaseRunCache(tmp_path)
    cache.put("k", perplexity_run())
    (cache.root / "k.json").rename(cache.root / "other.json")
    assert cache.get("other", ScoredRun) is None
    assert "answers another question" in _warnings(caplog)[0]


@pytest.mark.parametrize("content", ["{", "[]", '{"format": 2}', "\u0000" * 3, '{"a": ' + "[" * 5000 + "]" * 5000 + "}"])
def test_malformed_entries_are_dropped_with_a_warning(tmp_path, caplog, content):
    cache = BaseRunCache(tmp_path)
    cache.root.mkdir(parents=True)
    (cache.root / "k.json").write_text(content)
    assert cache.get("k", ScoredRun) is None
    assert len(_warnings(caplog)) == 1 and not (cache.root / "k.json").exists()


@pytest.mark.parametrize("memo", ["{", "[]", '{"a": 5}', '{"a": "not a digest"}'])
def test_a_malformed_digests_file_is_ignored_and_rewritten(tmp_path, caplog, memo):
    a = tmp_path / "a.safetensors"
    a.write_bytes(b"x" * 100)
    expected = weights_digest([a], tmp_path / "fresh")
    (tmp_path / "digests.json").write_text(memo)
    assert weights_digest([a], tmp_path) == expected
    assert "digests.json is malformed" in _warnings(caplog)[0]
    caplog.clear()
    assert weights_digest([a], tmp_path) == expected and not _warnings(caplog)  # rewritten, well-formed


def test_an_unwritable_cache_costs_the_cache_not_the_run(tmp_path, caplog):
    from gate.run.cache import cache_dir_problem

    (tmp_path / "file").write_text("x")
    assert "is not usable" in cache_dir_problem(tmp_path / "file")
    assert cache_dir_problem(tmp_path / "fine") is None
    cache = BaseRunCache(tmp_path / "file")
    cache.put("k", perplexity_run())  # no exception: the cache turns itself off
    assert not cache.enabled and "continuing without it" in _warnings(caplog)[0]
    a = tmp_path / "a.safetensors"
    a.write_bytes(b"x")
    assert weights_digest([a], tmp_path / "file")  # digests are still computed, just not remembered


def test_keys_depend_on_every_part(tmp_path):
    cache = BaseRunCache(tmp_path)
    assert cache.key("bias", "a", "w") != cache.key("bias", "b", "w") != cache.key("bias", "a", "v")
    assert cache.key("bias", "a", "w") == cache.key("bias", "a", "w")


def test_weights_digest_follows_content_and_is_remembered(tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    a.write_bytes(b"x" * 100)
    b.write_bytes(b"y" * 100)
    first = weights_digest([a, b], tmp_path)
    assert weights_digest([a, b], tmp_path) == first
    assert (tmp_path / "digests.json").exists()
    b.write_bytes(b"z" * 101)
    assert weights_digest([a, b], tmp_path) != first


def test_from_jsonable_handles_optional_and_nested_tuples():
    assert from_jsonable(tuple[int | None, ...], [1, None, 3]) == (1, None, 3)
    assert from_jsonable(tuple[float, float, float] | None, [1, 2, 3]) == (1.0, 2.0, 3.0)
    assert from_jsonable(float | None, None) is None
    with pytest.raises(TypeError):
        from_jsonable(int, "1")
    assert math.isclose(from_jsonable(float, 1), 1.0)


def test_an_entry_written_before_a_field_was_added_reads_back_with_its_default(tmp_path):
    # Runs gained a `runtime` field (which runtime measured them); entries written without it still read.
    cache = BaseRunCache(tmp_path)
    cache.put("k", perplexity_run())
    entry_file = next((tmp_path / "base-runs").glob("*.json"))
    entry = json.loads(entry_file.read_text())
    del entry["run"]["runtime"]
    entry["sha256"] = _content_digest(entry["run"])
    entry_file.write_text(json.dumps(entry))
    assert cache.get("k", ScoredRun) == perplexity_run()
    del entry["run"]["tokenizer_check"]  # a field without a default: another run type, dropped
    entry["sha256"] = _content_digest(entry["run"])
    entry_file.write_text(json.dumps(entry))
    assert cache.get("k", ScoredRun) is None


def test_cache_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("GATE_CACHE_DIR", str(tmp_path))
    BaseRunCache().put("k", perplexity_run())
    copy = tmp_path / "dequantized" / "0123abcd"
    copy.mkdir(parents=True)
    (copy / "model.safetensors").write_bytes(b"\0" * 2**20)
    demo = tmp_path / "demo" / "smollm2-135m-instruct" / "dense"
    demo.mkdir(parents=True)
    result = CliRunner().invoke(main, ["cache", "info"])
    assert result.exit_code == 0 and "1 base runs" in result.output
    assert "1 dense copies of quantized models, 1.0 MiB" in result.output
    result = CliRunner().invoke(main, ["cache", "clear"])
    assert result.exit_code == 0 and "removed 1 base runs" in result.output
    assert "removed 1 dense copies" in result.output
    assert BaseRunCache().size() == (0, 0)
    assert not (tmp_path / "dequantized").exists() and demo.is_dir()  # the demo builds are kept


def test_regating_against_the_same_base_uses_the_cache(tmp_path, monkeypatch):
    import shutil

    from fixtures.tiny_model import write_tiny_model
    from gate.run.check import CheckOptions, run_check

    monkeypatch.setenv("GATE_CACHE_DIR", str(tmp_path / "cache"))
    base = write_tiny_model(tmp_path / "base")
    candidate = tmp_path / "candidate"
    shutil.copytree(base, candidate)
    text = tmp_path / "text.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 200)
    options = CheckOptions(metrics=("perplexity", "bias"), backend="torch", cache=True, settings={
        "perplexity": PerplexityOptions(text=str(text), ctx=32, max_tokens=512), "bias": BiasOptions(limit=24)})
    first = {o.name: o for o in run_check(str(candidate), str(base), options).outcomes}
    second = {o.name: o for o in run_check(str(candidate), str(base), options).outcomes}
    for name in ("perplexity", "bias"):
        assert first[name].error is None and not first[name].base_cached
        assert second[name].base_cached
        assert second[name].metrics == first[name].metrics
    uncached = dataclasses.replace(options, cache=False)
    assert not any(o.base_cached for o in run_check(str(candidate), str(base), uncached).outcomes)


def test_cached_base_runs_are_keyed_by_the_dtype_actually_used(tmp_path, monkeypatch):
    # The CPU default dtype depends on the machine; a cache keyed on the options as given could pair
    # a base measured in one dtype with a candidate measured in another.
    import shutil

    from fixtures.tiny_model import write_tiny_model
    from gate.runtime.registry import resolve_runtime
    from gate.run.check import CheckOptions, run_check

    monkeypatch.setenv("GATE_CACHE_DIR", str(tmp_path / "cache"))
    base = write_tiny_model(tmp_path / "base")
    candidate = tmp_path / "candidate"
    shutil.copytree(base, candidate)

    def gate(dtype):
        options = CheckOptions(metrics=("bias",), backend="torch", dtype=dtype,
                               cache=True, settings={"bias": BiasOptions(limit=12)})
        (outcome,) = run_check(str(candidate), str(base), options).outcomes
        assert outcome.error is None
        return outcome.base_cached

    default = resolve_runtime("torch", None, None)[1]
    other = "float32" if default == "bfloat16" else "bfloat16"
    assert not gate(None)
    assert gate(default)  # naming the default dtype is the same run
    assert not gate(other)
    assert gate(other) and gate(None)


def test_the_base_run_is_kept_when_the_candidate_fails(tmp_path, monkeypatch):
    # Stored as soon as the base is measured: a broken (or stopped) candidate loses only its own work.
    import shutil

    from safetensors.torch import load_file, save_file

    from fixtures.tiny_model import write_tiny_model
    from gate.run.check import CheckOptions, run_check

    monkeypatch.setenv("GATE_CACHE_DIR", str(tmp_path / "cache"))
    base = write_tiny_model(tmp_path / "base")
    broken = tmp_path / "broken"
    shutil.copytree(base, broken)
    weights = load_file(broken / "model.safetensors")
    weights["model.norm.weight"][:] = float("nan")
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    options = CheckOptions(metrics=("bias",), backend="torch", cache=True, settings={"bias": BiasOptions(limit=12)})
    (failed,) = run_check(str(broken), str(base), options).outcomes
    assert failed.error is not None and "NaN" in failed.error
    good = tmp_path / "good"
    shutil.copytree(base, good)
    (outcome,) = run_check(str(good), str(base), options).outcomes
    assert outcome.error is None and outcome.base_cached
