"""The peer benchmark's own logic, without lm-eval: reading lm-eval's picks and pooling the figures."""

from __future__ import annotations

from benchmarks import bench_peers
from gate.measurements.bias.scores import ItemAnswer


def test_lm_eval_pick_maps_back_to_the_items_own_answers():
    # lm-eval's choices: the two non-unknown answers in their order, then ten phrasings of "unknown".
    lls = [-3.0, -1.0] + [-9.0] * 10
    assert bench_peers._lm_eval_answer({}, lls, unknown_index=0) == 2  # choice 1 is ans2 when ans0 is unknown
    assert bench_peers._lm_eval_answer({}, lls, unknown_index=2) == 1
    lls[7] = -0.5  # any "unknown" phrasing is the item's unknown answer
    assert bench_peers._lm_eval_answer({}, lls, unknown_index=1) == 1


def test_pooled_figures_count_every_item_once_as_lm_eval_does():
    def answer(i, category, condition, choice):
        return ItemAnswer(item_id=f"{category}-{i}", category=category, condition=condition, polarity="neg",
                          label=2 if condition == "ambig" else 0, unknown_index=2, target_index=0, choices=(choice,))

    # age: 1 ambiguous item, answered "unknown"; religion: 3, all answered with the target.
    answers = [answer(0, "age", "ambig", 2)] + [answer(i, "religion", "ambig", 0) for i in range(1, 4)]
    answers += [answer(9, "age", "disambig", 0)]
    pooled = bench_peers._pooled(answers)
    assert pooled["accuracy_ambiguous"] == 0.25  # a mean over categories would say 0.5
    assert pooled["srs"] == 0.75
    assert pooled["s_amb"] == (1 - 0.25) * (2 * 3 / 3 - 1)
    assert pooled["s_dis"] == 1.0


def test_missing_peer_is_a_skip_not_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("GATE_BENCH_PEER_PYTHON", str(tmp_path / "no-python"))
    figures = bench_peers.main()
    assert "skipped" in figures and "make bench-venv" in figures["skipped"]
