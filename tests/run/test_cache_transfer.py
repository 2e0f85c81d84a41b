"""`gate cache export` / `gate cache import`: a base's runs moved between machines, checked before use."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from gate import __version__
from gate.cli.main import main
from gate.core.errors import InputError
from gate.run.cache import BaseRunCache
from gate.run.cache_transfer import export_runs, import_runs


@dataclass(frozen=True)
class Run:
    nll: tuple[float, ...]
    label: str


def _cache(tmp_path, name: str) -> BaseRunCache:
    return BaseRunCache(root=tmp_path / name)


def _filled(tmp_path, name="machine-a") -> tuple[BaseRunCache, list[str]]:
    cache = _cache(tmp_path, name)
    keys = [cache.key("perplexity", "windows=1"), cache.key("bias", "order=abc")]
    cache.put(keys[0], Run((1.5, 2.25), "perplexity"))
    cache.put(keys[1], Run((0.5,), "bias"))
    return cache, keys


def _rewrite(path, change) -> None:
    bundle = json.loads(gzip.decompress(path.read_bytes()))
    change(bundle)
    path.write_bytes(gzip.compress(json.dumps(bundle).encode()))


def test_runs_exported_on_one_machine_are_cache_hits_on_another(tmp_path):
    source, keys = _filled(tmp_path)
    bundle = tmp_path / "base-runs.json.gz"
    assert export_runs(source, bundle) == 2
    target = _cache(tmp_path, "machine-b")
    summary = import_runs(target, bundle)
    assert (summary.added, summary.unchanged, summary.replaced, summary.bundle_version) == (2, 0, 0, __version__)
    assert target.get(keys[0], Run) == Run((1.5, 2.25), "perplexity")
    assert target.get(keys[1], Run) == Run((0.5,), "bias")
    again = import_runs(target, bundle)
    assert (again.added, again.unchanged) == (0, 2)


def test_a_different_run_under_the_same_key_is_never_replaced_silently(tmp_path):
    source, keys = _filled(tmp_path)
    bundle = tmp_path / "bundle.gz"
    export_runs(source, bundle)
    target = _cache(tmp_path, "machine-b")
    target.put(keys[0], Run((9.0, 9.0), "measured elsewhere"))
    with pytest.raises(InputError, match="1 of its runs differ.*nothing imported.*--replace"):
        import_runs(target, bundle)
    assert target.get(keys[0], Run) == Run((9.0, 9.0), "measured elsewhere")
    assert target.get(keys[1], Run) is None  # nothing written, not even the entry without a conflict
    summary = import_runs(target, bundle, replace=True)
    assert (summary.added, summary.replaced) == (1, 1)
    assert target.get(keys[0], Run) == Run((1.5, 2.25), "perplexity")


def test_a_damaged_cache_entry_is_left_out_of_the_export(tmp_path):
    source, keys = _filled(tmp_path)
    (source.root / f"{keys[1]}.json").write_text("{not json")
    assert export_runs(source, tmp_path / "bundle.gz") == 1


def test_an_edited_bundle_is_refused_whole(tmp_path):
    source, _ = _filled(tmp_path)
    bundle = tmp_path / "bundle.gz"
    export_runs(source, bundle)
    _rewrite(bundle, lambda b: b["entries"][0]["run"].update(label="edited"))
    target = _cache(tmp_path, "machine-b")
    with pytest.raises(InputError, match="does not match its checksum"):
        import_runs(target, bundle)
    assert target.size() == (0, 0)


def test_an_entry_edited_behind_a_recomputed_bundle_checksum_is_still_caught(tmp_path):
    from gate.run.cache_transfer import _entries_digest

    source, _ = _filled(tmp_path)
    bundle = tmp_path / "bundle.gz"
    export_runs(source, bundle)

    def edit(b):
        b["entries"][1]["run"]["label"] = "edited"
        b["sha256"] = _entries_digest(b["entries"])

    _rewrite(bundle, edit)
    with pytest.raises(InputError, match=r"entry 2 does not match its checksum \(edited or damaged\); nothing imported"):
        import_runs(_cache(tmp_path, "machine-b"), bundle)


@pytest.mark.parametrize("content, message", [
    (b"plain text, not gzip", "not a gzip bundle"),
    (gzip.compress(b"[1, 2]"), "not a bundle in format"),
    (gzip.compress(b'{"format": "gate.cache-bundle/v1"')[:-6], "not a gzip bundle"),
])
def test_what_is_not_a_bundle_is_one_input_error(tmp_path, content, message):
    bundle = tmp_path / "bundle.gz"
    bundle.write_bytes(content)
    with pytest.raises(InputError, match=message):
        import_runs(_cache(tmp_path, "machine-b"), bundle)


def test_cli_export_then_import(tmp_path, monkeypatch):
    monkeypatch.setenv("GATE_CACHE_DIR", str(tmp_path / "a"))
    BaseRunCache().put(BaseRunCache().key("x"), Run((1.0,), "x"))
    bundle = tmp_path / "runs.json.gz"
    result = CliRunner().invoke(main, ["cache", "export", str(bundle)])
    assert result.exit_code == 0, result.output
    assert "exported 1 base runs" in result.output
    monkeypatch.setenv("GATE_CACHE_DIR", str(tmp_path / "b"))
    result = CliRunner().invoke(main, ["cache", "import", str(bundle)])
    assert result.exit_code == 0, result.output
    assert "imported 1 base runs" in result.output and "0 already held" in result.output
    result = CliRunner().invoke(main, ["cache", "import", str(tmp_path / "missing.gz")])
    assert result.exit_code == 2
    assert result.output.strip().startswith("gate: error:") and len(result.output.strip().splitlines()) == 1


def test_a_key_that_is_not_a_digest_never_names_a_file(tmp_path):
    source, _ = _filled(tmp_path)
    bundle = tmp_path / "bundle.gz"
    export_runs(source, bundle)
    from gate.run.cache import ENTRY_FORMAT, _content_digest
    from gate.run.cache_transfer import _entries_digest

    def add_traversal(b):
        run = {"nll": [1.0], "label": "x"}
        b["entries"].append({"format": ENTRY_FORMAT, "key": "../../escape", "sha256": _content_digest(run), "run": run})
        b["sha256"] = _entries_digest(b["entries"])

    _rewrite(bundle, add_traversal)
    with pytest.raises(InputError, match="entry 3 has a malformed key"):
        import_runs(_cache(tmp_path, "machine-b"), bundle)
    assert not (tmp_path / "escape.json").exists()
