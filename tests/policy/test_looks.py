"""The policy's side of early stopping: what an undecided run lacks, said in items."""

from __future__ import annotations

from gate.core.result import Interval, MeasurementOutcome, Metric
from gate.policy.loader import load_policy
from gate.policy.looks import look_judge


def _srs_change(low: float, high: float, value: float, n: int = 500) -> MeasurementOutcome:
    return MeasurementOutcome("bias", metrics=(
        Metric("bias.srs.change", value, interval=Interval(low, high, 0.95, "confidence-sequence"), n=n),))


def test_the_items_an_undecided_rule_needs_come_from_the_side_that_must_clear_the_threshold_in_whole_looks():
    judge = look_judge(load_policy("default"), "bias")
    # Lopsided, as confidence sequences can be: 0.071 above the point, 0.157 below; the threshold is 0.061 above.
    (short,) = [s for s in judge.shortfalls(_srs_change(-0.168, 0.06, -0.011), 500) if s.rule == "srs-overall"]
    # (0.071 / 0.061)^2 - 1 of 500 items is about 178: whole looks of 24 make it 192 (the half-width, 0.114, said 1,248).
    assert short.items_more == 192 and short.items_more % judge.look_every == 0
    (barely,) = [s for s in judge.shortfalls(_srs_change(-0.1, 0.0501, -0.02), 500) if s.rule == "srs-overall"]
    assert barely.items_more == judge.look_every  # never "about 1 more item": the next look is the soonest
