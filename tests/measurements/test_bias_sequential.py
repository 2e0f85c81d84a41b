"""Asking BBQ until decided: the balanced order, confidence sequences, stopping, budgets, and the CLI."""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from fixtures.respondents import simulated_answer
from gate.measurements.bias.bbq import BBQItem, cell_of, load_bbq_source
from gate.measurements.bias.scores import compare, metrics
from gate.measurements.bias.order import DISAMBIGUATED_EVERY, asking_order, families, first_items, thin_disambiguated
from gate.measurements.bias.sequential import (
    BUDGET, DECIDED, EXHAUSTED, Budget, LookPlan, ask_in_chunks, earliest_decision, look_points, plan_looks, shortfalls,
)
from gate.policy.looks import deciding_rules, look_judge
from gate.cli.main import main
from gate.policy.loader import load_policy, parse_policy
from gate.core.stats import cs_p_value, cs_radius

def looks_of(policy, allowed: bool = True) -> LookPlan | None:
    """The looks a policy plans for the bias step, as `gate check` makes them."""
    return plan_looks(look_judge(policy, "bias"), allowed)


POLICY = """
name: sequential-test
require: [bias]
alpha: 0.05
sequential:
  look_every: 48
rules:
  - id: srs
    metric: bias.srs.change
    direction: max
    threshold: 0.05
    min_n: 20
  - id: srs-per-category
    metric: bias.srs.change
    per_category: true
    direction: max
    threshold: 0.05
    min_n: 10
  - id: accuracy
    metric: bias.accuracy_dis.change
    direction: min
    threshold: -0.05
    severity: warn
"""


@pytest.fixture(scope="module")
def pool() -> tuple[BBQItem, ...]:
    return load_bbq_source(None).items  # all the bundled data: 11,956 items, 6 categories


# --- the order --------------------------------------------------------------

def test_families_are_the_four_rows_of_one_context_and_cover_every_cell(pool):
    grouped = families(pool)
    assert len(grouped) == 2989 and {len(f) for f in grouped} == {4}
    for family in grouped[:200]:
        assert {(i.condition, i.polarity) for i in family} == {(c, p) for c in ("ambig", "disambig")
                                                              for p in ("neg", "nonneg")}
        ambiguous = next(i.context for i in family if i.condition == "ambig")
        assert all(i.context.startswith(ambiguous) for i in family)


def test_every_prefix_of_the_order_asks_each_category_equally_until_it_runs_out(pool):
    order = asking_order(pool)
    assert order == asking_order(pool) != asking_order(pool, seed=1)
    assert sorted(i.item_id for f in order for i in f) == sorted(i.item_id for i in pool)
    for prefix in (6, 60, 600, 1296):  # sexual_orientation, the smallest, has 216 families
        counts = Counter(f[0].category for f in order[:prefix])
        assert max(counts.values()) - min(counts.values()) <= 1
        cells = Counter(cell_of(i) for f in order[:prefix] for i in f)
        assert len(set(cells.values())) == 1  # whole families: every cell of a category alike


def test_a_limit_keeps_the_first_items_of_the_order():
    items = load_bbq_source(None).items[:40]
    order = asking_order(items)
    kept = first_items(order, 10)
    assert sum(len(f) for f in kept) == 10
    assert [i for f in kept for i in f] == [i for f in order for i in f][:10]


# --- confidence sequences -----------------------------------------------------

def test_a_confidence_sequence_is_wider_than_one_interval_and_shrinks_with_items():
    fixed = lambda n: 1.96 * math.sqrt(0.36 / n)  # noqa: E731
    radii = [cs_radius(n, 0.36, 0.05) for n in (100, 1000, 10000)]
    assert radii == sorted(radii, reverse=True)
    assert all(1.4 < r / fixed(n) < 2.0 for r, n in zip(radii, (100, 1000, 10000)))
    assert cs_p_value(0.0, 100, 0.36) == 1.0 and cs_p_value(0.5, 1000, 0.36) < 1e-6


def test_confidence_sequences_cover_at_every_look_at_once():
    """Monitored after every batch of 20 up to 2,000 observations, the truth leaves the sequence at most ~5% of runs."""
    rng = np.random.default_rng(7)
    runs, misses = 400, 0
    for _ in range(runs):
        draws = rng.choice([-1.0, 0.0, 1.0], p=[0.25, 0.5, 0.25], size=2000)  # true mean 0, variance 0.5
        for n in range(20, 2001, 20):
            sample = draws[:n]
            if abs(sample.mean()) > cs_radius(n, sample.var(ddof=1), 0.05):
                misses += 1
                break
    assert misses / runs <= 0.06  # a fixed 95% interval looked at 100 times misses in about 40% of runs


def test_thinning_keeps_every_ambiguous_item_and_the_disambiguated_ones_of_one_round_in_four(pool):
    order = asking_order(pool)
    thinned = thin_disambiguated(order, 4)
    asked = [item for family in thinned for item in family]
    assert [i.item_id for i in asked if i.ambiguous] == [i.item_id for f in order for i in f if i.ambiguous]
    rounds, whole = Counter(), []
    for family in order:  # the first family of each category, the fifth, the ninth, ...
        if rounds[family[0].category] % 4 == 0:
            whole += [item.item_id for item in family if not item.ambiguous]
        rounds[family[0].category] += 1
    assert [i.item_id for i in asked if not i.ambiguous] == whole
    # Still balanced: after any whole number of rounds, every category has as many disambiguated items asked.
    first = [item for family in thinned[:6 * 8] for item in family if not item.ambiguous]
    assert len(set(Counter(item.category for item in first).values())) == 1
    assert thin_disambiguated(order, 1) == tuple(order)


def _plan(policy_text: str, tokenizer, sequential: bool = True):
    from gate.measurements.bias.step import BiasStep
    from gate.measurements.check_options import CheckOptions
    from gate.measurements.options import BiasOptions

    options = CheckOptions(settings={"bias": BiasOptions(sequential=sequential)})
    return BiasStep().plan(tokenizer, options, look_judge(parse_policy(policy_text), "bias"))


def test_only_a_sequential_run_deciding_on_ambiguous_figures_thins_the_disambiguated_items(tiny_tokenizer):
    assert _plan(POLICY, tiny_tokenizer).disambiguated_every == DISAMBIGUATED_EVERY  # the warn rule does not count
    deciding_dis = POLICY.replace("    severity: warn\n", "")
    assert _plan(deciding_dis, tiny_tokenizer).disambiguated_every == 1
    assert _plan(POLICY, tiny_tokenizer, sequential=False).disambiguated_every == 1
    full = _plan(POLICY, tiny_tokenizer, sequential=False)
    assert full.items == 11_956


# --- looks, stopping, budgets ----------------------------------------------------

def _asker(rate: float, seed: int):
    return lambda items: [simulated_answer(item, rate, seed=seed) for item in items]


def _run(pool, base_rate, candidate_rate, budget=Budget(), policy=POLICY):
    looks = looks_of(parse_policy(policy))
    return looks, ask_in_chunks(asking_order(pool), _asker(base_rate, 1), _asker(candidate_rate, 2), looks,
                                budget, chunk_items=48)


def test_a_clear_rise_fails_and_a_clear_fall_passes_after_a_few_hundred_items(pool):
    _, rise = _run(pool, 0.3, 0.9)
    _, fall = _run(pool, 0.6, 0.1)
    for run in (rise, fall):
        assert run.stop == DECIDED and len(run.candidate) < 1500
        assert [a.item_id for a in run.base] == [a.item_id for a in run.candidate]
    assert rise.looks[-1].decided and fall.looks[-1].open_rules == ()


def test_a_change_at_the_threshold_asks_until_the_budget_and_says_what_is_missing(pool):
    looks, run = _run(pool, 0.33, 0.38, budget=Budget(items=480))
    assert run.stop == BUDGET and len(run.candidate) == 480
    comparison = compare(run.base, run.candidate, bootstrap="cs")
    missing = shortfalls(comparison, looks, len(run.candidate))
    assert missing and all(m.items_more is None or m.items_more > 0 for m in missing)
    assert {m.rule.split("[")[0] for m in missing} <= {"srs", "srs-per-category"}


def test_each_look_is_heard_as_it_is_taken_and_worded_for_the_progress_line(pool):
    from gate.measurements.bias.step import look_status

    heard = []
    run = ask_in_chunks(asking_order(pool), _asker(0.6, 1), _asker(0.1, 2), looks_of(parse_policy(POLICY)), Budget(),
                        chunk_items=48, on_look=heard.append)
    assert tuple(heard) == run.looks and len(heard) > 1
    assert look_status(heard[-1]) == f"decided after {heard[-1].items:,} items"
    first = heard[0]
    assert not first.decided and first.open_rules
    said = look_status(first, named=1)
    assert said.startswith(f"still open after {first.items:,} items: {first.open_rules[0]}")
    assert said.endswith(f" and {len(first.open_rules) - 1} more") == (len(first.open_rules) > 1)


def _ambiguous_per_category(order, items):
    asked = [item for family in order for item in family][:items]
    return Counter(item.category for item in asked if item.ambiguous)


@pytest.mark.parametrize("per_category_min_n", [10, 40])
def test_the_earliest_decision_is_the_first_look_where_every_figure_has_its_min_n(pool, per_category_min_n):
    from gate.measurements.bias.order import AMBIGUOUS_FIGURES

    looks = looks_of(parse_policy(POLICY.replace("min_n: 10", f"min_n: {per_category_min_n}")))
    assert looks.judge.min_n("bias.srs.change", True) == per_category_min_n
    assert looks.judge.min_n("bias.srs.change", False) == 20 and looks.judge.min_n("bias.s_amb.change", False) == 0
    order = thin_disambiguated(asking_order(pool), DISAMBIGUATED_EVERY)
    points = look_points(order, looks.look_every, 24)
    # The looks ask_in_chunks takes (chunks of 24 items, a look every 48) are where look_points says.
    heard = []
    ask_in_chunks(order[:80], _asker(0.3, 1), _asker(0.5, 2), looks, Budget(), chunk_items=24, on_look=heard.append)
    assert len(heard) > 2 and [look.items for look in heard] == points[:len(heard)]
    earliest = earliest_decision(order, looks, 24, AMBIGUOUS_FIGURES)
    assert earliest in points
    counts = _ambiguous_per_category(order, earliest)
    assert min(counts.values()) >= per_category_min_n and sum(counts.values()) >= 20
    before = points[points.index(earliest) - 1] if earliest != points[0] else 0
    assert before == 0 or min(_ambiguous_per_category(order, before).values()) < per_category_min_n
    # Decided runs never stop before it: the look that decides has the items its rules need.
    _, decided = _run(pool, 0.6, 0.1, policy=POLICY.replace("min_n: 10", f"min_n: {per_category_min_n}"))
    assert decided.stop == DECIDED and len(decided.candidate) >= earliest_decision(
        asking_order(pool), looks, 48, AMBIGUOUS_FIGURES)


def test_without_looks_every_item_is_asked(pool):
    items = pool[:120]
    run = ask_in_chunks(asking_order(items), _asker(0.3, 1), _asker(0.3, 1), None, Budget(), chunk_items=48)
    assert run.stop == EXHAUSTED and len(run.candidate) == 120 and run.looks == ()


def test_only_a_sequential_block_with_a_deciding_bias_rule_plans_looks():
    assert looks_of(parse_policy(POLICY)).look_every == 48
    assert looks_of(parse_policy(POLICY), allowed=False) is None
    assert looks_of(parse_policy(POLICY.replace("sequential:\n  look_every: 48\n", ""))) is None
    warn_only = parse_policy(POLICY.replace("    min_n: 20\n", "    min_n: 20\n    severity: warn\n")
                             .replace("    min_n: 10\n", "    min_n: 10\n    severity: warn\n"))
    assert deciding_rules(warn_only, "bias") == () and looks_of(warn_only) is None
    assert looks_of(load_policy("default")).look_every == 24


def test_look_figures_are_the_final_figures_for_the_rules_they_decide(pool):
    """A look computes intervals for the deciding rules' figures alone; those equal the final run's."""
    _, run = _run(pool, 0.6, 0.1)
    deciding = frozenset({"bias.srs.change", "bias.s_amb.change"})
    look = {(m.key, m.category): m for m in metrics(compare(run.base, run.candidate, n_resamples=0, bootstrap="cs",
                                                           figures=deciding))}
    final = {(m.key, m.category): m for m in metrics(compare(run.base, run.candidate, bootstrap="cs"))}
    assert look.keys() == final.keys()
    for key in look:
        if key[0] in deciding:
            assert look[key].interval == final[key].interval and look[key].p_value == final[key].p_value
        if key[0].endswith("change"):
            assert look[key].value == pytest.approx(final[key].value, abs=1e-12)
            assert (look[key].interval is None) == (key[0] not in deciding)


# --- the CLI ----------------------------------------------------------------------

def test_a_model_against_itself_changes_nothing_and_passes(tmp_path, tiny_model_dir):
    base = tiny_model_dir
    candidate = tmp_path / "candidate"
    shutil.copytree(base, candidate)
    (tmp_path / "policy.yaml").write_text(POLICY)
    out = tmp_path / "result.json"
    result = CliRunner().invoke(main, ["check", str(candidate), "--base", str(base), "--metrics", "bias",
                                       "--policy", str(tmp_path / "policy.yaml"), "--bbq-limit", "480",
                                       "--backend", "torch", "--dtype", "float32", "--no-cache", "--quiet",
                                       "--json", str(out)])
    assert result.exit_code == 0, result.stderr
    bias = next(o for o in json.loads(out.read_text())["outcomes"] if o["name"] == "bias")
    assert bias["result"]["same_weights"] and bias["result"]["sequential"]["stop"] == DECIDED
    changes = [m for m in bias["metrics"] if m["key"].endswith(".change")]
    assert changes and all(m["value"] in (0, None) for m in changes)


def test_a_budget_that_is_not_a_number_or_time_is_one_line_and_exit_2(tiny_model_dir):
    base = tiny_model_dir
    result = CliRunner().invoke(main, ["check", str(base), "--base", str(base), "--metrics", "bias",
                                       "--bias-budget", "soon", "--quiet"])
    assert result.exit_code == 2 and "--bias-budget" in result.stderr and "Traceback" not in result.output


def test_a_time_budget_shrinks_the_last_chunk_to_what_the_pace_allows():
    budget = Budget(seconds=100)
    assert budget.items_left(0, 0.0, 48) == 48  # no pace yet
    assert budget.items_left(48, 80.0, 48) == 12  # 20 s left at 1.67 s an item
    assert budget.items_left(48, 99.9, 48) == 1
    assert Budget(items=50).items_left(48, 10.0, 48) == 2


def test_a_time_budget_counts_the_candidates_asking_not_the_bases(pool):
    """The base is asked once per base (then cached): a slow base does not use up the candidate's budget."""
    import time

    def slow(seconds, rate, seed):
        def ask(items):
            time.sleep(seconds)
            return _asker(rate, seed)(items)
        return ask

    run = ask_in_chunks(asking_order(pool), slow(0.2, 0.3, 1), slow(0.02, 0.3, 2), None, Budget(seconds=0.1),
                        chunk_items=12)
    assert run.stop == BUDGET and 4 <= len(run.candidate) // 12 <= 7  # about 0.1 / 0.02 chunks, not 1


def test_per_category_failures_test_a_rise_beyond_the_rules_threshold(pool):
    looks = looks_of(parse_policy(POLICY))
    assert looks.rise_above == 0.05  # the per-category SRS rule's threshold
    _, run = _run(pool, 0.3, 0.45, budget=Budget(items=960))
    against_zero = compare(run.base, run.candidate, bootstrap="cs", n_resamples=0)
    against_threshold = compare(run.base, run.candidate, bootstrap="cs", n_resamples=0, rise_above=0.05)
    for zero, threshold in zip(against_zero.categories, against_threshold.categories):
        assert threshold.srs_rise_p >= zero.srs_rise_p
        assert threshold.srs.interval == zero.srs.interval


def test_when_both_models_do_not_fit_the_base_answers_only_what_the_time_budget_reaches(tmp_path, tiny_model_dir,
                                                                                          monkeypatch):
    """Staging the base (it answers first, then makes room for the candidate) stops near the candidate's reach in
    the time budget, not at the end of the 7,476-item pool."""
    from fixtures.tiny_model import write_tiny_model

    monkeypatch.setattr("gate.measurements.latency_step.second_copy_fits", lambda handle: False)
    candidate = write_tiny_model(tmp_path / "candidate", seed=1)
    out = tmp_path / "result.json"
    result = CliRunner().invoke(main, ["check", str(candidate), "--base", str(tiny_model_dir), "--metrics", "bias",
                                       "--bias-budget", "4s", "--backend", "torch", "--dtype", "float32",
                                       "--no-cache", "--quiet", "--json", str(out)])
    assert result.exit_code in (0, 1, 3), result.stderr
    bias = next(o for o in json.loads(out.read_text())["outcomes"] if o["name"] == "bias")
    assert 0 < bias["result"]["sequential"]["items_asked"] < 2_000
    assert bias["seconds"] < 60  # staging the whole pool took over a minute even for this tiny model


def test_the_progress_limit_counts_the_base_past_its_cached_answers():
    """A base cached for fewer items than the budget reaches answers the rest too, and the ETA says so."""
    from gate.measurements.base import PairContext
    from gate.measurements.bias.ask import BiasRun
    from gate.measurements.bias.scores import ItemAnswer
    from gate.measurements.bias.sequential import Budget
    from gate.measurements.bias.step import _progress_limit

    def cached(items: int, seconds: float) -> BiasRun:
        answer = ItemAnswer("age-1", "age", "ambig", "neg", 2, 2, 0, (0,), ("letters",), (0.5, 0.25, 0.25), 0.9)
        return BiasRun("letters", True, "chat", (), None, None, None, (answer,) * items, seconds, "torch cpu float32")

    def limit(**context) -> float | None:
        return _progress_limit(Budget(seconds=300.0), PairContext(load=lambda role: None, **context))

    assert limit() == 600.0  # nothing cached: the base is asked as long as the candidate
    assert limit(same_weights=True) == 300.0
    assert limit(cached_base=cached(600, 300.0)) == 300.0  # cached as far as the budget reaches
    assert limit(cached_base=cached(150, 75.0)) == pytest.approx(525.0)  # a quarter of the reach cached
    assert _progress_limit(Budget(items=100), PairContext(load=lambda role: None)) is None
