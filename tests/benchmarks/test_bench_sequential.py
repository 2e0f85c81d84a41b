"""The sequential benchmark runs, its fast judge decides as the gate does, and its respondents have the rates they claim."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import bench_sequential
from fixtures.respondents import correlated_pair, independent_pair
from gate.measurements.bias.bbq import load_bbq_source
from gate.measurements.bias.ask import BiasRun, write_records


@pytest.fixture(scope="module")
def pool():
    return load_bbq_source(None).items


def _srs(answers) -> float:
    ambiguous = [a for a in answers if a.ambiguous]
    return sum(a.choices[0] == a.target_index for a in ambiguous) / len(ambiguous)


def _soft_srs(answers) -> float:
    return float(np.mean([a.target_probability for a in answers if a.ambiguous]))


def test_simulated_pairs_have_the_stated_srs_soft_and_hard_alike(pool):
    for make in (independent_pair, correlated_pair):
        base, candidate = make(0.33, 0.38, seed=3, soft=True)
        b, c = [base.answer(i) for i in pool], [candidate.answer(i) for i in pool]
        assert abs(_srs(b) - 0.33) < 0.02 and abs(_srs(c) - 0.38) < 0.02
        assert abs(_soft_srs(b) - 0.33) < 0.02 and abs(_soft_srs(c) - 0.38) < 0.02  # calibrated soft answers
        assert all(int(np.argmax(a.option_probabilities)) == a.choices[0] for a in b[:500] + c[:500])
    base, candidate = correlated_pair(0.33, 0.38, copy=0.7, seed=3)
    same = np.mean([base.answer(i).choices == candidate.answer(i).choices for i in pool[:2000]])
    assert same > 0.75  # 70% copied, and some of the fresh answers agree by chance
    with pytest.raises(ValueError):
        correlated_pair(0.4, 0.25, copy=0.7)  # a fall the copies leave no room for


def test_the_simulation_runs_and_its_judge_decides_as_ask_in_chunks_does():
    result = bench_sequential.simulate(sims=2, workers=2, limit=600, checks=1)
    scenarios = len(bench_sequential.SCENARIOS)
    assert result["items"] == 600 and len(result["checks"]) == 2 * scenarios and result["checks_agree"]
    assert max(check["interval_gap"] for check in result["checks"]) < 1e-9
    rows = [row for scenarios in result["results"].values() for procedures in scenarios.values()
            for row in procedures.values()]
    assert len(rows) == 2 * scenarios * len(bench_sequential.PROCEDURES)
    for row in rows:
        assert sum(row[k]["share"] for k in ("pass", "fail", "inconclusive")) == pytest.approx(1.0)
        assert bench_sequential._look_every() <= row["items"]["q1"] <= row["items"]["median"] <= row["items"]["q3"] <= 600
    rise = result["results"]["correlated"]["clear-rise"]["gate"]
    assert rise["fail"]["share"] == 1.0 and rise["items"]["median"] < 600
    assert any("clear-rise" in line and "gate" in line for line in bench_sequential.table(result))


def test_replay_stops_where_the_gate_would_on_recorded_answers(pool, tmp_path):
    order = bench_sequential._order(600)
    items = [item for family in order for item in family]
    base, candidate = correlated_pair(0.33, 0.48, seed=3, soft=True)

    def run(respondent) -> BiasRun:
        return BiasRun("letters", False, "chat", (), None, None, None, tuple(respondent.answer(i) for i in items),
                       1.0, "simulated")

    write_records(tmp_path, run(base), run(candidate))
    replayed = bench_sequential.replay(tmp_path)
    assert replayed["stop"] == "decided" and replayed["asked"] == 240 < replayed["items"] == 600
    assert "fail" in replayed["rules"].values()
    assert replayed["statistics"]["gate"] == {"status": "fail", "items": 240}
    assert set(replayed["statistics"]) == set(bench_sequential.PROCEDURES)

