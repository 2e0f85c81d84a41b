"""`gate check C1 C2 … --base B` and `gate report --summary`: one candidate as before, several with {name} in
every report path, the base measured once (a temporary cache under --no-cache), one exit code for the lot."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fixtures.checkpoints import build_checkpoint
from gate.cli.main import main


def gate(*args, env=None):
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def models(tmp_path):
    """A dense base, a 50% magnitude-pruned candidate (passes a declared 50%) and a dense one (fails it)."""
    base = build_checkpoint(tmp_path / "base", "dense").path
    pruned = build_checkpoint(tmp_path / "pruned", "magnitude").path
    dense = build_checkpoint(tmp_path / "unpruned", "dense").path
    return base, pruned, dense


def audit(*args, env=None):
    return gate("check", *args, "--metrics", "sparsity,size", "--policy", "audit", "--expect-sparsity", "0.5", env=env)


def assert_one_line_error(code, err, fragment):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gate: error: ") and fragment in lines[0], err


def test_one_candidate_is_gated_as_before(models, tmp_path):
    base, pruned, _ = models
    literal = tmp_path / "{name}.json"
    code, out, _ = audit(pruned, "--base", base, "--json", literal)
    assert code == 0
    assert "Sparsity of the prunable weights" in out and "gate summary" not in out
    assert json.loads(literal.read_text())["candidate"]["spec"] == str(pruned)  # the path as written


def test_a_sweep_writes_each_candidates_reports_and_the_summary(models, tmp_path):
    base, pruned, dense = models
    out = tmp_path / "out"
    out.mkdir()
    step_summary = tmp_path / "step-summary.md"
    code, stdout, stderr = audit(pruned, dense, "--base", base, "--json", out / "{name}.json",
                                 "--markdown", out / "{name}.md", "--summary", tmp_path / "s.json",
                                 "--summary", tmp_path / "s.html", "--summary", tmp_path / "s.md",
                                 env={"GITHUB_STEP_SUMMARY": str(step_summary)})
    assert code == 1, stderr  # the worst of PASS and FAIL
    assert sorted(p.name for p in out.iterdir()) == ["pruned.json", "pruned.md", "unpruned.json", "unpruned.md"]
    assert json.loads((out / "unpruned.json").read_text())["verdict"]["status"] == "FAIL"
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["schema"] == "gate.summary/v1" and summary["exit_code"] == 1
    assert [(r["candidate"], r["verdict"], r["source"]) for r in summary["rows"]] == [
        (str(pruned), "PASS", str(out / "pruned.json")), (str(dense), "FAIL", str(out / "unpruned.json"))]
    page = (tmp_path / "s.html").read_text()
    assert 'id="chart-summary-srs"' in page and "No chart: No candidate has a bias result." in page
    assert (tmp_path / "s.md").read_text().startswith("## gate summary: ❌ FAIL")
    assert "candidate 1 of 2" in stderr and f"gate: {dense}: FAIL" in stderr
    assert "gate summary" in stdout and "the lot: FAIL (exit code 1)" in stdout
    assert "Sparsity of the prunable weights" not in stdout  # each candidate's full report is in its files
    shown = step_summary.read_text()
    assert shown.startswith("## gate summary") and "## gate: " not in shown  # the summary, not every report


def test_a_sweep_refuses_a_report_path_without_name_before_anything_runs(models, tmp_path):
    base, pruned, dense = models
    code, _, err = audit(pruned, dense, "--base", base, "--html", tmp_path / "r.html")
    assert_one_line_error(code, err, "--html")
    assert "needs {name}" in err and not list(tmp_path.glob("*.html"))
    code, _, err = audit(pruned, dense, "--base", base, "--summary", tmp_path / "s.txt")
    assert_one_line_error(code, err, "the suffix chooses the format")
    code, _, err = audit(pruned, dense, "--base", base, "--json", tmp_path / "{name}.json",
                         "--summary", tmp_path / "pruned.json")
    assert_one_line_error(code, err, "name the same file")


def test_a_candidate_that_names_nothing_stops_the_sweep_before_it_starts(models, tmp_path):
    base, pruned, _ = models
    code, out, err = audit(pruned, tmp_path / "missing", "--base", base, "--json", tmp_path / "{name}.json")
    assert_one_line_error(code, err, "missing")
    assert not list(tmp_path.glob("*.json")) and out == ""


def test_report_summary_merges_a_matrix_of_results(models, tmp_path):
    base, pruned, dense = models
    for candidate in (pruned, dense):
        audit(candidate, "--base", base, "--json", tmp_path / f"{candidate.name}.json", "--quiet")
    results = [tmp_path / "pruned.json", tmp_path / "unpruned.json"]
    code, out, _ = gate("report", "--summary", *results, "--markdown", tmp_path / "m.md", "--html", tmp_path / "m.html")
    assert code == 1 and "2 candidates: 1 PASS, 1 FAIL" in out
    assert "| ✅ PASS |" in (tmp_path / "m.md").read_text() and (tmp_path / "m.html").exists()
    code, out, err = gate("report", "--summary", *results, "--quiet")
    assert code == 1 and out == "" and "the lot: FAIL" in err
    summary = tmp_path / "m.json"
    gate("report", "--summary", results[0], "--json", summary)
    assert json.loads(summary.read_text())["exit_code"] == 0
    assert_one_line_error(*gate("report", "--summary", results[0], summary)[::2], "is not a gate result")
    assert_one_line_error(*gate("report", "--summary", *results, "--junit", tmp_path / "j.xml")[::2],
                          "--junit has no summary form")
    assert_one_line_error(*gate("report", *results)[::2], "merge several with --summary")


def tiny_models(tmp_path):
    from fixtures.tiny_model import write_tiny_model

    base = write_tiny_model(tmp_path / "base")
    candidates = [write_tiny_model(tmp_path / f"c{seed}", seed=seed) for seed in (1, 2)]
    text = tmp_path / "text.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 200)
    return base, candidates, ("--metrics", "perplexity,bias", "--backend", "torch", "--text", text, "--ctx", "32",
                              "--ppl-tokens", "512", "--bbq-limit", "24", "--no-sequential")


@pytest.mark.parametrize("no_cache", [False, True])
def test_a_sweep_measures_the_base_once(tmp_path, no_cache):
    base, candidates, args = tiny_models(tmp_path)
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = gate("check", *candidates, "--base", base, *args, "--json", out / "{name}.json", "--quiet",
                        *(["--no-cache"] if no_cache else []), env={"GATE_CACHE_DIR": str(cache)})
    assert code in (0, 1, 3), err
    first, second = (json.loads((out / f"{c.name}.json").read_text()) for c in candidates)
    assert not any(o["base_cached"] for o in first["outcomes"])
    assert {o["name"] for o in second["outcomes"] if o["base_cached"]} == {"perplexity", "bias"}
    stored = list((cache / "base-runs").glob("*.json")) if (cache / "base-runs").exists() else []
    assert (stored == []) == no_cache  # --no-cache: the base's runs lived in a temporary cache, now gone
