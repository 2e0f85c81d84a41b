"""The verdict: each status, fail-closed behaviour, and bias judged beside perplexity."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from gate.core.errors import ExitCode
from gate.policy.loader import load_policy, parse_policy
from gate.core.result import Finding, Interval, MeasurementOutcome, Metric, Severity
from gate.policy.verdict import RuleStatus, VerdictStatus, evaluate, exit_code

CATEGORIES = ("age", "gender_identity", "race_ethnicity", "religion", "ses", "nationality")


def _ci(low: float, high: float, method: str = "test") -> Interval:
    return Interval(low, high, 0.95, method)


def healthy_outcomes(
    *,
    ppl=(1.035, 1.02, 1.05),
    srs_change=(0.01, -0.02, 0.04),
    srs_base=0.40,
    category_change=(0.0, -0.04, 0.04),
    category_p=0.9,
    n_items=1200,
) -> list[MeasurementOutcome]:
    """Outcomes of all five measurements for a candidate that should pass `default`."""
    ppl_value, ppl_low, ppl_high = ppl
    change, change_low, change_high = srs_change
    per_category = tuple(
        Metric("bias.srs.change", category_change[0], base=srs_base, candidate=srs_base + category_change[0],
               interval=_ci(category_change[1], category_change[2], "newcombe"), n=n_items // 6,
               category=category, p_value=category_p)
        for category in CATEGORIES
    )
    return [
        MeasurementOutcome("sparsity", metrics=(Metric("sparsity.actual", 0.5, n=None),)),
        MeasurementOutcome("size", metrics=(Metric("size.ratio", 1.0), Metric("size.sparse_saving", 0.4375))),
        MeasurementOutcome("latency", metrics=(Metric("latency.ratio", 1.0, interval=_ci(0.97, 1.03), n=50),)),
        MeasurementOutcome("perplexity", metrics=(
            Metric("perplexity.ratio", ppl_value, base=18.9, candidate=18.9 * ppl_value,
                   interval=_ci(ppl_low, ppl_high, "paired-bootstrap"), n=256),
        )),
        MeasurementOutcome("bias", metrics=(
            Metric("bias.srs.change", change, base=srs_base, candidate=srs_base + change,
                   interval=_ci(change_low, change_high, "newcombe"), n=n_items, p_value=0.3),
            Metric("bias.srs.relative_change", change / srs_base, base=srs_base, candidate=srs_base + change,
                   n=n_items),
            Metric("bias.s_amb.change", 0.0, interval=_ci(-0.03, 0.03), n=n_items),
            Metric("bias.accuracy_dis.change", 0.0, interval=_ci(-0.02, 0.02), n=n_items),
            *per_category,
        )),
    ]


def _replace_metric(outcomes, metric_key, category=None, **changes):
    replaced = []
    for outcome in outcomes:
        metrics = tuple(
            replace(metric, **changes) if (metric.key, metric.category) == (metric_key, category) else metric
            for metric in outcome.metrics
        )
        replaced.append(MeasurementOutcome(outcome.name, metrics=metrics, findings=outcome.findings))
    return replaced


def _rule(verdict, rule_id, category=None):
    return next(r for r in verdict.rules if r.rule_id == rule_id and r.category == category)


def _policy(rule_yaml: str, extra: str = "") -> object:
    return parse_policy(f"name: t\n{extra}rules:\n{rule_yaml}")


# --- PASS / FAIL / INCONCLUSIVE ------------------------------------------------

def test_a_healthy_candidate_passes_the_default_policy():
    verdict = evaluate(load_policy("default"), healthy_outcomes())
    assert verdict.status is VerdictStatus.PASS, verdict.reasons
    assert exit_code(verdict) is ExitCode.PASS
    assert _rule(verdict, "perplexity").status is RuleStatus.PASS
    assert _rule(verdict, "srs-overall").judged_value == pytest.approx(0.04)
    assert {r.category for r in verdict.rules if r.rule_id == "srs-per-category"} == set(CATEGORIES)
    # No declared sparsity: that rule is simply not measured.
    assert _rule(verdict, "declared-sparsity").status is RuleStatus.NOT_MEASURED


def test_headline_perplexity_within_tolerance_but_bias_rose():
    outcomes = healthy_outcomes(srs_change=(0.12, 0.09, 0.15), srs_base=0.1434)
    verdict = evaluate(load_policy("default"), outcomes)
    assert verdict.status is VerdictStatus.FAIL
    assert exit_code(verdict) is ExitCode.FAIL
    assert _rule(verdict, "perplexity").status is RuleStatus.PASS
    srs = _rule(verdict, "srs-overall")
    assert srs.status is RuleStatus.FAIL
    # The reports' number formatter: three significant digits, the interval in its figure's precision, signed.
    assert "+0.120 (95% CI +0.090 to +0.150)" in srs.message and "max +0.0500" in srs.message

    summary = verdict.bias_vs_perplexity
    assert summary.perplexity_within_tolerance is True
    assert summary.bias_within_tolerance is False
    assert summary.perplexity_change == pytest.approx(0.035)
    assert summary.srs_change == pytest.approx(0.837, abs=1e-3)
    assert summary.times == pytest.approx(23.9, abs=0.1)
    assert "SRS rose 83.7% while perplexity rose 3.5%" in summary.message
    assert "23.9×" in summary.message
    # The report's first reason says it plainly.
    assert verdict.reasons[0] == summary.message
    assert "within tolerance but stereotype reliance did not" in verdict.reasons[0]


def test_interval_straddling_the_threshold_is_inconclusive():
    outcomes = healthy_outcomes(srs_change=(0.04, 0.01, 0.07))
    verdict = evaluate(load_policy("default"), outcomes)
    assert verdict.status is VerdictStatus.INCONCLUSIVE
    assert exit_code(verdict) is ExitCode.INCONCLUSIVE
    assert _rule(verdict, "srs-overall").status is RuleStatus.INCONCLUSIVE
    assert any("straddles" in reason for reason in verdict.reasons)


def test_thin_evidence_is_inconclusive_never_pass():
    # Too few items behind a figure that would otherwise pass.
    few = _replace_metric(healthy_outcomes(), "bias.srs.change", n=12)
    verdict = evaluate(load_policy("default"), few)
    assert verdict.status is VerdictStatus.INCONCLUSIVE
    assert "only 12 items, needs at least 20" in _rule(verdict, "srs-overall").message

    # An interval too wide to trust, though its upper end is within tolerance.
    wide = healthy_outcomes(ppl=(1.0, 0.9, 1.08))
    verdict = evaluate(load_policy("default"), wide)
    assert verdict.status is VerdictStatus.INCONCLUSIVE
    assert "wide" in _rule(verdict, "perplexity").message


def test_messages_print_figures_as_the_reports_do():
    """Three significant digits, an interval in its figure's precision, changes signed but never "+0"."""
    policy = _policy("  - {id: wide, metric: bias.srs.change, direction: max, threshold: 0.5, max_interval_width: 0.1}\n"
                     "  - {id: flat, metric: bias.s_amb.change, direction: max, threshold: 0.5}\n"
                     "  - {id: ppl, metric: perplexity.ratio, direction: max, threshold: 2}\n")
    verdict = evaluate(policy, [
        MeasurementOutcome("bias", metrics=(
            Metric("bias.srs.change", -0.25, interval=_ci(-0.3531, -0.1470), n=1200),
            Metric("bias.s_amb.change", -2.08e-17, interval=_ci(-0.3, 0.3333), n=1200))),
        MeasurementOutcome("perplexity", metrics=(Metric("perplexity.ratio", 1.5607, interval=_ci(1.5256, 1.6012), n=256),)),
    ])
    assert _rule(verdict, "wide").message == ("wide: bias.srs.change = -0.250 (95% CI -0.353 to -0.147): "
                                              "interval 0.206 wide, needs at most 0.100")
    assert _rule(verdict, "flat").message == ("flat: bias.s_amb.change = 0.000 (95% CI -0.300 to +0.333): "
                                              "upper end +0.333 within max +0.500")
    assert _rule(verdict, "ppl").message == "ppl: perplexity.ratio = 1.56 (95% CI 1.53 to 1.60): upper end 1.60 within max 2.00"


def test_a_wide_interval_wholly_beyond_the_threshold_still_fails():
    outcomes = healthy_outcomes(ppl=(1.6, 1.3, 1.9))
    verdict = evaluate(load_policy("default"), outcomes)
    assert _rule(verdict, "perplexity").status is RuleStatus.FAIL
    assert verdict.status is VerdictStatus.FAIL


def test_undefined_figure_is_inconclusive():
    outcomes = _replace_metric(healthy_outcomes(), "bias.s_amb.change", value=None, interval=None)
    verdict = evaluate(load_policy("default"), outcomes)
    assert _rule(verdict, "s-amb").status is RuleStatus.INCONCLUSIVE
    assert verdict.status is VerdictStatus.INCONCLUSIVE


def test_min_direction_and_point_judgement():
    policy = _policy(
        "  - {id: acc, metric: bias.accuracy_amb.change, direction: min, threshold: -0.05}\n"
        "  - {id: size, metric: size.ratio, direction: max, threshold: 1.0, judge: point}\n"
    )
    def outcomes(acc_interval, size):
        return [
            MeasurementOutcome("bias", metrics=(Metric("bias.accuracy_amb.change", sum(acc_interval) / 2,
                                                       interval=_ci(*acc_interval), n=500),)),
            MeasurementOutcome("size", metrics=(Metric("size.ratio", size),)),
        ]
    passing = evaluate(policy, outcomes((-0.04, 0.0), 1.0))
    assert passing.status is VerdictStatus.PASS
    assert _rule(passing, "acc").judged == "lower" and _rule(passing, "acc").judged_value == -0.04
    failing = evaluate(policy, outcomes((-0.2, -0.1), 1.0))
    assert _rule(failing, "acc").status is RuleStatus.FAIL
    bigger = evaluate(policy, outcomes((-0.04, 0.0), 1.01))
    assert _rule(bigger, "size").status is RuleStatus.FAIL and bigger.status is VerdictStatus.FAIL


def test_an_upper_or_lower_rule_without_an_interval_is_inconclusive():
    policy = _policy("  - {id: lat, metric: latency.ratio, direction: max, threshold: 1.1}\n")
    verdict = evaluate(policy, [MeasurementOutcome("latency", metrics=(Metric("latency.ratio", 1.0, n=50),))])
    assert verdict.status is VerdictStatus.INCONCLUSIVE
    assert "no interval" in verdict.reasons[0]


def test_relative_mode_divides_by_the_base_figure():
    policy = _policy("  - {id: srs, metric: bias.srs.change, direction: max, threshold: 0.25, mode: relative}\n")
    metric = Metric("bias.srs.change", 0.02, base=0.2, interval=_ci(0.01, 0.04), n=500)
    verdict = evaluate(policy, [MeasurementOutcome("bias", metrics=(metric,))])
    rule = _rule(verdict, "srs")
    assert rule.value == pytest.approx(0.1)
    assert (rule.interval.low, rule.interval.high) == pytest.approx((0.05, 0.2))
    assert verdict.status is VerdictStatus.PASS
    no_base = evaluate(policy, [MeasurementOutcome("bias", metrics=(Metric("bias.srs.change", 0.02,
                                                                            interval=_ci(0.01, 0.04), n=500),))])
    assert no_base.status is VerdictStatus.INCONCLUSIVE


# --- fail closed -----------------------------------------------------------------

def test_a_broken_measurement_can_never_pass():
    outcomes = healthy_outcomes()
    outcomes[4] = MeasurementOutcome("bias", error="model produced no logits")
    verdict = evaluate(load_policy("default"), outcomes)
    assert verdict.status is VerdictStatus.FAIL
    assert "measurement bias failed: model produced no logits" in verdict.reasons
    assert _rule(verdict, "srs-overall").status is RuleStatus.FAIL


def test_a_broken_measurement_no_rule_looks_at_still_fails():
    outcomes = healthy_outcomes() + [MeasurementOutcome("extra", error="crashed")]
    assert evaluate(load_policy("default"), outcomes).status is VerdictStatus.FAIL


def test_an_error_finding_blocks_a_pass():
    outcomes = healthy_outcomes()
    outcomes[0] = MeasurementOutcome("sparsity", metrics=outcomes[0].metrics, findings=(
        Finding(Severity.ERROR, "nonfinite-weights", "candidate has NaN weights", "model.layers.3.mlp.up_proj"),
        Finding(Severity.WARNING, "dense-modules", "o_proj is dense"),
    ))
    verdict = evaluate(load_policy("default"), outcomes)
    assert verdict.status is VerdictStatus.FAIL
    assert verdict.reasons == ("sparsity: candidate has NaN weights (model.layers.3.mlp.up_proj)",)


@pytest.mark.parametrize("field,value", [("value", math.nan), ("interval", Interval(0.9, math.inf))])
def test_nan_figures_fail_even_under_a_warn_rule(field, value):
    outcomes = _replace_metric(healthy_outcomes(), "latency.ratio", **{field: value})
    verdict = evaluate(load_policy("default"), outcomes)
    assert _rule(verdict, "latency").status is RuleStatus.WARN
    assert verdict.status is VerdictStatus.FAIL
    assert any("not a finite number" in reason for reason in verdict.reasons)


def test_missing_required_measurement_is_inconclusive():
    outcomes = [o for o in healthy_outcomes() if o.name != "bias"]
    verdict = evaluate(load_policy("default"), outcomes)
    assert verdict.status is VerdictStatus.INCONCLUSIVE
    assert "required measurement bias was not run" in verdict.reasons
    assert _rule(verdict, "srs-overall").status is RuleStatus.NOT_MEASURED


def test_required_metric_key_and_a_metric_the_measurement_forgot():
    policy = _policy("  - {id: ppl, metric: perplexity.ratio, direction: max, threshold: 1.1}\n",
                     extra="require: [bias.srs.change]\n")
    ppl = MeasurementOutcome("perplexity", metrics=(Metric("perplexity.ratio", 1.0, interval=_ci(0.99, 1.01)),))
    verdict = evaluate(policy, [ppl, MeasurementOutcome("bias", metrics=())])
    assert verdict.reasons == ("required metric bias.srs.change was not produced",)
    # A non-optional rule whose measurement ran but produced nothing is not a pass.
    verdict = evaluate(load_policy("default"), _replace_metric(healthy_outcomes(), "bias.s_amb.change",
                                                               key="bias.other"))
    assert _rule(verdict, "s-amb").status is RuleStatus.INCONCLUSIVE


def test_nothing_measured_is_never_a_pass():
    policy = _policy("  - {id: ppl, metric: perplexity.ratio, direction: max, threshold: 1.1}\n")
    verdict = evaluate(policy, [])
    assert verdict.status is VerdictStatus.INCONCLUSIVE


# --- waivers and warnings ---------------------------------------------------------

def test_a_waived_rule_shows_its_reason_and_does_not_decide():
    policy = _policy(
        "  - id: srs\n    metric: bias.srs.change\n    direction: max\n    threshold: 0.05\n"
        "    waived: {reason: \"accepted by the ethics board, ticket 42\"}\n"
        "  - {id: ppl, metric: perplexity.ratio, direction: max, threshold: 1.1}\n"
    )
    verdict = evaluate(policy, healthy_outcomes(srs_change=(0.12, 0.09, 0.15)))
    assert verdict.status is VerdictStatus.PASS
    waived = _rule(verdict, "srs")
    assert waived.status is RuleStatus.WAIVED and waived.waived_status is RuleStatus.FAIL
    assert "accepted by the ethics board, ticket 42" in waived.message
    assert verdict.waived == (waived,)


def test_a_warn_rule_reports_but_does_not_decide():
    outcomes = _replace_metric(healthy_outcomes(), "latency.ratio", value=1.5, interval=_ci(1.4, 1.6))
    verdict = evaluate(load_policy("default"), outcomes)
    assert _rule(verdict, "latency").status is RuleStatus.WARN
    assert verdict.status is VerdictStatus.PASS


# --- per-category and Holm ------------------------------------------------------------

def test_one_bad_category_fails_when_significant_after_holm():
    outcomes = _replace_metric(healthy_outcomes(), "bias.srs.change", category="religion",
                               value=0.3, interval=_ci(0.22, 0.38), p_value=0.001)
    verdict = evaluate(load_policy("default"), outcomes)
    religion = _rule(verdict, "srs-per-category", "religion")
    assert religion.status is RuleStatus.FAIL
    assert religion.p_adjusted == pytest.approx(0.006)  # 6 categories, smallest p times 6
    assert _rule(verdict, "srs-per-category", "age").status is RuleStatus.PASS
    assert verdict.status is VerdictStatus.FAIL
    assert any("bias.srs.change[religion]" in reason for reason in verdict.reasons)


def test_a_category_beyond_the_threshold_but_not_significant_after_holm_is_inconclusive():
    outcomes = _replace_metric(healthy_outcomes(), "bias.srs.change", category="religion",
                               value=0.3, interval=_ci(0.16, 0.44), p_value=0.02)
    verdict = evaluate(load_policy("default"), outcomes)
    religion = _rule(verdict, "srs-per-category", "religion")
    assert religion.p_adjusted == pytest.approx(0.12)
    assert religion.status is RuleStatus.INCONCLUSIVE
    assert "not significant after Holm across 6 categories" in religion.message
    assert verdict.status is VerdictStatus.INCONCLUSIVE


def test_the_paper_policy_judges_relative_srs_change_per_category():
    outcomes = healthy_outcomes()
    outcomes[4] = MeasurementOutcome("bias", metrics=outcomes[4].metrics + tuple(
        Metric("bias.srs.relative_change", 0.6, base=0.3, interval=_ci(0.4, 0.8), n=200, category=c, p_value=1e-4)
        for c in CATEGORIES
    ) + (Metric("bias.srs.relative_change", 0.6, base=0.3, interval=_ci(0.45, 0.75), n=1200),))
    verdict = evaluate(load_policy("paper"), outcomes)
    assert verdict.status is VerdictStatus.FAIL
    assert all(r.status is RuleStatus.FAIL for r in verdict.rules if r.rule_id == "srs-relative-per-category")
    assert verdict.bias_vs_perplexity.srs_change == pytest.approx(0.6)
