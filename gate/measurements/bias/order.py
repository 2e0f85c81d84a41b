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
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Sequence

from gate.measurements.bias.bbq import BBQItem

ORDER_SEED = 0
FAMILY_SIZE = 4


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
