"""The order BBQ items are asked in: whole families, balanced over categories from the first one.

BBQ writes each context as a family of four rows with consecutive example
ids 4k .. 4k+3: the ambiguous and the disambiguated context (which extends
the ambiguous one), each with a negative and a non-negative question. A
family is asked as one unit, so its twelve prompts (with three option orders)
share their tokens in one token tree, and every family holds all four
condition x polarity cells of its category.

Families are shuffled within each category (seeded) and dealt round-robin
over the categories, so after any number of families every category has
been asked about equally often (until the smaller ones run out): the
unweighted mean over categories, which every overall figure is, is estimated
best by equal shares, and the per-category rules need each category's items
early. Stopping anywhere therefore leaves a balanced sample.

The figures the default policy decides on (SRS, s_AMB) are read on the
ambiguous contexts only; the disambiguated ones measure reading (accuracy,
s_DIS). When no deciding rule needs them, `thin_disambiguated` keeps a
family's disambiguated items in one round of the order in
`DISAMBIGUATED_EVERY`: each family then costs about half as many tokens (the
ambiguous context and its two questions, not the longer disambiguated
context and its two), so the deciding evidence comes about 1.6 times as fast,
and disambiguated accuracy is still measured, on a quarter of the families,
balanced over categories as before.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Sequence

from gate.measurements.bias.bbq import FAMILY_SIZE, BBQItem

ORDER_SEED = 0
DISAMBIGUATED_EVERY = 4  # rounds of the order per round that also asks the disambiguated items
# Figures read on ambiguous contexts only: a run deciding nothing else may thin the disambiguated items.
AMBIGUOUS_FIGURES = frozenset({
    "bias.srs", "bias.srs.change", "bias.srs.relative_change", "bias.usr.change", "bias.accuracy_amb.change",
    "bias.s_amb.change", "bias.soft_srs.change", "bias.emergence_rate",
})


def family_key(item: BBQItem) -> tuple[str, int]:
    return item.category, item.example_id // FAMILY_SIZE


def families(items: Sequence[BBQItem]) -> list[tuple[BBQItem, ...]]:
    """Items grouped into their families, in order of first appearance."""
    grouped: dict[tuple[str, int], list[BBQItem]] = defaultdict(list)
    for item in items:
        grouped[family_key(item)].append(item)
    return [tuple(members) for members in grouped.values()]


def asking_order(items: Sequence[BBQItem], seed: int = ORDER_SEED) -> tuple[tuple[BBQItem, ...], ...]:
    """The items' families, shuffled within each category and dealt round-robin over the categories."""
    by_category: dict[str, list[tuple[BBQItem, ...]]] = defaultdict(list)
    for family in families(items):
        by_category[family[0].category].append(family)
    rng = random.Random(seed)
    queues = []
    for category in sorted(by_category):
        members = by_category[category]
        rng.shuffle(members)
        queues.append(members)
    dealt: list[tuple[BBQItem, ...]] = []
    for rank in range(max((len(q) for q in queues), default=0)):
        dealt += [queue[rank] for queue in queues if rank < len(queue)]
    return tuple(dealt)


def thin_disambiguated(order: Sequence[tuple[BBQItem, ...]], every: int) -> tuple[tuple[BBQItem, ...], ...]:
    """Every family's ambiguous items; its disambiguated ones only when its place in its category's queue
    (its round of the order) is a multiple of `every` (1: every family whole)."""
    if every <= 1:
        return tuple(order)
    rounds: dict[str, int] = defaultdict(int)
    thinned = []
    for family in order:
        category = family[0].category
        kept = family if rounds[category] % every == 0 else tuple(item for item in family if item.ambiguous)
        rounds[category] += 1
        if kept:
            thinned.append(kept)
    return tuple(thinned)


def first_items(order: Sequence[tuple[BBQItem, ...]], limit: int | None) -> tuple[tuple[BBQItem, ...], ...]:
    """The families holding the first `limit` items of the order (the last one cut short if need be)."""
    if limit is None:
        return tuple(order)
    kept, count = [], 0
    for family in order:
        if count >= limit:
            break
        kept.append(family[:limit - count])
        count += len(kept[-1])
    return tuple(kept)
