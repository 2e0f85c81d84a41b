"""One registry: a new measurement is its module plus one registration, and nothing else changes.

The toy measurement below (its options, result and step: what its own module
would hold) counts the tensors of each checkpoint. Registered through the
public hook the built-ins use, it gets its `gate check` flag, its metric key
becomes known to the policy schema, its outcome reaches the verdict, and the
reports show it; unregistered, all of that goes away again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from fixtures.checkpoints import build_checkpoint
from gate.cli.main import main
from gate.core.errors import InputError, PolicyError
from gate.core.result import Metric
from gate.inputs.checkpoint import open_checkpoint
from gate.measurements.base import Audit, CheckpointStep, ModelStep, StepResult
from gate.measurements.options import Flag, MeasurementOptions, option
from gate.measurements.registry import (
    Measurement, get_measurement, load_step, measurement_names, register_measurement, unregister_measurement,
)
from gate.policy.loader import parse_policy
from gate.run.check import CheckOptions

# --- the toy measurement's module ---------------------------------------------------------------


@dataclass(frozen=True)
class TensorCountOptions(MeasurementOptions):
    min_elements: int = option(0, Flag("--toy-min-elements", "Count only tensors with this many elements.",
                                       minimum=0, maximum=1 << 40))


@dataclass(frozen=True)
class TensorCount:
    candidate: int
    base: int


class TensorCountStep(CheckpointStep):
    name = "tensors"

    def run(self, audit: Audit, options: CheckOptions) -> StepResult:
        least = options.of(TensorCountOptions).min_elements
        counts = [sum(1 for t in checkpoint.tensors.values() if t.numel >= least)
                  for checkpoint in (audit.candidate, audit.base)]
        result = TensorCount(*counts)
        return StepResult(result, (Metric("tensors.count", result.candidate, base=result.base,
                                          candidate=result.candidate),))


# --- its registration ---------------------------------------------------------------------------

TOY = Measurement("tensors", f"{__name__}:TensorCountStep", "checkpoint", "Tensor count",
                  metrics=("tensors.count",), options=TensorCountOptions)

POLICY = """\
name: toy
rules:
  - id: enough-tensors
    metric: tensors.count
    direction: min
    threshold: 1
    judge: point
"""


@pytest.fixture
def toy():
    register_measurement(TOY)
    yield TOY
    unregister_measurement("tensors")


@pytest.fixture
def pair(tmp_path):
    base = build_checkpoint(tmp_path / "base", "dense")
    cand = build_checkpoint(tmp_path / "cand", "magnitude")
    return cand.path, base.path


def gate(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_a_registered_measurement_runs_in_gate_check_is_judged_and_reported(toy, pair, tmp_path):
    cand, base = pair
    policy = tmp_path / "toy.yaml"
    policy.write_text(POLICY)
    sizes = sorted(t.numel for t in open_checkpoint(base).tensors.values())
    least = sizes[len(sizes) // 2]  # the option must change what is counted
    expected = sum(1 for size in sizes if size >= least)
    assert 0 < expected < len(sizes)
    report = tmp_path / "r.json"
    code, out, err = gate("check", cand, "--base", base, "--metrics", "sparsity,tensors", "--policy", policy,
                          "--toy-min-elements", least, "--json", report, "--markdown", tmp_path / "r.md",
                          "--html", tmp_path / "r.html")
    assert code == 0, err
    doc = json.loads(report.read_text())
    (outcome,) = [o for o in doc["outcomes"] if o["name"] == "tensors"]
    assert outcome["result"] == {"candidate": expected, "base": expected} and outcome["title"] == "Tensor count"
    (rule,) = doc["verdict"]["rules"]
    assert rule["metric"] == "tensors.count" and rule["status"] == "pass" and doc["verdict"]["status"] == "PASS"
    assert doc["options"]["extra"]["tensors"] == {"min_elements": least}
    assert "Tensor count" in out and "tensors.count" in out  # the terminal report's section for it
    assert all("tensors.count" in (tmp_path / name).read_text() for name in ("r.md", "r.html"))


def test_a_registered_measurement_brings_its_flag_and_its_metric_names(toy):
    code, out, _ = gate("check", "--help")
    assert code == 0 and "--toy-min-elements" in out and "sparsity,size,latency,perplexity,bias,tensors" in out
    assert parse_policy(POLICY).rules[0].metric == "tensors.count"
    code, _, err = gate("check", "a", "--base", "b", "--toy-min-elements", "-1")
    assert code == 2 and "--toy-min-elements" in err
    with pytest.raises(InputError, match="--toy-min-elements"):
        TensorCountOptions(min_elements=-1)  # library callers get the same bound


def test_an_unregistered_measurement_is_unknown_everywhere():
    assert "tensors" not in measurement_names()
    with pytest.raises(PolicyError, match="names no measurement"):
        parse_policy(POLICY)
    with pytest.raises(InputError, match="unknown metric 'tensors'"):
        get_measurement("tensors")
    code, out, _ = gate("check", "--help")
    assert "--toy-min-elements" not in out


def test_registration_refuses_a_second_owner_of_a_name_or_a_metric_prefix(toy):
    with pytest.raises(ValueError, match="registered already"):
        register_measurement(TOY)
    with pytest.raises(ValueError, match="bits_per_byte"):
        register_measurement(Measurement("bpb", "x:Y", "model", "BPB", metrics=("bits_per_byte.other",)))


def test_every_builtin_step_keeps_the_contract_its_registration_names():
    for name in ("sparsity", "size", "latency", "perplexity", "bias"):
        measurement, step = get_measurement(name), load_step(name)
        assert step.name == name
        assert isinstance(step, CheckpointStep if measurement.kind == "checkpoint" else ModelStep)
