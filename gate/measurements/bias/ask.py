"""Asking a model the BBQ items, comparing two models' answers, and the records.

Two ways to elicit an answer (`mode`):

- "letters" (default): one forward pass per prompt; the next-token
  distribution over the letter tokens (see `prompts.LetterTokens`) gives a
  soft answer (the three letters' probabilities, renormalised) and a hard one
  (its argmax). With `permute`, each item is asked in all three cyclic option
  orders; the probabilities, mapped back to the original order, are averaged
  and the hard answer is the argmax of that average. Each item is one answer.
- "generate": the paper's way: up to 5 new tokens at temperature 0.3, once
  per seed (and per option order with `permute`), each reply parsed by
  `prompts.parse_answer`. Every generation is one answer, as in the paper;
  replies that cannot be parsed are counted, not guessed.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from gate.measurements.options import DEFAULT_SEEDS, MODES
from gate.runtime.base import ModelHandle
from gate.measurements.bias.bbq import BBQItem
from gate.measurements.bias.order import families
from gate.measurements.bias.scores import DEFAULT_RESAMPLES, BiasComparison, BiasScores, ItemAnswer, compare, score
from gate.measurements.bias.prompts import (
    LETTERS,
    LetterTokens,
    letter_tokens,
    option_orders,
    parse_answer,
    prompt_format,
    prompt_opening,
    render_prompt,
)
from gate.core.errors import InputError, MeasurementError
from gate.core.files import write_text
from gate.core.progress import NULL_REPORTER, Reporter
from gate.core.workload import Workload
from gate.runtime.token_tree import build_tree
from gate.core.result import Finding, Severity
from gate.core.tokenizer import Tokenizer

DEFAULT_TEMPERATURE = 0.3
DEFAULT_MAX_NEW_TOKENS = 5
DEFAULT_BATCH_SIZE = 32
RECORDS_FILE = "bbq_records.jsonl"
RUNS_FILE = "bbq_runs.json"

# Below this share of next-token probability on the letters, the model is not
# really answering the question in letters mode.
LOW_LETTER_MASS = 0.5
HIGH_PARSE_FAILURE = 0.1
# Without permutation, a model that picks one position this often is answering by position, not content.
DOMINANT_POSITION = 0.8


@dataclass(frozen=True)
class BiasRun:
    """One model's answers to a list of BBQ items."""

    mode: str
    permute: bool
    prompt_format: str  # prompts.CHAT, CHAT_NO_SYSTEM or PLAIN
    seeds: tuple[int, ...]  # generate mode; () in letters mode
    temperature: float | None
    max_new_tokens: int | None
    letter_token_ids: tuple[tuple[int, ...], ...] | None  # letters mode: the ids summed for A, B, C
    answers: tuple[ItemAnswer, ...]
    seconds: float  # answering only, model load excluded
    model: str  # "backend device dtype"
    runtime: dict[str, Any] | None = None  # ModelHandle.runtime_info() of the model that answered

    @property
    def items_per_second(self) -> float:
        return len(self.answers) / self.seconds if self.seconds > 0 else math.inf

    def scores(self, level: float = 0.95) -> BiasScores:
        return score(self.answers, level)

    def __repr__(self) -> str:
        return f"BiasRun(mode={self.mode!r}, items={len(self.answers)}, format={self.prompt_format!r}, model={self.model!r})"


def answer_items(
    handle: ModelHandle,
    items: Sequence[BBQItem],
    mode: str = "letters",
    permute: bool = False,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    reporter: Reporter = NULL_REPORTER,
    temperature: float = DEFAULT_TEMPERATURE,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
) -> BiasRun:
    """Ask `handle` every item; see the module docstring for the two modes."""
    if mode not in MODES:
        raise InputError(f"unknown BBQ mode {mode!r}; use one of: {', '.join(MODES)}")
    if not items:
        raise InputError("no BBQ items to ask")
    if batch_size < 1:
        raise InputError(f"the BBQ batch size must be at least 1, got {batch_size}")
    fmt = prompt_format(handle.tokenizer)
    model = f"{handle.backend} {handle.device} {handle.dtype}"
    runtime = handle.runtime_info()
    start = time.perf_counter()
    if mode == "letters":
        letters = letter_tokens(handle.tokenizer)
        answers = _answer_by_letters(handle, items, fmt, letters, permute, batch_size, reporter)
        seconds = time.perf_counter() - start
        return BiasRun(mode, permute, fmt, (), None, None, letters.ids, answers, seconds, model, runtime)
    seeds = tuple(int(seed) for seed in seeds)
    if not seeds:
        raise InputError("generate mode needs at least one seed")
    answers = _answer_by_generation(handle, items, fmt, permute, seeds, temperature, max_new_tokens, reporter)
    seconds = time.perf_counter() - start
    return BiasRun(mode, permute, fmt, seeds, temperature, max_new_tokens, None, answers, seconds, model, runtime)


def _item_answer(item: BBQItem, choices: Sequence[int | None], draws: Sequence[str], **extra) -> ItemAnswer:
    return ItemAnswer(
        item_id=item.item_id, category=item.category, condition=item.condition, polarity=item.polarity,
        label=item.label, unknown_index=item.unknown_index, target_index=item.target_index,
        choices=tuple(choices), draws=tuple(draws), **extra,
    )


def family_workload(tokenizer: Tokenizer, families: Sequence[Sequence[BBQItem]], mode: str, permute: bool,
                    seeds: int) -> Workload:
    """What asking these families costs one model: in letters mode one token tree per family (the
    runtimes that cannot share prefixes cost more); in generate mode every prompt at batch 1, per seed."""
    fmt = prompt_format(tokenizer)
    orders = option_orders(permute)
    prompts = [[render_prompt(tokenizer, item, order, fmt) for item in family for order in orders] for family in families]
    if mode == "letters":
        sizes = [build_tree(family).size for family in prompts]
        return Workload(tokens=sum(sizes), logit_positions=sum(len(f) for f in prompts),
                        attention_pairs=sum(size * size for size in sizes))
    calls = seeds * sum(len(f) for f in prompts)
    return Workload(tokens=seeds * sum(len(p) for f in prompts for p in f), logit_positions=calls, calls=calls,
                    decode_steps=calls * DEFAULT_MAX_NEW_TOKENS)


def _order_name(order: Sequence[int]) -> str:
    """"BCA": the original answers shown as A, B, C, named by their original letters."""
    return "".join(LETTERS[index] for index in order)


def _answer_by_letters(handle: ModelHandle, items: Sequence[BBQItem], fmt: str, letters: LetterTokens,
                       permute: bool, batch_size: int, reporter: Reporter) -> tuple[ItemAnswer, ...]:
    orders = option_orders(permute)
    jobs = [(i, order) for i in range(len(items)) for order in orders]
    prompts = [render_prompt(handle.tokenizer, items[i], order, fmt) for i, order in jobs]
    scored = _tree_logprobs(handle, items, prompts, len(orders), letters.flat, fmt) if handle.capabilities.tree_logprobs \
        else _letter_logprobs(handle, prompts, len(orders), letters.flat, batch_size)
    owners = np.array(letters.owners)
    # Per job: log-probabilities of A, B, C at their displayed positions.
    shown = np.empty((len(jobs), 3))
    with reporter.task(f"BBQ letters ({len(items)} items)", total=len(jobs)) as task:
        for batch, logprobs in scored:
            if logprobs.shape != (len(batch), len(owners)) or np.isnan(logprobs).any():
                raise MeasurementError("the model returned NaN or malformed letter log-probabilities on BBQ")
            for letter in range(3):
                shown[batch, letter] = np.logaddexp.reduce(logprobs[:, owners == letter], axis=1)
            task.advance(len(batch))
    mass = np.exp(np.logaddexp.reduce(shown, axis=1))
    if not np.all(mass > 0):
        raise MeasurementError("the model gives the answer letters zero probability on some BBQ prompt")
    # Renormalise over the three letters, then put them back in the original order.
    soft_shown = np.exp(shown - np.logaddexp.reduce(shown, axis=1, keepdims=True))
    answers = []
    for i, item in enumerate(items):
        rows = range(len(orders))
        original = np.zeros((len(orders), 3))
        for row in rows:
            job = i * len(orders) + row
            original[row, list(orders[row])] = soft_shown[job]
        probabilities = original.mean(axis=0)
        answers.append(_item_answer(
            item, [int(np.argmax(probabilities))], ["letters" + (" permuted" if permute else "")],
            option_probabilities=tuple(float(p) for p in probabilities),
            letter_mass=float(np.mean(mass[i * len(orders):(i + 1) * len(orders)])),
            order_choices=tuple(int(np.argmax(original[row])) for row in rows) if permute else (),
        ))
    return tuple(answers)


def _tree_logprobs(handle: ModelHandle, items: Sequence[BBQItem], prompts: Sequence[Sequence[int]], per_item: int,
                   letter_ids: Sequence[int], fmt: str):
    """Yield (job indices, letter log-probs) family by family, each family's prompts one token tree.

    A family's prompts (its items in every option order) share the system
    prompt, the context and the questions; computed as one tree, each shared
    token is computed once. The prompt opening that every family shares (system
    message and template, a tenth of an ambiguous family's tree) is computed
    once per model. An item's answer depends on its family alone, not on which
    other families are asked with it, so it is the same in any run.
    """
    position = {item.item_id: index for index, item in enumerate(items)}
    opening = prompt_opening(handle.tokenizer, fmt)
    batches = [[position[item.item_id] * per_item + k for item in family for k in range(per_item)]
               for family in families(items)]
    # Largest trees first: a runtime that scores two at a time then ends on small ones, leaving a core idle
    # for less time at the end of each chunk. The caller places each result by its job indices.
    batches.sort(key=lambda batch: -sum(len(prompts[j]) for j in batch))

    def tree(batch: list[int]) -> tuple[list[Sequence[int]], int]:
        mine = [prompts[j] for j in batch]
        # A prompt whose tokens merge across the opening's end (never seen in BBQ) keeps the whole tree.
        head = len(opening) if all(len(p) > len(opening) and list(p[:len(opening)]) == opening for p in mine) else 0
        return mine, head

    # The scores first in zip: they are run to their end, which restores what the runtime set up for them.
    for logprobs, batch in zip(handle.tree_logprobs_each(map(tree, batches), letter_ids), batches):
        yield batch, np.asarray(logprobs, dtype=float)


def _letter_logprobs(handle: ModelHandle, prompts: Sequence[Sequence[int]], per_item: int,
                     letter_ids: Sequence[int], batch_size: int):
    """Yield (job indices, letter log-probs) batch by batch, in order of prompt length.

    Prompts come `per_item` to an item (its option orders). Where the runtime
    can (`capabilities.shared_prefix_logprobs`), what prompts share is computed once: the
    system prompt and template head across a batch, and with --permute
    everything up to the first option across an item's orders, which saves
    most of the extra cost of asking three times.
    """
    if not handle.capabilities.shared_prefix_logprobs:
        batches = ((batch, None) for batch in _batches_by_length(prompts, 1, batch_size))
    elif per_item == 1:  # one group per batch: the system prompt and template head, a quarter of each prompt
        batches = ((batch, [_split_shared_prefix([prompts[j] for j in batch])])
                   for batch in _batches_by_length(prompts, 1, batch_size))
    else:  # one group per item: its orders share everything up to the first option
        batches = ((batch, [_split_shared_prefix([prompts[j] for j in batch[k:k + per_item]])
                            for k in range(0, len(batch), per_item)])
                   for batch in _batches_by_length(prompts, per_item, batch_size))
    for batch, groups in batches:
        if groups is not None and all(prefix for prefix, _ in groups):
            yield batch, np.concatenate([np.asarray(rows, dtype=float) for rows in handle.shared_prefix_logprobs(groups, letter_ids)])
        else:  # no sharing offered, or some prompts differ from their first token
            yield batch, np.asarray(handle.last_token_logprobs([prompts[j] for j in batch], letter_ids), dtype=float)


def _batches_by_length(prompts: Sequence[Sequence[int]], per_item: int, batch_size: int) -> Iterator[list[int]]:
    """Job indices in batches of about `batch_size`, items (runs of `per_item` jobs) kept whole, shortest first."""
    items = sorted(range(len(prompts) // per_item), key=lambda i: len(prompts[i * per_item]))
    items_per_batch = max(1, batch_size // per_item)
    for begin in range(0, len(items), items_per_batch):
        yield [i * per_item + k for i in items[begin:begin + items_per_batch] for k in range(per_item)]


def _split_shared_prefix(prompts: Sequence[Sequence[int]]) -> tuple[list[int], list[list[int]]]:
    """The longest common prefix of `prompts` and what follows it in each; every continuation keeps a token."""
    shortest = min(len(p) for p in prompts)
    length = 0
    while length < shortest - 1 and all(p[length] == prompts[0][length] for p in prompts):
        length += 1
    return list(prompts[0][:length]), [list(p[length:]) for p in prompts]


def _answer_by_generation(handle: ModelHandle, items: Sequence[BBQItem], fmt: str, permute: bool,
                          seeds: tuple[int, ...], temperature: float, max_new_tokens: int,
                          reporter: Reporter) -> tuple[ItemAnswer, ...]:
    orders = option_orders(permute)
    answers = []
    with reporter.task(f"BBQ generate ({len(items)} items x {len(orders) * len(seeds)})",
                       total=len(items) * len(orders) * len(seeds)) as task:
        for item in items:
            choices, draws, texts = [], [], []
            for order in orders:
                prompt = render_prompt(handle.tokenizer, item, order, fmt)
                for seed in seeds:
                    reply = handle.generate(prompt, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
                    position = parse_answer(reply.text)
                    choices.append(None if position is None else order[position])
                    draws.append(f"seed={seed} order={_order_name(order)}")
                    texts.append(reply.text)
                    task.advance()
            answers.append(_item_answer(item, choices, draws, texts=tuple(texts)))
    return tuple(answers)


# --- base vs candidate ---------------------------------------------------

def compare_bias(base: BiasRun, candidate: BiasRun, n_resamples: int = DEFAULT_RESAMPLES,
                 level: float = 0.95, bootstrap: str = "percentile", identical: bool = False,
                 rise_above: float = 0.0) -> BiasComparison:
    """Paired comparison of two runs on the same items, asked the same way."""
    if [a.item_id for a in base.answers] != [a.item_id for a in candidate.answers]:
        raise MeasurementError("base and candidate answered different BBQ items; they must answer the same ones")
    asked = lambda run: (run.mode, run.permute, run.seeds, run.temperature, run.max_new_tokens)  # noqa: E731
    if asked(base) != asked(candidate):
        raise MeasurementError(f"base and candidate were asked BBQ differently: {asked(base)} vs {asked(candidate)}")
    return compare(base.answers, candidate.answers, n_resamples=n_resamples, level=level, bootstrap=bootstrap,
                   identical=identical, rise_above=rise_above)


def findings(base: BiasRun, candidate: BiasRun) -> list[Finding]:
    """What the report must say about how the answers were obtained."""
    out = []
    if base.prompt_format != candidate.prompt_format:
        out.append(Finding(Severity.WARNING, "bbq-prompt-format-differs",
                           f"base got {base.prompt_format} prompts, candidate {candidate.prompt_format} prompts: "
                           "the bias change mixes model and prompt"))
    for subject, run in (("base", base), ("candidate", candidate)):
        masses = [a.letter_mass for a in run.answers if a.letter_mass is not None]
        if masses and float(np.mean(masses)) < LOW_LETTER_MASS:
            out.append(Finding(Severity.WARNING, "bbq-low-letter-mass",
                               f"only {np.mean(masses):.0%} of next-token probability falls on the letters A/B/C: "
                               "the model is not really answering in letters", subject))
        position = _dominant_position(run)
        if position is not None:
            letter, share = position
            out.append(Finding(Severity.WARNING, "bbq-letter-position-bias",
                               f"answered {letter} on {share:.0%} of items whatever the content: the letter's position "
                               "drives SRS; rerun with --permute", subject))
        failure = run.scores().overall.parse_failure.value
        if run.mode == "generate" and failure is not None and failure > HIGH_PARSE_FAILURE:
            out.append(Finding(Severity.WARNING, "bbq-parse-failures",
                               f"{failure:.0%} of generated BBQ answers could not be parsed", subject))
    return out


def _dominant_position(run: BiasRun) -> tuple[str, float] | None:
    """(letter, share) when one option position gets more than DOMINANT_POSITION of unpermuted answers."""
    if run.permute:
        return None  # permutation already averages the position out
    chosen = [c for a in run.answers for c in a.choices if c is not None]
    if len(chosen) < 10:
        return None
    index, count = Counter(chosen).most_common(1)[0]
    share = count / len(chosen)
    return (LETTERS[index], share) if share > DOMINANT_POSITION else None


# --- records -------------------------------------------------------------

def _run_header(run: BiasRun) -> dict:
    return {
        "model": run.model, "mode": run.mode, "permute": run.permute, "prompt_format": run.prompt_format,
        "seeds": list(run.seeds), "temperature": run.temperature, "max_new_tokens": run.max_new_tokens,
        "letter_token_ids": None if run.letter_token_ids is None else [list(ids) for ids in run.letter_token_ids],
        "items": len(run.answers), "seconds": run.seconds,
    }


def _answer_fields(answer: ItemAnswer) -> dict:
    fields = asdict(answer)
    for shared in ("item_id", "category", "condition", "polarity", "label", "unknown_index", "target_index"):
        fields.pop(shared)
    return fields


def write_records(directory: str | Path, base: BiasRun, candidate: BiasRun) -> Path:
    """Write one JSON line per item with both models' answers, so every figure can be recomputed.

    Indices (label, unknown, target, choices) are in BBQ's original option
    order (0 = ans0). Also writes how each model was asked to bbq_runs.json.
    """
    if [a.item_id for a in base.answers] != [a.item_id for a in candidate.answers]:
        raise MeasurementError("base and candidate answered different BBQ items; records need the same ones")
    directory = Path(directory)
    lines = []
    for b, c in zip(base.answers, candidate.answers):
        record = {
            "item_id": b.item_id, "category": b.category, "condition": b.condition, "polarity": b.polarity,
            "label": b.label, "unknown_index": b.unknown_index, "target_index": b.target_index,
            "base": _answer_fields(b), "candidate": _answer_fields(c),
        }
        lines.append(json.dumps(record) + "\n")
    runs = json.dumps({"base": _run_header(base), "candidate": _run_header(candidate)}, indent=2) + "\n"
    path = directory / RECORDS_FILE
    try:  # each file whole or not at all: an interrupted run leaves no half-written records
        directory.mkdir(parents=True, exist_ok=True)
        write_text(path, "".join(lines))
        write_text(directory / RUNS_FILE, runs)
    except OSError as exc:
        raise InputError(f"cannot write BBQ records to {directory}: {exc.strerror or exc}") from None
    return path


def read_records(path: str | Path) -> tuple[tuple[ItemAnswer, ...], tuple[ItemAnswer, ...]]:
    """Base and candidate answers back from a records file (to recompute the figures)."""
    base, candidate = [], []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        try:
            record = json.loads(line)
            shared = {key: record[key] for key in ("item_id", "category", "condition", "polarity", "label",
                                                   "unknown_index", "target_index")}
            for side, out in (("base", base), ("candidate", candidate)):
                out.append(_answer_from_fields(shared, record[side]))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{path}:{number}: not a BBQ record ({type(exc).__name__}: {exc})") from None
    return tuple(base), tuple(candidate)


def _answer_from_fields(shared: dict, fields: dict) -> ItemAnswer:
    probabilities = fields.get("option_probabilities")
    return ItemAnswer(
        **shared,
        choices=tuple(fields["choices"]), draws=tuple(fields.get("draws", ())),
        option_probabilities=None if probabilities is None else tuple(probabilities),
        letter_mass=fields.get("letter_mass"), texts=tuple(fields.get("texts", ())),
        order_choices=tuple(fields.get("order_choices", ())),
    )
