"""End to end on the real model: the demo SmolLM2-135M against its Wanda-50% variant.

The paper's Wanda code left o_proj and down_proj dense, so the "50%" variant
is 32.8% sparse: the gate must catch the unmet declared target, show which
module kinds are dense, and still run every measurement.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gate.cli.main import main

pytestmark = pytest.mark.e2e


def test_gate_on_the_demo_model(tmp_path):
    out = tmp_path / "result.json"
    records = tmp_path / "records"
    result = CliRunner().invoke(main, [
        "check", "demo:wanda50", "--base", "demo", "--expect-sparsity", "0.5", "--backend", "torch",
        "--metrics", "sparsity,size,latency,perplexity,bias", "--ppl-tokens", "4096", "--bbq-limit", "60",
        "--latency-prompts", "2", "--latency-repeats", "1", "--records", str(records), "--json", str(out), "--quiet",
        "--no-cache",
    ])
    assert result.exit_code == 1, result.output + result.stderr
    doc = json.loads(out.read_text())
    outcomes = {o["name"]: o for o in doc["outcomes"]}
    assert set(outcomes) == {"sparsity", "size", "latency", "perplexity", "bias"}
    assert all(o["error"] is None for o in outcomes.values()), [o["error"] for o in outcomes.values()]
    assert doc["verdict"]["status"] == "FAIL"

    sparsity = outcomes["sparsity"]["result"]
    assert sparsity["candidate"]["overall"]["sparsity"] == pytest.approx(0.3282, abs=5e-4)
    assert sparsity["candidate"]["dense_kinds"] == ["o_proj", "down_proj"]
    assert sparsity["base"]["overall"]["sparsity"] < 0.001
    assert "declared-sparsity-not-met" in {f["code"] for f in outcomes["sparsity"]["findings"]}

    size = outcomes["size"]["result"]
    assert size["ratio"] == 1.0  # unstructured zeros save nothing on disk
    assert size["candidate"]["sparse_saving"] > 0.2

    ppl = {m["key"]: m for m in outcomes["perplexity"]["metrics"]}
    assert 15 < ppl["perplexity.base"]["value"] < 60
    assert ppl["perplexity.ratio"]["value"] > 1.0
    assert ppl["perplexity.ratio"]["n"] == 8

    bias = {(m["key"], m["category"]) for m in outcomes["bias"]["metrics"]}
    assert ("bias.srs.change", None) in bias and ("bias.s_amb.change", "religion") in bias
    assert (records / "bbq_records.jsonl").read_text().count("\n") == 60

    latency = {m["key"]: m for m in outcomes["latency"]["metrics"]}
    assert latency["latency.ratio"]["value"] > 0

    # The saved result re-renders every section without running a model, and keeps its verdict's exit code.
    shown = CliRunner().invoke(main, ["report", str(out), "--markdown", str(tmp_path / "r.md")])
    assert shown.exit_code == 1
    for title in ("gate verdict", "Policy rules", "Sparsity of the prunable weights", "Size on disk",
                  "Perplexity on 8 windows of 512 tokens", "Bias on BBQ — 60 items", "Latency of one generate call"):
        assert title in shown.output, title
    assert "## gate: ❌ FAIL" in (tmp_path / "r.md").read_text()


@pytest.mark.e2e
def test_a_report_into_a_model_named_by_alias_is_refused_before_anything_runs():
    from gate.demo.build import ensure_demo_checkpoint

    dense = ensure_demo_checkpoint("dense")
    before = sorted(p.name for p in dense.iterdir())
    for option, target in (("--json", dense / "r.json"), ("--records", dense / "records")):
        result = CliRunner().invoke(main, ["check", "demo", "--base", "demo", "--metrics", "size", "--policy",
                                           "audit", option, str(target), "--quiet"])
        assert result.exit_code == 2 and "would write into an input" in result.stderr
    assert sorted(p.name for p in dense.iterdir()) == before
