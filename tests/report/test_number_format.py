"""The one number formatter: three significant digits, rates in percent, signed changes, no "+0"."""

from __future__ import annotations

import pytest

from gate.report import text as fmt


@pytest.mark.parametrize("value, shown", [
    (0.006667, "0.00667"), (-0.003333, "-0.00333"), (1.0312, "1.03"), (41.234, "41.2"), (28.817, "28.8"),
    (1234.5, "1,230"), (999.6, "1,000"), (0.09999, "0.100"), (0.0, "0"), (-2.08e-17, "0"), (1.234e-5, "1.23e-05"),
    (12, "12"), (106168320, "106,168,320"), (None, "—"), (float("nan"), "—"),
])
def test_num(value, shown):
    assert fmt.num(value) == shown


@pytest.mark.parametrize("value, shown", [
    (0.0123, "+0.0123"), (-1.5, "-1.50"), (0.0, "0"), (-0.0, "0"), (3e-14, "0"), (250.4, "+250"),
])
def test_signed_changes_carry_a_sign_but_never_plus_zero(value, shown):
    assert fmt.signed(value) == shown


def test_rates_are_percentages_with_one_decimal():
    assert fmt.pct(0.32823) == "32.8%" and fmt.pct(0.5) == "50.0%" and fmt.pct(0.0) == "0.0%" and fmt.pct(1.0) == "100.0%"
    assert fmt.signed_pct(0.1717) == "+17.2 pp" and fmt.signed_pct(-0.0333) == "-3.3 pp"
    assert fmt.signed_pct(0.0004) == "0.0 pp" and fmt.signed_pct(-0.0004) == "0.0 pp"
    assert fmt.pct_interval({"low": -0.2429, "high": 0.1796}, " pp") == "[-24.3, 18.0] pp"


def test_an_interval_shares_its_figures_precision():
    assert fmt.figure(1.5607, {"low": 1.5256, "high": 1.6012}) == ("1.56", "[1.53, 1.60]")
    assert fmt.figure(0.006667, {"low": -0.09867, "high": 0.0745}, sign=True) == ("+0.0067", "[-0.0987, 0.0745]")
    assert fmt.figure(-2.08e-17, {"low": -0.3, "high": 0.3333}, sign=True) == ("0.000", "[-0.300, 0.333]")
    assert fmt.interval(None) == "—" and fmt.interval({"low": None, "high": 1.0}) == "—"


def test_counts_sizes_and_seconds():
    assert fmt.count(34848008) == "34,848,008"
    assert fmt.size(269060552) == "257 MiB" and fmt.size(1665413120) == "1.55 GiB" and fmt.size(512) == "512 B"
    assert fmt.seconds(2.98014) == "2.98 s" and fmt.arrow(0.0, 0.1) == "0.000 → 0.100"


def test_rule_cells_use_the_metric_s_unit():
    rule = {"rule_id": "srs-per-category", "metric": "bias.srs.change", "category": "age", "status": "fail",
            "direction": "max", "threshold": 0.05, "value": 0.1, "interval": {"low": -0.4, "high": 0.6},
            "figure": {"base": 0.3, "candidate": 0.4, "unit": ""}}
    assert fmt.rule_cells(rule) == {"rule": "srs-per-category [age]", "metric": "bias.srs.change", "base": "30.0%",
                                    "candidate": "40.0%", "figure": "+10.0 pp", "interval": "[-40.0, 60.0] pp",
                                    "threshold": "≤ 5.0 pp", "status": "✘ fail"}
    ratio = {"rule_id": "perplexity", "metric": "perplexity.ratio", "status": "pass", "direction": "max",
             "threshold": 1.1, "value": 1.0312, "interval": {"low": 1.01, "high": 1.052},
             "figure": {"base": 28.8176, "candidate": 29.72, "unit": "x"}}
    cells = fmt.rule_cells(ratio)
    assert (cells["figure"], cells["interval"], cells["threshold"], cells["base"]) == ("1.03", "[1.01, 1.05]", "≤ 1.10", "28.8")


def test_perplexity_interval_words_follow_the_interval_made():
    perplexity_interval_words = fmt.perplexity_interval_words

    def words(method: str, level: float) -> str:
        return perplexity_interval_words({"comparison": {"ratio_interval": {"low": 1, "high": 2, "level": level,
                                                                            "method": method}}})

    assert words("paired-bootstrap", 0.95) == "95% paired bootstrap over windows"  # a result saved before the t-interval
    assert words("paired-jackknife-t", 0.95) == "95.0% paired t-interval over windows (jackknife)"
    assert words("paired-jackknife-t", 1 - 0.05 / 3) == ("98.3% paired t-interval over windows (jackknife; above 95% so "
                                                         "that all the planned looks together err at most 5%)")
