"""The reason gate exists: a perplexity pass must never hide bias amplification.

Both models' measurements are built from records (per-window NLL sums, per-item
BBQ answers) and go through the real comparison code, the default policy and
the terminal report: perplexity rises 3%, well within tolerance, while the
candidate picks the stereotyped answer on a third more ambiguous items.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console

from gate.measurements.bias.scores import ItemAnswer, compare, metrics
from gate.report.document import to_jsonable
from gate.report.terminal import TerminalFormat
from gate.measurements.perplexity import PerplexityRun, compare_perplexity
from gate.policy.loader import load_policy
from gate.core.result import MeasurementOutcome
from gate.policy.verdict import VerdictStatus, evaluate, exit_code

CATEGORIES = ("age", "disability_status", "nationality", "physical_appearance", "religion", "sexual_orientation")


def perplexity_runs(windows: int = 64, tokens: int = 511):
    rng = np.random.default_rng(0)
    base = rng.normal(3.0, 0.2, windows) * tokens
    candidate = base + np.log(1.03) * tokens + rng.normal(0, 2.0, windows)  # about 3% worse, window by window

    def run(nll):
        ppl = float(np.exp(nll.sum() / (tokens * windows)))
        return PerplexityRun(nll=tuple(nll), tokens=(tokens,) * windows, byte_counts=(2000,) * windows,
                             windows_fingerprint="w", text_fingerprint="t", perplexity=ppl, interval=None,
                             bits_per_byte=None, bits_per_byte_interval=None)

    return run(base), run(candidate)


def bbq_answers(per_category: int = 80):
    """Ambiguous items (unknown is index 2, the target index 0): the base mostly abstains; the candidate
    picks the target on a third of the items where the base abstained."""
    base, candidate = [], []
    for c in CATEGORIES:
        for i in range(per_category):
            common = dict(item_id=f"{c}-{i}", category=c, condition="ambig", polarity="neg", label=2,
                          unknown_index=2, target_index=0)
            base_choice = 0 if i % 10 == 0 else (1 if i % 10 == 1 else 2)
            candidate_choice = 0 if base_choice == 2 and i % 3 == 0 else base_choice
            base.append(ItemAnswer(choices=(base_choice,), **common))
            candidate.append(ItemAnswer(choices=(candidate_choice,), **common))
    return base, candidate


def test_default_policy_fails_bias_amplification_that_perplexity_hides():
    ppl = compare_perplexity(*perplexity_runs())
    bias = compare(*bbq_answers())
    outcomes = [MeasurementOutcome("perplexity", ppl, metrics=tuple(ppl.metrics())),
                MeasurementOutcome("bias", bias, metrics=tuple(metrics(bias))),
                MeasurementOutcome("sparsity"), MeasurementOutcome("size")]
    verdict = evaluate(load_policy("default"), outcomes)

    rules = {(r.rule_id, r.category): r for r in verdict.rules}
    assert rules["perplexity", None].status.value == "pass"
    assert 1.0 < ppl.ratio < 1.05
    assert rules["srs-overall", None].status.value == "fail"
    assert rules["srs-overall", None].interval.low > 0.05
    assert verdict.status is VerdictStatus.FAIL and int(exit_code(verdict)) == 1

    summary = verdict.bias_vs_perplexity
    assert summary.perplexity_within_tolerance and summary.bias_within_tolerance is False
    assert summary.times > 10  # the relative SRS change dwarfs the relative perplexity change

    # The report says so plainly, first thing, with both changes side by side.
    doc = {"verdict": to_jsonable(verdict), "candidate": {"spec": "pruned"}, "base": {"spec": "dense"}, "outcomes": []}
    console = Console(width=140, record=True)
    console.print(TerminalFormat().render(doc))
    shown = console.export_text()
    assert "Perplexity stayed within tolerance but stereotype reliance did not" in shown
    assert f"{summary.times:.0f}×" in shown or f"{summary.times:.1f}×" in shown
