"""Prompts that share prefixes, merged into one token tree (a trie), as RadixAttention does.

A BBQ family (one context asked with two questions, ambiguous and
disambiguated, each in three option orders) is twelve prompts that share most
of their tokens. Merging them into a trie computes every shared token once:
one forward pass over the trie's nodes, where each node attends to itself and
its ancestors only and sits at its depth as position. Each prompt's
next-token distribution is read at its last node. Tokens are merged as the
tokenizer produced them for each whole prompt, so the result is the same
computation as scoring the prompts one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class TokenTree:
    tokens: np.ndarray  # int64 [nodes]: each node's token
    parents: np.ndarray  # int64 [nodes]: the parent node, -1 for a root
    depths: np.ndarray  # int64 [nodes]: position of the node's token in its prompts
    leaves: np.ndarray  # int64 [prompts]: the node of each prompt's last token

    @property
    def size(self) -> int:
        return len(self.tokens)

    def attention_mask(self) -> np.ndarray:
        """bool [nodes, nodes]: node i may attend to node j when j is i or an ancestor of i."""
        mask = np.zeros((self.size, self.size), dtype=bool)
        for node, parent in enumerate(self.parents):  # parents come before children
            if parent >= 0:
                mask[node] = mask[parent]
            mask[node, node] = True
        return mask


def build_tree(prompts: Sequence[Sequence[int]]) -> TokenTree:
    """The trie of `prompts` (each non-empty), nodes in insertion order."""
    child: dict[tuple[int, int], int] = {}
    tokens: list[int] = []
    parents: list[int] = []
    depths: list[int] = []
    leaves: list[int] = []
    for prompt in prompts:
        if len(prompt) == 0:
            raise ValueError("an empty prompt has no next-token distribution")
        node = -1
        for token in prompt:
            key = (node, int(token))
            found = child.get(key)
            if found is None:
                found = child[key] = len(tokens)
                tokens.append(int(token))
                parents.append(node)
                depths.append(0 if node < 0 else depths[node] + 1)
            node = found
        leaves.append(node)
    as_array = lambda values: np.asarray(values, dtype=np.int64)  # noqa: E731
    return TokenTree(as_array(tokens), as_array(parents), as_array(depths), as_array(leaves))
