"""The up-front estimate's arithmetic, on a real (tiny) checkpoint and a measured calibration."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from fixtures.checkpoints import build_checkpoint
from gate.inputs.checkpoint import open_checkpoint
from gate.core.workload import FirstLook, Workload, WorkPlan, sequences_workload
from gate.run.estimate import (
    LOAD_OVERHEAD_SECONDS, ModelShape, describe_seconds, estimate, load_seconds, with_cached_base, workload_seconds,
)
from gate.runtime.calibrate import MachineSpeed, calibrate

SPEED = MachineSpeed(flops=1e10, bytes_per_second=1e10)
SHAPE = ModelShape(block_params=10_000_000, head_params=2_000_000, layers=4, hidden=256, weight_bytes=48_000_000)


def test_shape_counts_block_and_head_weights_of_a_real_checkpoint(tmp_path):
    built = build_checkpoint(tmp_path / "m", layers=2, hidden=32, intermediate=64, vocab=100)
    shape = ModelShape.of(open_checkpoint(built.path))
    # Per layer: q and o (hidden²), k and v (hidden × hidden/2: 2 of 4 heads), gate, up and down
    # (hidden × intermediate); the head is vocab × hidden.
    assert shape.block_params == 2 * (2 * 32 * 32 + 2 * 32 * 16 + 3 * 32 * 64)
    assert shape.head_params == 100 * 32
    assert (shape.layers, shape.hidden) == (2, 32)
    stored = ModelShape.of(open_checkpoint(built.path))
    widened = ModelShape.of(open_checkpoint(built.path), bytes_per_weight=8)
    assert widened.weight_bytes > stored.weight_bytes


def test_prefill_time_is_linear_in_tokens_and_decode_is_bound_by_the_slower_resource():
    one = workload_seconds(Workload(tokens=1000, logit_positions=1000), SHAPE, SPEED)
    two = workload_seconds(Workload(tokens=2000, logit_positions=2000), SHAPE, SPEED)
    assert two == pytest.approx(2 * one)
    slow_memory = MachineSpeed(flops=1e12, bytes_per_second=1e6)
    step = workload_seconds(Workload(decode_steps=1), SHAPE, slow_memory)
    assert step == pytest.approx(SHAPE.weight_bytes / 1e6)


def test_a_time_budget_caps_each_models_work_but_not_the_loads():
    plan = WorkPlan("many items", Workload(tokens=10**12), models=2, loads=2, cap_seconds=180)
    assert estimate("bias", plan, SHAPE, SPEED).seconds == pytest.approx(2 * 180 + 2 * load_seconds(SHAPE, SPEED))
    assert load_seconds(SHAPE, SPEED) > LOAD_OVERHEAD_SECONDS


def test_a_time_budget_says_how_far_it_reaches_here():
    plan = WorkPlan("up to 1,000 items, 10 s of asking", sequences_workload([512] * 1000), models=1, loads=0,
                    cap_seconds=10.0, units=1000)
    full = workload_seconds(plan.per_model, SHAPE, SPEED)
    capped = estimate("bias", plan, SHAPE, SPEED)
    assert capped.seconds == 10.0
    assert capped.plan == f"up to 1,000 items, 10 s of asking (about {int(1000 * 10 / full):,} items here)"
    roomy = estimate("bias", replace(plan, cap_seconds=full * 2), SHAPE, SPEED)
    assert roomy.plan == plan.summary  # the budget reaches every item: nothing to add


def test_a_run_that_stops_once_decided_is_estimated_at_its_longest_and_says_so():
    plan = WorkPlan("up to 1,000 items", Workload(tokens=10**12), models=1, loads=0, cap_seconds=300)
    fixed = estimate("bias", plan, SHAPE, SPEED)
    early = estimate("bias", replace(plan, stops_early=True), SHAPE, SPEED)
    assert early.seconds == fixed.seconds == 300
    assert fixed.describe() == "about 5 min"
    assert early.describe() == "at most about 5 min, less once its rules are decided"


def test_a_run_that_stops_once_decided_also_says_what_its_first_look_costs():
    whole = sequences_workload([512] * 32)
    plan = WorkPlan("up to 32 windows", whole, models=2, loads=2, stops_early=True,
                    first_look=FirstLook("8 windows", sequences_workload([512] * 8)))
    early = estimate("perplexity", plan, SHAPE, SPEED)
    loads = 2 * load_seconds(SHAPE, SPEED)
    assert early.least - loads == pytest.approx((early.seconds - loads) / 4)  # 8 of 32 windows
    assert early.describe() == (f"{describe_seconds(early.least)} if decided as early as it can (8 windows), "
                                f"at most {describe_seconds(early.seconds)}")
    capped = estimate("bias", replace(plan, per_model=Workload(tokens=10**12), cap_seconds=1.0,
                                      first_look=FirstLook("24 items", Workload(tokens=10**12))), SHAPE, SPEED)
    assert capped.least == capped.seconds  # a first look past the budget is the budget


def test_a_cached_base_halves_the_work_and_the_loads():
    plan = WorkPlan("windows", sequences_workload([512] * 8), models=2, loads=2)
    full, cached = estimate("perplexity", plan, SHAPE, SPEED), estimate("perplexity", with_cached_base(plan), SHAPE, SPEED)
    assert cached.seconds == pytest.approx(full.seconds / 2)
    assert cached.plan == "windows, the base's from the cache"


def test_sequences_workload_counts_logits_where_they_are_needed():
    everywhere, last = sequences_workload([10, 20]), sequences_workload([10, 20], logits="last")
    assert (everywhere.tokens, everywhere.logit_positions, last.logit_positions) == (30, 30, 2)
    assert everywhere.attention_pairs == 50 + 200


@pytest.mark.parametrize("seconds, text", [
    (3.2, "about 3 s"), (44, "about 40 s"), (61, "about 2 min"), (179, "about 3 min"), (3 * 3600 + 600, "about 3 h 10 min"),
])
def test_describe_seconds(seconds, text):
    assert describe_seconds(seconds) == text


def test_calibration_measures_this_machine():
    speed = calibrate("torch", "cpu", "float32", hidden=256)
    assert math.isfinite(speed.flops) and speed.flops > 1e8
    assert math.isfinite(speed.bytes_per_second) and speed.bytes_per_second > 1e8
    assert speed.runtime == "torch cpu float32"


def test_gate_check_says_the_plan_up_front_and_records_the_estimate_beside_the_real_time(tiny_model_dir, tmp_path,
                                                                                          monkeypatch):
    from click.testing import CliRunner

    from gate.cli.main import main

    monkeypatch.setenv("GATE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["check", str(tiny_model_dir), "--base", str(tiny_model_dir), "--metrics",
                                       "perplexity", "--ctx", "32", "--ppl-tokens", "128", "--json", str(out)])
    assert result.exit_code in (0, 3), result.output
    assert "gate: perplexity: 4 windows × 32 tokens × 2 models; about " in result.output
    outcome = json.loads(out.read_text())["outcomes"][0]
    assert outcome["plan"] == "4 windows × 32 tokens × 2 models"
    assert outcome["estimated_seconds"] > 0 and outcome["seconds"] > 0
