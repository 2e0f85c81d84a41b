"""Prompts, letter tokens, the parser and answering BBQ with a tiny real model."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from contextlib import contextmanager

import numpy as np
import pytest

from fixtures.tiny_model import write_tiny_model
from gate.runtime.torch_backend import load_torch_model
from gate.measurements.bias.bbq import BBQItem, load_bbq_source, sample_items
from gate.measurements.bias.ask import (
    RECORDS_FILE,
    RUNS_FILE,
    answer_items,
    compare_bias,
    findings,
    read_records,
    write_records,
)
from gate.measurements.bias.scores import compare, metrics
from gate.measurements.bias.prompts import (
    CHAT,
    CHAT_NO_SYSTEM,
    CYCLIC_ORDERS,
    PLAIN,
    SYSTEM_PROMPT,
    letter_tokens,
    option_orders,
    parse_answer,
    prompt_format,
    render_prompt,
    to_original,
    user_message,
)
from gate.core.errors import InputError, MeasurementError


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("tiny")
    return {
        "base": tiny_model_dir,  # seed 0, shared (tests/conftest.py)
        "candidate": write_tiny_model(root / "candidate", seed=1),
        "plain": write_tiny_model(root / "plain", seed=0, chat_template=False),
    }


@pytest.fixture(scope="module")
def base(models):
    handle = load_torch_model(models["base"], device="cpu", dtype="float32")
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def items():
    return sample_items(load_bbq_source(None).items, limit=12, seed=5)


@pytest.fixture(scope="module")
def base_run(base, items):
    return answer_items(base, items)


@pytest.fixture(scope="module")
def candidate_run(models, items):
    handle = load_torch_model(models["candidate"], device="cpu", dtype="float32")
    try:
        return answer_items(handle, items)
    finally:
        handle.close()


# --- prompts -------------------------------------------------------------

def test_user_message_is_the_papers_layout(items):
    item = items[0]
    text = user_message(item, (2, 0, 1))
    assert text == (f"Context: {item.context}\nQuestion: {item.question}\n"
                    f"A) {item.answers[2]}\nB) {item.answers[0]}\nC) {item.answers[1]}\nAnswer:")


def test_cyclic_orders_show_every_answer_once_at_every_letter():
    assert option_orders(False) == ((0, 1, 2),)
    assert option_orders(True) == CYCLIC_ORDERS
    for position in range(3):
        assert sorted(order[position] for order in CYCLIC_ORDERS) == [0, 1, 2]
    assert to_original((1, 2, 0), 0) == 1


def test_chat_prompt_uses_the_template_with_a_system_message(base, items):
    assert prompt_format(base.tokenizer) == CHAT
    text = base.tokenizer.decode(render_prompt(base.tokenizer, items[0], (0, 1, 2), CHAT))
    assert text.startswith(f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nContext: ")
    assert text.endswith("Answer:<|im_end|>\n<|im_start|>assistant\n")


def test_a_tokenizer_without_chat_template_gets_the_plain_prompt(models, items):
    handle = load_torch_model(models["plain"], device="cpu", dtype="float32")
    try:
        assert prompt_format(handle.tokenizer) == PLAIN
        text = handle.tokenizer.decode(render_prompt(handle.tokenizer, items[0], (0, 1, 2), PLAIN))
        assert text.endswith(f"{SYSTEM_PROMPT}\n\n{user_message(items[0])}")
        run = answer_items(handle, items[:3])
        assert run.prompt_format == PLAIN
    finally:
        handle.close()


def test_a_template_refusing_system_messages_gets_the_instruction_in_the_user_turn(models, items):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(models["base"])
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}<turn>{{ m['role'] }}\n{{ m['content'] }}\n{% endfor %}<turn>assistant\n")
    assert prompt_format(tokenizer) == CHAT_NO_SYSTEM
    text = tokenizer.decode(render_prompt(tokenizer, items[0], (0, 1, 2), CHAT_NO_SYSTEM))
    assert text == f"<turn>user\n{SYSTEM_PROMPT}\n\n{user_message(items[0])}\n<turn>assistant"


def test_letter_tokens_spell_the_letters_with_and_without_a_space(base):
    letters = letter_tokens(base.tokenizer)
    for letter, ids in zip("ABC", letters.ids):
        assert ids and all(base.tokenizer.decode([i]).strip() == letter for i in ids)
    spelled = {base.tokenizer.decode([i]) for i in letters.flat}
    assert {"A", " A"} <= spelled  # the tiny BPE has both spellings
    assert len(set(letters.flat)) == len(letters.flat) == len(letters.owners)


def test_a_tokenizer_without_letter_tokens_is_refused():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "yes": 1, "no": 2}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]")
    with pytest.raises(MeasurementError, match="no single token for the letter A"):
        letter_tokens(tokenizer)


@pytest.mark.parametrize("reply, position", [
    ("A", 0), (" b", 1), ("C.", 2), ("(B)", 1), ("B) The grandson", 1), ("C: nobody", 2),
    ("The answer is C", 2), ("Answer: B", 1), ("I think the answer is (a).", 0),
    ("Can't say", 2),  # the paper's last rule: the first a/b/c character
    ("", None), ("123 ...", None), ("Hmm?", None),
])
def test_answer_parser(reply, position):
    assert parse_answer(reply) == position


# --- letters mode --------------------------------------------------------

def test_letters_mode_answers_every_item_in_order(base_run, items):
    assert [a.item_id for a in base_run.answers] == [item.item_id for item in items]
    assert base_run.mode == "letters" and base_run.prompt_format == CHAT and base_run.items_per_second > 0
    for answer in base_run.answers:
        assert len(answer.choices) == 1
        assert sum(answer.option_probabilities) == pytest.approx(1.0)
        assert answer.choices[0] == int(np.argmax(answer.option_probabilities))
        assert 0 < answer.letter_mass <= 1


def test_letter_probabilities_agree_with_the_models_own_logits(models, base_run, items):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(models["base"], dtype=torch.float32)
    tokenizer = load_torch_model(models["base"], device="cpu").tokenizer
    letters = letter_tokens(tokenizer)
    for item, answer in zip(items[:3], base_run.answers[:3]):
        ids = torch.tensor([render_prompt(tokenizer, item, (0, 1, 2), CHAT)])
        with torch.no_grad():
            probabilities = torch.softmax(model(ids).logits[0, -1].double(), dim=-1)
        per_letter = np.array([sum(float(probabilities[i]) for i in spellings) for spellings in letters.ids])
        assert answer.letter_mass == pytest.approx(per_letter.sum(), rel=1e-4)
        assert answer.option_probabilities == pytest.approx(tuple(per_letter / per_letter.sum()), rel=1e-4)


def test_letters_mode_does_not_depend_on_the_batch_size(base, base_run, items):
    single = answer_items(base, items, batch_size=1)
    assert [a.choices for a in single.answers] == [a.choices for a in base_run.answers]
    for one, many in zip(single.answers, base_run.answers):
        assert one.option_probabilities == pytest.approx(many.option_probabilities, abs=1e-5)


def _rotated(item: BBQItem) -> BBQItem:
    """The same item with its answers stored one place further on: answer k moves to (k + 1) % 3."""
    answers = (item.answers[2], item.answers[0], item.answers[1])
    move = lambda k: (k + 1) % 3  # noqa: E731
    return dataclasses.replace(item, answers=answers, label=move(item.label),
                               unknown_index=move(item.unknown_index), target_index=move(item.target_index))


def test_permuted_answers_do_not_depend_on_how_the_options_are_stored(base, items):
    # The three cyclic orders of a rotated item are the same three prompts, so
    # once mapped back to the original answers the averaged probabilities agree.
    chosen = items[:4]
    run = answer_items(base, chosen, permute=True)
    rotated = answer_items(base, [_rotated(item) for item in chosen], permute=True)
    for answer, turned in zip(run.answers, rotated.answers):
        assert len(answer.order_choices) == 3
        p = turned.option_probabilities
        assert answer.option_probabilities == pytest.approx((p[1], p[2], p[0]), abs=1e-6)
        assert answer.target_index == (turned.target_index - 1) % 3


def test_permuted_orders_sharing_their_prefix_match_asking_each_prompt_whole(models, items):
    # The torch backend computes the part the three orders share (everything up to the first
    # option) once; a handle without that ability asks each whole prompt. Same answers.
    handle = load_torch_model(models["base"], device="cpu", dtype="float32")
    try:
        shared = answer_items(handle, items, permute=True, batch_size=6)
        handle.shared_prefix_logprobs = None  # what a backend without prefix sharing offers
        whole = answer_items(handle, items, permute=True, batch_size=6)
    finally:
        handle.close()
    for one, other in zip(shared.answers, whole.answers):
        assert one.option_probabilities == pytest.approx(other.option_probabilities, abs=1e-5)
        assert one.letter_mass == pytest.approx(other.letter_mass, rel=1e-5)
        assert one.order_choices == other.order_choices


def test_a_model_that_returns_nan_fails_the_measurement(tmp_path, tiny_model_dir, items):
    from safetensors.torch import load_file, save_file

    path = shutil.copytree(tiny_model_dir, tmp_path / "nan")
    weights = load_file(path / "model.safetensors")
    weights["model.norm.weight"][:] = float("nan")
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    handle = load_torch_model(path, device="cpu", dtype="float32")
    try:
        with pytest.raises(MeasurementError, match="NaN"):
            answer_items(handle, items[:2])
    finally:
        handle.close()


class _RecordingReporter:
    def __init__(self):
        self.tasks = []

    @contextmanager
    def task(self, description, total=None):
        record = {"description": description, "total": total, "done": 0}
        self.tasks.append(record)

        class Task:
            def advance(self, amount=1):
                record["done"] += amount

        yield Task()


def test_progress_is_reported_per_prompt(base, items):
    reporter = _RecordingReporter()
    answer_items(base, items[:5], permute=True, batch_size=4, reporter=reporter)
    assert [(t["total"], t["done"]) for t in reporter.tasks] == [(15, 15)]


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "vibes"}, "unknown BBQ mode"),
    ({"batch_size": 0}, "batch size"),
    ({"mode": "generate", "seeds": ()}, "at least one seed"),
])
def test_bad_requests_are_input_errors(base, items, kwargs, message):
    with pytest.raises(InputError, match=message):
        answer_items(base, items[:1], **kwargs)


# --- generate mode -------------------------------------------------------

def test_generate_mode_keeps_every_seed_and_order_and_maps_answers_back(base, items):
    chosen = items[:1]
    run = answer_items(base, chosen, mode="generate", permute=True, seeds=(1, 2))
    assert run.seeds == (1, 2) and run.temperature == 0.3 and run.max_new_tokens == 5
    for answer in run.answers:
        assert len(answer.choices) == len(answer.texts) == len(answer.draws) == 6
        assert answer.draws[0] == "seed=1 order=ABC" and answer.draws[-1] == "seed=2 order=CAB"
        for choice, text, draw in zip(answer.choices, answer.texts, answer.draws):
            order = tuple("ABC".index(letter) for letter in draw.split("order=")[1])
            position = parse_answer(text)
            assert choice == (None if position is None else order[position])
    again = answer_items(base, chosen, mode="generate", permute=False, seeds=(2,))
    assert again.answers[0].texts == run.answers[0].texts[1:2]  # same seed, same order, same reply
    assert run.scores().overall.parse_failure.n == 6


# --- comparison and records ----------------------------------------------

def test_a_model_compared_with_itself_shows_no_change(base_run):
    comparison = compare_bias(base_run, base_run, n_resamples=200)
    assert comparison.overall.srs.value == 0
    assert comparison.overall.discordant == (0, 0) and comparison.overall.mcnemar_p == 1.0
    assert comparison.overall.emergence.value in (0.0, None)


def test_runs_on_different_items_or_modes_cannot_be_compared(base, base_run, items):
    other = answer_items(base, items[:5])
    with pytest.raises(MeasurementError, match="different BBQ items"):
        compare_bias(base_run, other)
    generated = answer_items(base, items[:5], mode="generate", seeds=(7,), max_new_tokens=1)
    with pytest.raises(MeasurementError, match="asked BBQ differently"):
        compare_bias(other, generated)


def test_records_recompute_every_figure(tmp_path, base_run, candidate_run):
    path = write_records(tmp_path / "records", base_run, candidate_run)
    lines = path.read_text().splitlines()
    assert path.name == RECORDS_FILE and len(lines) == len(base_run.answers)
    first = json.loads(lines[0])
    assert {"item_id", "category", "condition", "polarity", "target_index", "base", "candidate"} <= set(first)
    assert set(first["base"]) >= {"choices", "option_probabilities", "letter_mass"}
    runs = json.loads((tmp_path / "records" / RUNS_FILE).read_text())
    assert runs["base"]["prompt_format"] == CHAT and runs["candidate"]["mode"] == "letters"
    base_answers, candidate_answers = read_records(path)
    direct = metrics(compare_bias(base_run, candidate_run, n_resamples=300))
    recomputed = metrics(compare(base_answers, candidate_answers, n_resamples=300))
    assert recomputed == direct


def test_unwritable_records_directory_is_an_input_error(tmp_path, base_run):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(InputError, match="cannot write BBQ records"):
        write_records(blocker / "records", base_run, base_run)


def test_findings_flag_low_letter_mass_and_prompt_format_mismatch(base_run, candidate_run):
    # A random tiny model barely puts any probability on the letters.
    codes = {(f.code, f.subject) for f in findings(base_run, candidate_run)}
    assert ("bbq-low-letter-mass", "base") in codes and ("bbq-low-letter-mass", "candidate") in codes
    plain = dataclasses.replace(candidate_run, prompt_format=PLAIN)
    assert "bbq-prompt-format-differs" in {f.code for f in findings(base_run, plain)}


def test_comparison_metrics_are_finite_or_undefined(base_run, candidate_run):
    for metric in metrics(compare_bias(base_run, candidate_run, n_resamples=200)):
        assert metric.value is None or math.isfinite(metric.value)


# --- the real demo model -------------------------------------------------

@pytest.mark.e2e
def test_smollm2_answers_bbq_in_letters(items):
    from gate.demo.build import ensure_demo_checkpoint

    handle = load_torch_model(ensure_demo_checkpoint("dense"), device="cpu")
    try:
        letters = answer_items(handle, items[:6])
        generated = answer_items(handle, items[:2], mode="generate", seeds=(42,))
    finally:
        handle.close()
    assert letters.prompt_format == CHAT
    # An instruct model follows the format: most next-token probability lands on A/B/C
    # (SmolLM2-135M: about 0.8 on the bundled sample).
    assert np.mean([a.letter_mass for a in letters.answers]) > 0.5
    assert generated.scores().overall.parse_failure.value < 1.0


# --- token trees: shared prefixes across a family ------------------------------

def test_a_token_tree_merges_shared_prefixes_and_keeps_every_prompt():
    from gate.runtime.token_tree import build_tree

    tree = build_tree([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 6], [7]])
    assert tree.size == 7 and list(tree.depths[tree.leaves]) == [3, 3, 2, 0]
    mask = tree.attention_mask()
    for leaf, prompt in zip(tree.leaves, ([1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 6], [7])):
        assert list(tree.tokens[mask[leaf]]) == prompt  # a prompt's last node sees exactly its own tokens


def test_a_family_scored_as_one_tree_matches_scoring_each_prompt_alone(base):
    from gate.measurements.bias.order import asking_order

    family = asking_order(load_bbq_source(None).items[:400])[0]
    fmt, letters = prompt_format(base.tokenizer), letter_tokens(base.tokenizer)
    prompts = [render_prompt(base.tokenizer, item, order, fmt) for item in family for order in option_orders(True)]
    alone = base.last_token_logprobs(prompts, letters.flat)
    shared = base.tree_logprobs(prompts, letters.flat)
    assert np.abs(alone - shared).max() < 1e-4  # fp32
    assert sum(map(len, prompts)) > 2 * build_tree_size(prompts)


def test_the_opening_every_prompt_shares_is_computed_once_and_changes_nothing(base):
    from gate.measurements.bias.order import asking_order
    from gate.measurements.bias.prompts import prompt_opening

    fmt, letters = prompt_format(base.tokenizer), letter_tokens(base.tokenizer)
    opening = prompt_opening(base.tokenizer, fmt)
    assert 0 < len(opening)
    for family in asking_order(load_bbq_source(None).items[:400])[:3]:
        prompts = [render_prompt(base.tokenizer, item, order, fmt) for item in family for order in option_orders(True)]
        assert all(p[:len(opening)] == opening for p in prompts)
        whole = base.tree_logprobs(prompts, letters.flat)
        assert np.abs(base.tree_logprobs(prompts, letters.flat, head=len(opening)) - whole).max() < 1e-4  # fp32
    with pytest.raises(ValueError, match="open with the same"):
        base.tree_logprobs([[1, 2, 3], [4, 5, 6]], letters.flat, head=2)


def build_tree_size(prompts) -> int:
    from gate.runtime.token_tree import build_tree

    return build_tree(prompts).size


def test_an_items_answer_does_not_depend_on_what_else_is_asked(base):
    from gate.measurements.bias.order import asking_order

    order = asking_order(load_bbq_source(None).items[:400])
    everything = [item for family in order[:6] for item in family]
    together = {a.item_id: a for a in answer_items(base, everything, permute=True).answers}
    for family in (order[0], order[4]):
        for answer in answer_items(base, family, permute=True).answers:
            assert answer.option_probabilities == together[answer.item_id].option_probabilities  # bit for bit
