"""Peers: the gate against lm-evaluation-harness 0.4.13, same machine, models, data and dtype.

BBQ. The gate's bias measurement of a dense/pruned pair, end to end as a user
runs it (`gate check demo:wanda50 --base demo --metrics bias --no-cache`, its
default letters mode: one forward pass per item, the next-token probabilities
of A/B/C in a chat prompt), against lm-eval's own `bbq` multiple-choice task
run on each of the two models (`lm_eval --model hf --tasks ...`, one process
per model: lm-eval scores one model at a time). Both read the same JSONL file
of BBQ items, written from the gate's own stratified sample, and every item is
matched by id. Goal: the gate at least 10 times faster end to end. The task
is lm-eval's bbq_multiple_choice.yaml with a local data file
(benchmarks/lmeval_tasks/gate_bbq.yaml); it scores each item's 12 choices
(the two people and ten phrasings of "unknown") by the summed log-likelihood
of the answer text after "{context}\\n\\nQ: {question}\\nA:", no chat template.
Besides the times, it reports each tool's accuracy and bias scores, lm-eval's
answers put through the gate's own scoring (so the elicitation and the scoring
differences can be told apart), how often the two tools pick the same answer,
and on how many items lm-eval's biased-answer rule and the gate's target rule
differ, and the tokens each tool feeds a model. A second, tiny run of both
(`--fixed-items`, 6) separates each tool's fixed cost (start-up, model loads,
statistics) from its cost per item; when the main run uses fewer than the
600 bundled items, the ratio on all of them is projected from these (and
labelled a projection).

Perplexity. The same text, the first `windows` x 512 tokens of the bundled
WikiText-2 excerpt (raw, not detokenized), scored three ways:
- end to end: `gate check demo:wanda50 --base demo --metrics perplexity
  --no-cache` against lm-eval's rolling log-likelihood (the `wikitext` task's
  loglikelihood_rolling on a local file, benchmarks/lmeval_tasks/gate_wikitext.yaml,
  max_length 512) on each model. Goal: faster than lm-eval.
- in one process on one loaded model (the dense one): the gate's
  measure_perplexity, the plain forward-pass loop of bench_perplexity.py and
  lm-eval's HFLM.loglikelihood_rolling, alternating, fastest of `repeats`.
  Goals: gate/plain >= 0.9, gate faster than lm-eval.
The windows differ by one token: the gate cuts non-overlapping windows of 512
tokens and predicts 511 in each (a window's first token is context only);
lm-eval predicts every token, the document's first after its prefix token and
each later window's first from the one token before it. Perplexities are per
token (lm-eval reports word and byte perplexity; its token perplexity here is
exp(-loglikelihood / tokens)), and bits per byte from both.

lm-eval is a peer, never a dependency of the gate: it lives in its own virtual
environment, .venv-bench (`make bench-venv` makes it, with the gate installed
there too for the in-process comparison; `make bench` makes it first).
Without it this benchmark says so and skips. GATE_BENCH_PEER_PYTHON names
another interpreter that has lm-eval.

Run it alone, from the repository root:

    make bench-venv                                        # once
    .venv/bin/python -m benchmarks.bench_peers             # all 600 bundled BBQ items (the gate's default), 16 windows
    .venv/bin/python -m benchmarks.bench_peers --bbq-items 60 --ppl-windows 8    # a quick look
    .venv/bin/python -m benchmarks --only peers            # the same as the first, recorded in benchmarks/results/

On an otherwise idle 2-core CPU the default run takes about 7 minutes, 60 items
about 2.5; on a busy one, several times longer.

Both tools compute in bfloat16 on the CPU (or on CUDA where torch sees one),
with their default thread counts; `--threads N` (or GATE_BENCH_THREADS=N for
`python -m benchmarks`) gives every process of both tools N torch threads. On a
CPU shared with other busy processes, torch's threads wait on each other and
wall times swing several-fold from run to run; each process's CPU time is
recorded beside its wall time as a steadier cross-check, and so are the load
averages before and after.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TASKS = Path(__file__).resolve().parent / "lmeval_tasks"
PEER_VENV = REPO / ".venv-bench"
LM_EVAL_VERSION = "0.4.13"
BBQ_GOAL = 10.0  # gate at least 10x faster than lm-eval, end to end
PLAIN_GOAL = 0.9  # gate at least 0.9 of the plain loop's throughput
CTX = 512
DTYPE = "bfloat16"
BBQ_BATCH = 32  # the gate's BBQ batch size (gate.measurements.bias.ask.DEFAULT_BATCH_SIZE); lm-eval gets the same
PPL_BATCH = 4  # the gate's perplexity batch size (gate.measurements.perplexity.DEFAULT_BATCH_SIZE)
BBQ_FILE = "gate_bbq.jsonl"
TEXT_FILE = "gate_wikitext.jsonl"
FIGURES = ("accuracy_ambiguous", "accuracy_disambiguated", "s_amb", "s_dis", "srs", "usr")
THREADS: int | None = None  # --threads: torch's intra-op threads in every process of both tools; None: their default


# ---------------------------------------------------------------- the peer


def peer_python() -> tuple[Path | None, str]:
    """(interpreter with lm-eval, its lm-eval version), or (None, why not)."""
    named = os.environ.get("GATE_BENCH_PEER_PYTHON")
    # absolute(), not resolve(): a venv's python is a symlink to the base interpreter, which lacks lm-eval.
    python = Path(named).absolute() if named else PEER_VENV / "bin" / "python"
    if not python.exists():
        return None, (f"no {python}: lm-eval is installed only for benchmarks, in its own environment; "
                      "run `make bench-venv` (or `make bench`)")
    probe = subprocess.run([str(python), "-c", "import importlib.metadata as m, lm_eval; print(m.version('lm_eval'))"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return None, f"{python} cannot import lm_eval: {_tail(probe.stderr, 1)}"
    return python, probe.stdout.strip()


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _offline_env(work: Path, name: str) -> dict:
    """Nothing from the network, and a fresh datasets cache for each run."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(work / f"hf-datasets-{name}"), "GATE_CACHE_DIR": str(work / "gate-cache"),
           "TOKENIZERS_PARALLELISM": "false"}
    if THREADS:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(THREADS)
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(command: list[str], cwd: Path, env: dict, ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one fresh process. CPU time moves less than wall time when other
    processes share the machine, so it is kept as a cross-check of the wall-time ratios."""
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode not in ok:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed ({done.returncode}):\n{_tail(done.stderr)}")
    return seconds, cpu


def _gate(candidate: Path, base: Path, work: Path, device: str, *extra: str) -> tuple[float, float]:
    command = [sys.executable, "-m", "gate", "check", str(candidate), "--base", str(base), "--no-cache",
               "--backend", "torch", "--device", device, "--dtype", DTYPE, "--quiet", *extra]
    return _timed(command, REPO, _offline_env(work, "gate"), ok=(0, 1, 3))  # any verdict; 2 and 4 are errors


def _lm_eval(python: Path, model: Path, task: str, work: Path, out: Path, device: str, batch_size: int,
             max_length: int | None = None) -> tuple[float, float]:
    args = f"pretrained={model},dtype={DTYPE}" + (f",max_length={max_length}" if max_length else "")
    command = [str(python), "-m", "lm_eval", "--model", "hf", "--model_args", args, "--device", device,
               "--batch_size", str(batch_size), "--tasks", task, "--include_path", str(TASKS),
               "--output_path", str(out), "--log_samples"]
    return _timed(command, work, _offline_env(work, out.name))  # cwd: the task's data file is relative


def _lm_eval_output(out: Path, task: str) -> tuple[dict, list[dict]]:
    """lm-eval's aggregated results for `task` and its logged samples."""
    (results,) = sorted(out.rglob("results_*.json"))
    (samples,) = sorted(out.rglob(f"samples_{task}_*.jsonl"))
    rows = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines() if line.strip()]
    return json.loads(results.read_text(encoding="utf-8"))["results"][task], rows


# ---------------------------------------------------------------- BBQ


def _lm_eval_answer(doc: dict, lls: list[float], unknown_index: int) -> int:
    """lm-eval's pick as an index into the item's own answers (ans0..ans2).

    Its choices are the two non-unknown answers in their order, then ten
    phrasings of "unknown"; any of those ten is the item's unknown answer.
    """
    pick = max(range(len(lls)), key=lambda k: lls[k])
    people = [k for k in range(3) if k != unknown_index]
    return people[pick] if pick < 2 else unknown_index


def _pooled(answers) -> dict:
    """Overall figures pooled over all items, as lm-eval computes them (the gate's report averages its
    rates over categories instead; its s_AMB and s_DIS are pooled either way)."""
    from dataclasses import replace

    from gate.measurements.bias.scores import score

    overall = score([replace(a, category="all") for a in answers]).overall
    return {name: getattr(overall, name).value for name in FIGURES}


def _run_bbq(python: Path, base: Path, candidate: Path, work: Path, chosen, device: str, tag: str) -> dict:
    """Both tools on `chosen`: the gate once on the pair, lm-eval once per model; times and outputs."""
    from gate.measurements.bias.bbq import write_rows

    run = work / f"bbq-{tag}"
    run.mkdir()
    write_rows(chosen, run / BBQ_FILE)
    gate_json, records = run / "gate-bias.json", run / "gate-bias-records"
    # Every item, in BBQ's fixed option order: what lm-eval's task asks (the gate's defaults would permute
    # the options and stop once the policy is decided).
    gate_s, gate_cpu = _gate(candidate, base, run, device, "--metrics", "bias", "--bbq", str(run / BBQ_FILE),
                             "--no-permute", "--no-sequential",
                             "--json", str(gate_json), "--records", str(records))
    print(f"  gate check (both models, letters mode)     {gate_s:7.1f} s  (CPU {gate_cpu:6.1f} s)  {len(chosen)} items")
    lm_s, lm_cpu, lm_out = {}, {}, {}
    for role, model in (("dense", base), ("candidate", candidate)):
        lm_out[role] = run / f"lm-eval-{role}"
        lm_s[role], lm_cpu[role] = _lm_eval(python, model, "gate_bbq", run, lm_out[role], device, BBQ_BATCH)
        print(f"  lm_eval gate_bbq ({role:9s})                {lm_s[role]:7.1f} s  (CPU {lm_cpu[role]:6.1f} s)  "
              f"{len(chosen)} items")
    return {"gate_s": gate_s, "gate_cpu_s": gate_cpu, "lm_eval_s": lm_s, "lm_eval_cpu_s": lm_cpu,
            "gate_json": gate_json, "records": records, "lm_eval_out": lm_out}


SAMPLE_SEED = 0  # the stratified sample of the bundled items both tools are asked


def bench_bbq(python: Path, base: Path, candidate: Path, work: Path, items: int, device: str,
              fixed_items: int = 6) -> dict:
    from gate.measurements.bias.bbq import category_key, load_bbq_source, sample_items
    from gate.measurements.bias.ask import read_records
    from gate.measurements.bias.scores import ItemAnswer

    data = load_bbq_source(None)
    chosen = sample_items(data.items, limit=items, seed=SAMPLE_SEED)  # what `--bbq-limit N` asks
    by_key = {(item.category, item.example_id): item for item in chosen}
    print(f"  {len(chosen)} BBQ items (the gate's stratified sample of the bundled {len(data.items)}), "
          f"{DTYPE}, {device}")
    main = _run_bbq(python, base, candidate, work, chosen, device, "main")
    gate_s, lm_s = main["gate_s"], main["lm_eval_s"]
    document = json.loads(main["gate_json"].read_text(encoding="utf-8"))
    (outcome,) = [o for o in document["outcomes"] if o["name"] == "bias"]
    if not outcome["ok"]:
        raise RuntimeError(f"the gate's bias measurement failed: {outcome['error']}")
    result = outcome["result"]
    gate_answers = dict(zip(("dense", "candidate"), read_records(main["records"] / "bbq_records.jsonl")))

    from gate.runtime.common import load_tokenizer
    from gate.measurements.bias.prompts import IDENTITY, prompt_format, render_prompt

    # Tokens each tool feeds one model: the gate's chat prompts, lm-eval's context + choice requests.
    tokenizer = load_tokenizer(base)
    fmt = prompt_format(tokenizer)
    tokens = {"gate": sum(len(render_prompt(tokenizer, item, IDENTITY, fmt)) for item in chosen), "lm_eval": 0}
    per_model = {}
    for role in ("dense", "candidate"):
        aggregated, samples = _lm_eval_output(main["lm_eval_out"][role], "gate_bbq")
        if role == "dense":
            tokens["lm_eval"] = sum(len(tokenizer.encode(request[key], add_special_tokens=False))
                                    for row in samples for request in row["arguments"].values()
                                    for key in ("arg_0", "arg_1"))
        answers, rule_differs = {}, 0
        for row in samples:
            doc = row["doc"]
            item = by_key[(category_key(doc["category"]), int(doc["example_id"]))]
            lls = [float(resp[0]) for resp in row["filtered_resps"]]
            choice = _lm_eval_answer(doc, lls, item.unknown_index)
            answers[item.item_id] = ItemAnswer(
                item_id=item.item_id, category=item.category, condition=item.condition, polarity=item.polarity,
                label=item.label, unknown_index=item.unknown_index, target_index=item.target_index,
                choices=(choice,), draws=("lm-eval loglikelihood",))
            rule_differs += set(doc["biased_answers"]) != {item.answers[item.target_index]}
        ours = gate_answers[role]
        if len(answers) != len(samples) or set(answers) != {a.item_id for a in ours}:
            raise RuntimeError("lm-eval and the gate did not answer the same BBQ items")
        theirs = [answers[a.item_id] for a in ours]
        reported = result["comparison"]["base" if role == "dense" else "candidate"]["overall"]
        per_model[role] = {
            "gate": _pooled(ours),
            "lm_eval": {"acc": aggregated["acc,none"], "accuracy_ambiguous": aggregated["accuracy_amb,none"],
                        "accuracy_disambiguated": aggregated["accuracy_disamb,none"],
                        "s_amb": aggregated["amb_bias_score,none"], "s_dis": aggregated["disamb_bias_score,none"]},
            "lm_eval_answers_gate_scoring": _pooled(theirs),
            "gate_reported": {name: reported[name]["value"] for name in FIGURES},  # rates: mean over categories
            "same_answer": sum(a.choices[0] == b.choices[0] for a, b in zip(ours, theirs)) / len(ours),
            "unknown_picked": {"gate": sum(a.choices[0] == a.unknown_index for a in ours) / len(ours),
                               "lm_eval": sum(b.choices[0] == b.unknown_index for b in theirs) / len(theirs)},
            "target_rule_differs": rule_differs,
        }
    lm_total = sum(lm_s.values())
    speedup = lm_total / gate_s
    cpu_speedup = sum(main["lm_eval_cpu_s"].values()) / main["gate_cpu_s"]
    print(f"  -> lm-eval {lm_total:.1f} s / gate {gate_s:.1f} s = gate {speedup:.1f}x faster "
          f"on {len(chosen)} items (goal >= {BBQ_GOAL:.0f}x); in CPU time {cpu_speedup:.1f}x")
    figures = {"items": len(chosen), "gate_s": gate_s, "lm_eval_s": lm_s, "lm_eval_total_s": lm_total,
               "speedup": speedup, "goal": BBQ_GOAL, "gate_cpu_s": main["gate_cpu_s"],
               "lm_eval_cpu_s": main["lm_eval_cpu_s"], "cpu_speedup": cpu_speedup, "gate_forward_passes_per_model": len(chosen),
               "lm_eval_requests_per_model": 12 * len(chosen), "lm_eval_batch_size": BBQ_BATCH,
               "gate_findings": [f"{f.get('subject') or 'both'}: {f['code']}" for f in outcome.get("findings", [])],
               "models": per_model}
    if fixed_items and fixed_items < len(chosen):
        # A tiny run gives each tool's fixed cost (start-up, model loads, statistics); the rest is per item.
        small = _run_bbq(python, base, candidate, work, sample_items(data.items, limit=fixed_items, seed=SAMPLE_SEED),
                         device, "fixed")
        gate_item = (gate_s - small["gate_s"]) / (len(chosen) - fixed_items)
        lm_item = (lm_total - sum(small["lm_eval_s"].values())) / (len(chosen) - fixed_items)
        figures["per_item"] = {"fixed_run_items": fixed_items, "gate_fixed_s": small["gate_s"],
                               "lm_eval_fixed_s": small["lm_eval_s"], "gate_s_per_item": gate_item,
                               "lm_eval_s_per_item": lm_item, "marginal_speedup": lm_item / gate_item}
        print(f"  fixed cost ({fixed_items}-item run): gate {small['gate_s']:.1f} s, lm-eval "
              f"{sum(small['lm_eval_s'].values()):.1f} s; per item beyond it: gate {gate_item:.3f} s, "
              f"lm-eval {lm_item:.3f} s -> {lm_item / gate_item:.1f}x")
        full = len(data.items)
        if len(chosen) < full:
            projected = {"gate_s": small["gate_s"] + gate_item * (full - fixed_items),
                         "lm_eval_s": sum(small["lm_eval_s"].values()) + lm_item * (full - fixed_items)}
            projected["speedup"] = projected["lm_eval_s"] / projected["gate_s"]
            figures["per_item"][f"projected_{full}_items"] = projected
            print(f"  projected for all {full} items: gate {projected['gate_s']:.0f} s, lm-eval "
                  f"{projected['lm_eval_s']:.0f} s -> {projected['speedup']:.1f}x (a projection, not a run)")
    figures["input_tokens_per_model"] = tokens
    print(f"  tokens fed to each model: gate {tokens['gate']} ({tokens['gate'] / len(chosen):.0f} per item, one chat "
          f"prompt), lm-eval {tokens['lm_eval']} ({tokens['lm_eval'] / len(chosen):.0f} per item, 12 requests) "
          f"-> {tokens['lm_eval'] / tokens['gate']:.1f}x")
    _print_bias(per_model, figures["gate_findings"])
    return figures


def _fmt(value) -> str:
    return "   n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:6.3f}"


def _print_bias(per_model: dict, findings: list[str]) -> None:
    print("  overall, pooled over items: gate (letters) | lm-eval (its own scoring) | lm-eval's answers, gate's scoring")
    for role, figures in per_model.items():
        print(f"  {role}: same answer on {figures['same_answer']:.0%} of items; 'unknown' picked on "
              f"{figures['unknown_picked']['gate']:.0%} (gate) and {figures['unknown_picked']['lm_eval']:.0%} (lm-eval); "
              f"lm-eval's biased-answer rule differs from the gate's target on {figures['target_rule_differs']} items")
        for name in FIGURES:
            print(f"    {name:24s} {_fmt(figures['gate'][name])}  | {_fmt(figures['lm_eval'].get(name))}  "
                  f"| {_fmt(figures['lm_eval_answers_gate_scoring'][name])}")
    if findings:
        print(f"  the gate's findings: {'; '.join(findings)}")


# ---------------------------------------------------------------- perplexity


def _text_prefix(tokenizer, tokens: int) -> str:
    """The bundled excerpt up to the end of its `tokens`-th token: the text the gate's windows cover."""
    from gate.inputs.corpus import load_text

    text = load_text(None).text
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    if len(encoded["input_ids"]) < tokens:
        raise RuntimeError(f"the excerpt holds {len(encoded['input_ids'])} tokens, fewer than {tokens}")
    return text[:encoded["offset_mapping"][tokens - 1][1]]


def bench_perplexity(python: Path, base: Path, candidate: Path, work: Path, windows: int, repeats: int,
                     device: str) -> dict:
    from gate.runtime.common import load_tokenizer

    tokens = windows * CTX
    tokenizer = load_tokenizer(base)
    text = _text_prefix(tokenizer, tokens)
    (work / TEXT_FILE).write_text(json.dumps({"page": text}) + "\n", encoding="utf-8")
    print(f"  {windows} windows of {CTX} tokens ({tokens} tokens, {len(text.encode())} bytes of the excerpt), {DTYPE}")

    gate_json = work / "gate-ppl.json"
    gate_s, gate_cpu = _gate(candidate, base, work, device, "--metrics", "perplexity", "--ppl-tokens", str(tokens),
                             "--ctx", str(CTX), "--json", str(gate_json))
    print(f"  gate check (both models)                   {gate_s:7.1f} s  (CPU {gate_cpu:6.1f} s)")
    (outcome,) = [o for o in json.loads(gate_json.read_text(encoding="utf-8"))["outcomes"] if o["name"] == "perplexity"]
    if not outcome["ok"]:
        raise RuntimeError(f"the gate's perplexity measurement failed: {outcome['error']}")
    comparison = outcome["result"]["comparison"]
    lm_s, lm_cpu, values = {}, {}, {}
    for role, model in (("dense", base), ("candidate", candidate)):
        out = work / f"lm-eval-ppl-{role}"
        lm_s[role], lm_cpu[role] = _lm_eval(python, model, "gate_wikitext", work, out, device, PPL_BATCH,
                                            max_length=CTX)
        print(f"  lm_eval gate_wikitext ({role:9s})           {lm_s[role]:7.1f} s  (CPU {lm_cpu[role]:6.1f} s)")
        aggregated, (sample,) = _lm_eval_output(out, "gate_wikitext")
        loglikelihood = float(sample["resps"][0][0]) if isinstance(sample["resps"][0], list) else float(sample["resps"][0])
        side = comparison["base" if role == "dense" else "candidate"]
        values[role] = {
            "gate_token_perplexity": side["perplexity"], "gate_bits_per_byte": side["bits_per_byte"],
            "lm_eval_token_perplexity": math.exp(-loglikelihood / tokens),
            "lm_eval_bits_per_byte": aggregated["bits_per_byte,none"],
            "lm_eval_word_perplexity": aggregated["word_perplexity,none"],
        }
    lm_total = sum(lm_s.values())
    cpu_speedup = sum(lm_cpu.values()) / gate_cpu
    print(f"  -> lm-eval {lm_total:.1f} s / gate {gate_s:.1f} s = gate {lm_total / gate_s:.2f}x faster (goal > 1); "
          f"in CPU time {cpu_speedup:.2f}x")
    for role, v in values.items():
        print(f"  {role}: token perplexity gate {v['gate_token_perplexity']:.3f}, lm-eval "
              f"{v['lm_eval_token_perplexity']:.3f}; bits/byte gate {v['gate_bits_per_byte']:.4f}, "
              f"lm-eval {v['lm_eval_bits_per_byte']:.4f}; lm-eval word perplexity {v['lm_eval_word_perplexity']:.3f}")
    ratio = {"gate": comparison["ratio"],
             "lm_eval": values["candidate"]["lm_eval_token_perplexity"] / values["dense"]["lm_eval_token_perplexity"]}
    print(f"  candidate/dense perplexity: gate {ratio['gate']:.4f}, lm-eval {ratio['lm_eval']:.4f}")

    command = [str(python), "-m", "benchmarks.bench_peers", "--ppl-worker", "--model", str(base),
               "--ppl-windows", str(windows), "--repeats", str(repeats), "--device", device]
    done = subprocess.run(command, cwd=REPO, env=_offline_env(work, "worker"), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the in-process perplexity comparison failed:\n{_tail(done.stderr)}")
    in_process = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  one process, one loaded model (dense), fastest of {repeats}: tokens/s gate "
          f"{in_process['gate_tokens_per_second']:.0f}, plain loop {in_process['plain_tokens_per_second']:.0f}, "
          f"lm-eval {in_process['lm_eval_tokens_per_second']:.0f}")
    print(f"  -> gate/plain {in_process['gate_over_plain']:.3f} (goal >= {PLAIN_GOAL}), "
          f"gate/lm-eval {in_process['gate_over_lm_eval']:.3f} (goal > 1)")
    return {"windows": windows, "ctx": CTX, "tokens": tokens, "bytes": len(text.encode()),
            "end_to_end": {"gate_s": gate_s, "lm_eval_s": lm_s, "lm_eval_total_s": lm_total,
                           "speedup": lm_total / gate_s, "gate_cpu_s": gate_cpu, "lm_eval_cpu_s": lm_cpu,
                           "cpu_speedup": cpu_speedup},
            "values": values, "candidate_over_dense": ratio, "in_process": in_process}


def ppl_worker(model: Path, windows: int, repeats: int, device: str) -> dict:
    """Runs under the peer's interpreter: gate, plain loop and lm-eval on one loaded model."""
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from benchmarks.bench_perplexity import plain_loop_nll
    from gate.runtime.torch_backend import load_torch_model
    from gate.measurements.perplexity import make_windows, measure_perplexity

    handle = load_torch_model(model, device=device, dtype=DTYPE)
    text = _text_prefix(handle.tokenizer, windows * CTX)
    cut = make_windows(handle.tokenizer, text, ctx=CTX, max_tokens=windows * CTX)
    if len(cut) != windows:
        raise RuntimeError(f"the text prefix gives {len(cut)} windows, not {windows}")
    lm = HFLM(pretrained=handle.model, tokenizer=handle.tokenizer, batch_size=PPL_BATCH, max_length=CTX)
    lm_tokens = len(lm.tok_encode(text))
    request = Instance(request_type="loglikelihood_rolling", doc={}, arguments=(text,), idx=0)
    gate_scored = sum(len(ids) - 1 for ids in cut.token_ids)
    device_ = torch.device(handle.device)
    plain_loop_nll(handle.model, cut, 1, device_)  # warm-up
    times: dict[str, list[float]] = {"gate": [], "plain": [], "lm_eval": []}
    for _ in range(repeats):
        start = time.perf_counter()
        gate_run = measure_perplexity(handle, cut, batch_size=PPL_BATCH)
        times["gate"].append(time.perf_counter() - start)
        start = time.perf_counter()
        plain_nll = plain_loop_nll(handle.model, cut, PPL_BATCH, device_)
        times["plain"].append(time.perf_counter() - start)
        start = time.perf_counter()
        (loglikelihood,) = lm.loglikelihood_rolling([request], disable_tqdm=True)
        times["lm_eval"].append(time.perf_counter() - start)
    best = {name: min(values) for name, values in times.items()}
    rate = {"gate": gate_scored / best["gate"], "plain": gate_scored / best["plain"],
            "lm_eval": lm_tokens / best["lm_eval"]}
    return {"windows": len(cut), "gate_scored_tokens": gate_scored, "lm_eval_scored_tokens": lm_tokens,
            "repeats": repeats, "seconds": best,
            "gate_tokens_per_second": rate["gate"], "plain_tokens_per_second": rate["plain"],
            "lm_eval_tokens_per_second": rate["lm_eval"],
            "gate_over_plain": rate["gate"] / rate["plain"], "gate_over_lm_eval": rate["gate"] / rate["lm_eval"],
            "gate_perplexity": gate_run.perplexity, "plain_perplexity": math.exp(plain_nll / gate_scored),
            "lm_eval_perplexity": math.exp(-float(loglikelihood) / lm_tokens)}


# ---------------------------------------------------------------- main


def main(bbq_items: int = 600, ppl_windows: int = 16, repeats: int = 3, variant: str = "wanda50",
         parts: tuple[str, ...] = ("bbq", "perplexity"), fixed_items: int = 6, threads: int | None = None) -> dict:
    """Run the comparisons; returns the figures, or {"skipped": why} without lm-eval."""
    global THREADS
    THREADS = threads
    python, version = peer_python()
    if python is None:
        print(f"  skipped: {version}")
        return {"skipped": version}
    from gate.demo.build import ensure_demo_checkpoint

    base, candidate = ensure_demo_checkpoint("dense"), ensure_demo_checkpoint(variant)
    device = _device()
    figures: dict = {"lm_eval": version, "dtype": DTYPE, "device": device, "candidate": f"demo:{variant}",
                     "threads": threads or "default", "load_average_before": os.getloadavg()}
    print(f"  lm-eval {version} ({python}); demo:{variant} against demo")
    if version != LM_EVAL_VERSION:
        print(f"  note: benchmarks/lmeval_tasks/ follow lm-eval {LM_EVAL_VERSION}'s bbq and wikitext tasks")
    work = Path(tempfile.mkdtemp(prefix="gate-bench-peers-"))
    try:
        if "bbq" in parts:
            print(" BBQ")
            figures["bbq"] = bench_bbq(python, base, candidate, work, bbq_items, device, fixed_items)
        if "perplexity" in parts:
            print(" perplexity")
            figures["perplexity"] = bench_perplexity(python, base, candidate, work, ppl_windows, repeats, device)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["load_average_after"] = os.getloadavg()
    return figures


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bbq-items", type=int, default=600, help="BBQ items (of the bundled 600: the gate's default)")
    parser.add_argument("--ppl-windows", type=int, default=16, help="perplexity windows of 512 tokens")
    parser.add_argument("--threads", type=int, help="torch threads in every process of both tools (default: theirs)")
    parser.add_argument("--fixed-items", type=int, default=6,
                        help="BBQ items of the extra small run that separates fixed from per-item cost (0: none)")
    parser.add_argument("--repeats", type=int, default=3, help="in-process perplexity: runs of each, fastest counts")
    parser.add_argument("--variant", default="wanda50", help="the pruned demo variant gated against the dense one")
    parser.add_argument("--only", choices=("bbq", "perplexity"), help="one of the two comparisons")
    parser.add_argument("--ppl-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ppl_worker:
        print(json.dumps(ppl_worker(args.model, args.ppl_windows, args.repeats, args.device)))
        return
    parts = (args.only,) if args.only else ("bbq", "perplexity")
    main(args.bbq_items, args.ppl_windows, args.repeats, args.variant, parts, args.fixed_items, args.threads)


if __name__ == "__main__":
    _cli()
