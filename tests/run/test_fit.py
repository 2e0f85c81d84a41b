"""Default budgets fitted to the machine: scaled down out loud where the estimate is over the target, never a
budget the user set, never with --full-budgets. The target is lowered here so that a tiny model's estimate is over it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gate.cli.main import main
from gate.measurements.check_options import CheckOptions
from gate.measurements.latency_step import MIN_SCALED_PROMPTS, LatencyStep
from gate.measurements.options import LatencyOptions, PerplexityOptions
from gate.measurements.perplexity_step import MIN_SCALED_WINDOWS, PerplexityStep
from gate.run.estimate import Estimate
from gate.run.fit import fit_to_machine


def _fit(step, options, tokenizer, seconds, target, monkeypatch):
    monkeypatch.setattr("gate.run.fit.TARGET_SECONDS", target)
    plan = step.plan(tokenizer, options)
    estimates = iter([Estimate(step.name, "default plan", seconds)])

    def estimate_plan(smaller):
        work = step.workload(smaller, tokenizer)
        return Estimate(step.name, work.summary, seconds / 10)

    return plan, fit_to_machine(step, plan, next(estimates), options, tokenizer, None, estimate_plan)


def test_perplexity_keeps_the_first_windows_in_proportion_and_never_fewer_than_its_floor(tiny_tokenizer, monkeypatch):
    options = CheckOptions(fit_to_machine=True, settings={"perplexity": PerplexityOptions(ctx=32)})
    plan, fitted = _fit(PerplexityStep(), options, tiny_tokenizer, seconds=4000.0, target=1000.0, monkeypatch=monkeypatch)
    full = len(plan.windows)
    assert len(fitted.plan.windows) == max(MIN_SCALED_WINDOWS, full // 4) < full
    assert fitted.plan.windows.token_ids == plan.windows.token_ids[:len(fitted.plan.windows)]  # the same text, cut
    assert fitted.finding.severity.value == "warning" and fitted.finding.code == "budget-scaled-down"
    assert "--full-budgets" in fitted.finding.message and "INCONCLUSIVE" in fitted.finding.message
    _, tiny = _fit(PerplexityStep(), options, tiny_tokenizer, seconds=1e9, target=1.0, monkeypatch=monkeypatch)
    assert len(tiny.plan.windows) == MIN_SCALED_WINDOWS


def test_latency_keeps_two_rounds_and_times_fewer_prompts(tiny_tokenizer, monkeypatch):
    options = CheckOptions(fit_to_machine=True)
    plan, fitted = _fit(LatencyStep(), options, tiny_tokenizer, seconds=800.0, target=100.0, monkeypatch=monkeypatch)
    assert (plan.repeats, len(plan.prompts)) == (2, 10)
    assert (fitted.plan.repeats, len(fitted.plan.prompts)) == (2, MIN_SCALED_PROMPTS)  # 20 timings × 1/8 → 2, floor 3
    assert len(set(fitted.plan.item_ids)) == MIN_SCALED_PROMPTS


def test_latency_rounds_the_user_set_are_kept(tiny_tokenizer, monkeypatch):
    options = CheckOptions(fit_to_machine=True).with_options(LatencyOptions(repeats=4))
    _, fitted = _fit(LatencyStep(), options, tiny_tokenizer, seconds=800.0, target=100.0, monkeypatch=monkeypatch)
    assert fitted is None


@pytest.mark.parametrize("options", [
    CheckOptions(fit_to_machine=False),  # --full-budgets, or a library caller
    CheckOptions(fit_to_machine=True, settings={"perplexity": PerplexityOptions(ctx=32, max_tokens=4096)}),
])
def test_a_budget_the_user_set_or_full_budgets_is_kept(options, tiny_tokenizer, monkeypatch):
    _, fitted = _fit(PerplexityStep(), options, tiny_tokenizer, seconds=1e6, target=1.0, monkeypatch=monkeypatch)
    assert fitted is None


def test_latency_prompts_the_user_set_are_kept(tiny_tokenizer, monkeypatch):
    options = CheckOptions(fit_to_machine=True, settings={"latency": LatencyOptions(prompts=6)})
    _, fitted = _fit(LatencyStep(), options, tiny_tokenizer, seconds=1e6, target=1.0, monkeypatch=monkeypatch)
    assert fitted is None


def test_within_the_target_nothing_changes(tiny_tokenizer, monkeypatch):
    _, fitted = _fit(PerplexityStep(), CheckOptions(fit_to_machine=True), tiny_tokenizer, seconds=10.0, target=600.0,
                     monkeypatch=monkeypatch)
    assert fitted is None


def test_gate_check_announces_the_scaled_plan_and_reports_it(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("gate.run.fit.TARGET_SECONDS", 0.0)  # every default budget is "too slow" here
    args = ["check", str(tiny_model_dir), "--base", str(tiny_model_dir), "--metrics", "perplexity", "--ctx", "32"]
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, args + ["--json", str(out)])
    assert result.exit_code in (0, 3), result.output
    assert f"warning: perplexity: the default plan (" in result.output
    assert f"scaled down to {MIN_SCALED_WINDOWS} windows × 32 tokens × 2 models" in result.output
    outcome = json.loads(out.read_text())["outcomes"][0]
    assert outcome["result"]["windows"] == MIN_SCALED_WINDOWS
    assert outcome["plan"] == f"{MIN_SCALED_WINDOWS} windows × 32 tokens × 2 models"
    assert [f["code"] for f in outcome["findings"]][0] == "budget-scaled-down"

    full = tmp_path / "full.json"
    result = CliRunner().invoke(main, args + ["--full-budgets", "--json", str(full)])
    assert result.exit_code in (0, 3), result.output
    assert "scaled down" not in result.output
    assert json.loads(full.read_text())["outcomes"][0]["result"]["windows"] > MIN_SCALED_WINDOWS
