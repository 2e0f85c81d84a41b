"""Asking BBQ until decided: how often it decides wrongly, and how many items it asks.

simulate: simulated respondents (fixtures/respondents.py) with a known SRS
change, the same in every category, answer the bundled items in the default
policy's asking order (every ambiguous item, disambiguated ones of one round
of families in four: 7,476 items). Every 24 items (the policy's look_every) the default policy's deciding bias rules
(srs-overall, srs-per-category, s-amb, with their min_n and interval widths)
are judged on the paired answers so far, as `ask_in_chunks` judges them, until
one fails, all pass, or the items run out. The candidate's extra stereotyped
answers replace "unknown" ones, so s_AMB changes as much as SRS does.

Pairs: "independent" (base and candidate answer independently: noisier
paired differences than a real model pair's) and "correlated" (the candidate
copies the base's answer on 70% of the items; real pairs are alike so).

Scenarios (true change): +0.05 in every category (at the overall threshold: a
PASS is the error the rules bound), 0 (a FAIL is wrong), -0.15 and +0.15, and
+0.15 in religion alone (at the per-category threshold: a PASS is wrong).

Procedures on the same answers:
- gate: confidence sequences (what the gate does);
- naive: the same looks with fixed 95% normal intervals (same variances):
  the error that looking often with ordinary intervals brings;
- srs-hard / srs-soft: the two SRS rules alone (overall, per category),
  judged on the hard paired SRS change (the gate's figure) or on the soft one
  (mean probability on the target, letters mode; the simulated soft answers
  are calibrated, so both have the same true change): items needed per
  statistic (issue 12, item 5); and srs-overall-hard / -soft / -naive, the
  overall rule alone (its error at the threshold is the one 95% bounds).
The simulations judge with `look_replica` (the gate's figures from running
sums, fast); `checks` runs of each pair and scenario also go through
`ask_in_chunks` and `compare` to show both decide alike.

replay: per-item records of a real run that asked every item (`gate check ...
--no-sequential --records DIR`), replayed with `ask_in_chunks` in the
records' (asking) order: where the gate would have stopped, what it would
have decided, and the hard vs soft SRS rules on the same answers.

    python -m benchmarks.bench_sequential --out FILE simulate --sims 300   # 300 at the threshold, 100 in the others
    python -m benchmarks.bench_sequential replay /tmp/runs/random10-records
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmarks.look_replica import FAIL, PASS, STATUS_NAMES, Decision, PairedSeries, decide, figure_rules
from gate.core.stats import wilson_interval

# name: (base SRS, candidate SRS, share of --sims, the wrong decision)
SCENARIOS = {
    "at-threshold": (0.33, 0.38, 1.0, "pass"),
    "no-change": (0.33, 0.33, 1 / 3, "fail"),
    "clear-fall": (0.60, 0.45, 1 / 3, "fail"),
    "clear-rise": (0.33, 0.48, 1 / 3, "pass"),
    "one-category-at-threshold": (0.33, 0.33, 1 / 2, "pass"),
}
# Scenarios where one category's candidate differs: (category, its candidate SRS). Religion at +0.15 sits on
# the per-category rule's threshold, every other category unchanged: a PASS is the error that rule bounds.
CATEGORY_CHANGES = {"one-category-at-threshold": ("religion", 0.48)}
PAIRS = ("independent", "correlated")
COPY = 0.7  # the correlated candidate's share of the base's answers
GATE_RULES = ("srs-overall", "srs-per-category", "s-amb")
SRS_RULES = ("srs-overall", "srs-per-category")
SOFT = {"srs-overall": "soft", "srs-per-category": "soft"}
# procedure: (rules of the default policy, series swapped in, interval method)
PROCEDURES = {
    "gate": (GATE_RULES, None, "cs"),
    "naive": (GATE_RULES, None, "naive"),
    "srs-hard": (SRS_RULES, None, "cs"),
    "srs-soft": (SRS_RULES, SOFT, "cs"),
    "srs-overall-hard": (("srs-overall",), None, "cs"),
    "srs-overall-soft": (("srs-overall",), SOFT, "cs"),
    "srs-overall-naive": (("srs-overall",), None, "naive"),
}


@functools.lru_cache(maxsize=4)
def _order(limit: int | None):
    """The default policy's order: every ambiguous item, disambiguated ones in one round in four."""
    from gate.measurements.bias.bbq import load_bbq_source
    from gate.measurements.bias.order import DISAMBIGUATED_EVERY, asking_order, first_items, thin_disambiguated

    return first_items(thin_disambiguated(asking_order(load_bbq_source(None).items), DISAMBIGUATED_EVERY), limit)


@functools.lru_cache(maxsize=1)
def _policy():
    from gate.policy.loader import load_policy

    return load_policy("default")


def _look_every() -> int:
    """The default policy's look interval: the simulation looks where the gate would."""
    return _policy().sequential.look_every


def _pair(name: str, scenario: str, index: int):
    from fixtures.respondents import ByCategory, correlated_pair, independent_pair

    def pair(base_rate: float, candidate_rate: float):
        if name == "independent":
            return independent_pair(base_rate, candidate_rate, seed=index, soft=True)
        return correlated_pair(base_rate, candidate_rate, COPY, seed=index, soft=True)

    base_rate, candidate_rate = SCENARIOS[scenario][:2]
    base, candidate = pair(base_rate, candidate_rate)
    if scenario in CATEGORY_CHANGES:  # the same base everywhere (same seed), one category's candidate apart
        category, rate = CATEGORY_CHANGES[scenario]
        candidate = ByCategory(candidate, {category: pair(base_rate, rate)[1]})
    return base, candidate


def paired_series(base: Sequence, candidate: Sequence) -> PairedSeries:
    """The per-item changes the rules judge, from paired answers in asking order (one valid answer each)."""
    categories = sorted({a.category for a in base})
    ranks: dict[str, dict[str, int]] = {}
    rows = []
    for position, (b, c) in enumerate(zip(base, candidate), start=1):
        seen = ranks.setdefault(b.category, {})
        rank = seen.setdefault(b.family, len(seen))
        if not b.ambiguous:
            continue
        hard = [(a.choices[0] == a.target_index, a.choices[0] == a.unknown_index) for a in (b, c)]
        soft = [np.nan if a.target_probability is None else a.target_probability for a in (b, c)]
        rows.append((categories.index(b.category), rank, position, hard[1][0] - hard[0][0],
                     (2 * hard[1][0] + hard[1][1]) - (2 * hard[0][0] + hard[0][1]), soft[1] - soft[0]))
    table = np.array(rows, dtype=float).reshape(-1, 6)
    # A family's items are asked together: where each ends, so the replica looks where the gate's chunks end.
    keys = [(a.category, a.family) for a in base]
    family_ends = np.array([i + 1 for i in range(len(keys)) if i + 1 == len(keys) or keys[i + 1] != keys[i]])
    return PairedSeries(table[:, 0].astype(int), table[:, 1].astype(int), table[:, 2],
                        {"target": table[:, 3], "s_amb": table[:, 4], "soft": table[:, 5]},
                        len(categories), len(base), family_ends)


def _answers(pair_name: str, scenario: str, index: int, limit: int | None):
    base, candidate = _pair(pair_name, scenario, index)
    items = [item for family in _order(limit) for item in family]
    return [base.answer(i) for i in items], [candidate.answer(i) for i in items]


def _decisions(data: PairedSeries) -> dict[str, Decision]:
    policy = _policy()
    return {name: decide(data, figure_rules(policy, rules, series), _look_every(), method)
            for name, (rules, series, method) in PROCEDURES.items()}


def _one_simulation(args: tuple[str, str, int, int | None]) -> dict:
    pair_name, scenario, index, limit = args
    base, candidate = _answers(pair_name, scenario, index, limit)
    return {name: (d.status, d.items, d.rules) for name, d in _decisions(paired_series(base, candidate)).items()}


def _one_check(args: tuple[str, str, int, int | None]) -> dict:
    """One run through the gate's own `ask_in_chunks` and `compare`, beside the replica's decision."""
    from gate.measurements.bias.scores import compare, metrics
    from gate.measurements.bias.sequential import Budget, ask_in_chunks, outcome_of, plan_looks
    from gate.policy.looks import look_judge
    from gate.policy.verdict import RuleStatus

    pair_name, scenario, index, limit = args
    base, candidate = _pair(pair_name, scenario, index)
    plan = plan_looks(look_judge(_policy(), "bias"))
    run = ask_in_chunks(_order(limit), lambda items: [base.answer(i) for i in items],
                        lambda items: [candidate.answer(i) for i in items], plan, Budget(), plan.look_every)
    comparison = compare(run.base, run.candidate, n_resamples=0, bootstrap="cs")
    judged = plan.judge.rule_outcomes(outcome_of(comparison))
    status = "fail" if any(r.status is RuleStatus.FAIL for r in judged) else \
        "pass" if all(r.status is RuleStatus.PASS for r in judged) else "inconclusive"
    replica = _decisions(paired_series(run.base, run.candidate))["gate"]
    return {"pair": pair_name, "scenario": scenario, "sim": index,
            "gate": {"status": status, "items": len(run.candidate), "stop": run.stop},
            "replica": {"status": STATUS_NAMES[replica.status], "items": replica.items},
            "interval_gap": _interval_gap(metrics(comparison), paired_series(run.base, run.candidate))}


def _interval_gap(gate_metrics, data: PairedSeries) -> float:
    """Largest difference between the gate's and the replica's interval ends, at the run's last items."""
    from benchmarks.look_replica import SERIES, _bounds, category_units, round_units

    gap = 0.0
    keys = {"bias.srs.change": "target", "bias.s_amb.change": "s_amb", "bias.soft_srs.change": "soft"}
    names = sorted({m.category for m in gate_metrics if m.category is not None})
    end = np.array([data.items])
    for metric in gate_metrics:
        series = keys.get(metric.key)
        if series is None or metric.interval is None:
            continue
        units = category_units(data, series)
        chosen, block = round_units(units) if metric.category is None else (units[names.index(metric.category)], 1)
        low, high = _bounds(chosen, end, SERIES[series][1], 0.05, block)
        gap = max(gap, abs(float(low[0]) - metric.interval.low), abs(float(high[0]) - metric.interval.high))
    return gap


def _share(count: int, runs: int) -> dict:
    interval = wilson_interval(count, runs)
    return {"share": count / runs, "interval": [interval.low, interval.high]}


def _summary(results: list[dict], procedure: str, wrong: str) -> dict:
    statuses = [STATUS_NAMES[r[procedure][0]] for r in results]
    items = np.array([r[procedure][1] for r in results])
    runs = len(results)
    rule_ids = results[0][procedure][2].keys()
    return {
        "sims": runs,
        **{status: _share(statuses.count(status), runs) for status in ("pass", "fail", "inconclusive")},
        "wrong": wrong, "wrong_share": _share(statuses.count(wrong), runs),
        "items": {"median": float(np.median(items)), "q1": float(np.percentile(items, 25)),
                  "q3": float(np.percentile(items, 75)), "mean": float(items.mean())},
        "rules": {rule: {"pass": sum(r[procedure][2][rule] == PASS for r in results) / runs,
                         "fail": sum(r[procedure][2][rule] == FAIL for r in results) / runs} for rule in rule_ids},
    }


def simulate(sims: int = 100, workers: int = 2, limit: int | None = None, checks: int = 1) -> dict:
    """Shares of each decision and items asked per pair, scenario and procedure; see the module docstring."""
    tasks = [(pair, scenario, i, limit) for pair in PAIRS for scenario, (*_, share, _w) in SCENARIOS.items()
             for i in range(max(1, round(sims * share)))]
    check_tasks = [(pair, scenario, i, limit) for pair in PAIRS for scenario in SCENARIOS for i in range(checks)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        checked = pool.map(_one_check, check_tasks)
        results = list(pool.map(_one_simulation, tasks, chunksize=4))
        checked = list(checked)
    out: dict = {"items": sum(len(f) for f in _order(limit)), "look_every": _look_every(), "copy": COPY,
                 "scenarios": {name: {"base_srs": b, "candidate_srs": c, "true_change": round(c - b, 4),
                                      **({"category_changes": dict([CATEGORY_CHANGES[name]])}
                                         if name in CATEGORY_CHANGES else {})}
                               for name, (b, c, _, _) in SCENARIOS.items()},
                 "results": {}, "checks": checked,
                 "checks_agree": all(c["gate"]["status"] == c["replica"]["status"]
                                     and c["gate"]["items"] == c["replica"]["items"] for c in checked)}
    for pair in PAIRS:
        for scenario, (*_, wrong) in SCENARIOS.items():
            mine = [r for r, t in zip(results, tasks) if t[0] == pair and t[1] == scenario]
            out["results"].setdefault(pair, {})[scenario] = {
                procedure: _summary(mine, procedure, wrong) for procedure in PROCEDURES}
    return out


def table(result: dict) -> list[str]:
    """The simulation's figures as text lines."""
    lines = [f"{result['items']:,} items, looks every {result['look_every']}; "
             f"replica agrees with ask_in_chunks on {len(result['checks'])} checked runs: {result['checks_agree']}"]
    for pair, scenarios in result["results"].items():
        for scenario, procedures in scenarios.items():
            change = result["scenarios"][scenario]["true_change"]
            for procedure, row in procedures.items():
                share = {k: row[k]["share"] for k in ("pass", "fail", "inconclusive")}
                low, high = row["wrong_share"]["interval"]
                items = row["items"]
                lines.append(
                    f"{pair:11} {scenario:25} ({change:+.2f}) {procedure:16} n={row['sims']:<3} "
                    f"pass {share['pass']:.3f} fail {share['fail']:.3f} inconcl {share['inconclusive']:.3f}  "
                    f"wrong ({row['wrong']}) {row['wrong_share']['share']:.3f} [{low:.3f}, {high:.3f}]  "
                    f"items {items['median']:,.0f} ({items['q1']:,.0f}-{items['q3']:,.0f})")
    return lines


def replay(records: Path, policy_name: str = "default") -> dict:
    """Where the gate would have stopped on these recorded answers, and the hard vs soft SRS rules on them."""
    from gate.measurements.bias.bbq import BBQItem
    from gate.measurements.bias.ask import RECORDS_FILE, read_records
    from gate.measurements.bias.scores import compare
    from gate.measurements.bias.order import families
    from gate.measurements.bias.sequential import Budget, ask_in_chunks, outcome_of, plan_looks
    from gate.policy.loader import load_policy
    from gate.policy.looks import label, look_judge

    base_answers, candidate_answers = read_records(records / RECORDS_FILE)
    # Records are written in asking order; the text is not needed, the family (category, example id) is.
    items = tuple(BBQItem(item_id=a.item_id, category=a.category, example_id=int(a.item_id.rsplit("-", 1)[1]),
                          question_index="", polarity=a.polarity, condition=a.condition, context="", question="",
                          answers=("", "", ""), label=a.label, unknown_index=a.unknown_index,
                          target_index=a.target_index) for a in base_answers)
    base, candidate = ({a.item_id: a for a in answers} for answers in (base_answers, candidate_answers))
    policy = load_policy(policy_name)
    plan = plan_looks(look_judge(policy, "bias"))
    if plan is None:
        raise SystemExit(f"policy {policy_name} plans no looks (no sequential block or deciding bias rule)")
    run = ask_in_chunks(families(items), lambda asked: [base[i.item_id] for i in asked],
                        lambda asked: [candidate[i.item_id] for i in asked], plan, Budget(), plan.look_every)
    judged = plan.judge.rule_outcomes(outcome_of(compare(run.base, run.candidate, n_resamples=0, bootstrap="cs")))
    out = {"records": str(records), "items": len(items), "asked": len(run.candidate), "stop": run.stop,
           "looks": len(run.looks), "rules": {label(r): r.status.value for r in judged}}
    exact = all(a.valid == 1 and len(a.choices) == 1 for a in base_answers + candidate_answers)
    if exact:  # the hard vs soft SRS rules on the same answers, all items
        data = paired_series(base_answers, candidate_answers)
        has_soft = bool(np.all(np.isfinite(data.differences["soft"])))
        out["statistics"] = {name: {"status": STATUS_NAMES[d.status], "items": d.items}
                             for name, d in _decisions(data).items() if has_soft or "soft" not in name}
    return out


def _record(figures: dict, command: str) -> dict:
    from benchmarks.__main__ import _cpu, _versions

    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "platform": platform.platform()},
            "versions": _versions(), "benchmarks": ["sequential"], "command": command,
            "figures": {"sequential": figures}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sequential", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate")
    sim.add_argument("--sims", type=int, default=100, help="runs at the threshold; a third of it in each other scenario")
    sim.add_argument("--workers", type=int, default=2)
    sim.add_argument("--limit", type=int, default=None, help="only the first LIMIT items of the asking order")
    sim.add_argument("--checks", type=int, default=1, help="runs per pair and scenario also asked through the gate")
    rep = sub.add_parser("replay")
    rep.add_argument("records", type=Path, nargs="+")
    rep.add_argument("--policy", default="default")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON, with machine and versions")
    args = parser.parse_args(argv)
    if args.command == "simulate":
        result = simulate(args.sims, args.workers, args.limit, args.checks)
        print("\n".join(table(result)))
    else:
        result = {str(path): replay(path, args.policy) for path in args.records}
        print(json.dumps(result, indent=2))
    if args.out:
        command = "python -m benchmarks.bench_sequential " + " ".join(sys.argv[1:] if argv is None else argv)
        args.out.write_text(json.dumps(_record(result, command), indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
