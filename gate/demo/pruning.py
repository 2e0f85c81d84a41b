"""Pruning masks over weight tensors, and the recipes the demo variants use.

Every mask function returns a boolean tensor shaped like the weight, True
where the weight is to be zeroed (the convention of Wanda's code,
`W[W_mask] = 0`). Weights are 2-D `[out_features, in_features]`, as in
`torch.nn.Linear`. Masks prune an exact count, the nearest whole number to
`sparsity * n`, so a 50% mask over a row of 64 zeroes exactly 32; ties are
broken by position (as a stable sort would), so masks are deterministic.

Comparison group. Magnitude and Wanda both rank weights within each output
row, as Sun et al. (2023) found best for LLMs and as their code does; it also
guarantees every row is exactly at the target, which a gate can check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gate.measurements.scan import FUSED_KINDS, PRUNABLE_KINDS

# The prunable kinds the demo model has: the gate's prunable scope (measurements/scan.py, measurements.md §1)
# less the fused projections, which a Llama layout (SmolLM2) does not have. Derived, not restated, so the
# recipes and the sparsity measurement cannot disagree on what "every prunable weight" means.
DEMO_KINDS = tuple(kind for kind in PRUNABLE_KINDS if kind not in FUSED_KINDS)

# The Rath & Maliakkal Wanda code hooked only the inputs of q/k/v and gate/up,
# so o_proj and down_proj stayed dense: a declared 50% is ~33% actual.
WANDA_PAPER_KINDS = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")


def prune_count(n: int, sparsity: float) -> int:
    """How many of `n` weights a mask at `sparsity` zeroes: the nearest whole number."""
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be between 0 and 1, got {sparsity}")
    # Rounding (not truncation) so 0.29 * 100 gives 29, not 28.
    return int(n * sparsity + 0.5)


def random_mask(shape: tuple[int, ...] | torch.Size, sparsity: float, generator: torch.Generator) -> torch.Tensor:
    """Exactly `prune_count(numel, sparsity)` positions drawn uniformly without replacement."""
    numel = 1
    for size in shape:
        numel *= size
    count = prune_count(numel, sparsity)
    chosen = torch.randperm(numel, generator=generator)[:count]
    mask = torch.zeros(numel, dtype=torch.bool)
    mask[chosen] = True
    return mask.reshape(tuple(shape))


def _ranking_keys(score: torch.Tensor) -> np.ndarray:
    """Unique int64 keys that order a row like a stable sort of the non-negative `score`.

    For non-negative IEEE floats the bit pattern orders like the value, so
    (bits << 32 | column) ranks by score and breaks ties by position. Unique
    keys let a partial selection (a partition, much faster than a sort) pick
    exactly the weights a stable sort would.
    """
    score = score.detach().float().cpu().contiguous()
    bits = score.view(torch.int32).to(torch.int64)
    columns = torch.arange(score.shape[-1], dtype=torch.int64)
    return ((bits << 32) | columns).numpy()


def _prune_smallest(keys: np.ndarray, count: int, axis: int) -> torch.Tensor:
    if count == 0:
        return torch.zeros(keys.shape, dtype=torch.bool)
    # Keys are unique, so "at most the count-th smallest" selects exactly `count`.
    kth = np.take(np.partition(keys, count - 1, axis=axis), [count - 1], axis=axis)
    return torch.from_numpy(keys <= kth)


def _smallest_per_row(score: torch.Tensor, sparsity: float) -> torch.Tensor:
    if score.dim() != 2:
        raise ValueError(f"expected a 2-D weight [out_features, in_features], got shape {tuple(score.shape)}")
    count = prune_count(score.shape[1], sparsity)
    return _prune_smallest(_ranking_keys(score), count, axis=1).to(score.device)


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """In every output row, the `sparsity` fraction of weights with the smallest |w|."""
    return _smallest_per_row(weight.detach().abs().float(), sparsity)


def wanda_score(weight: torch.Tensor, activation_norm: torch.Tensor) -> torch.Tensor:
    """|W_ij| * ||X_j||_2: Wanda's importance (Sun et al. 2023), X_j the j-th input feature over calibration tokens."""
    if weight.dim() != 2 or activation_norm.shape != (weight.shape[1],):
        raise ValueError(
            f"activation_norm must have one entry per input feature ({weight.shape[-1]}), got shape {tuple(activation_norm.shape)}"
        )
    return weight.detach().abs().float() * activation_norm.detach().float().to(weight.device).unsqueeze(0)


def wanda_mask(weight: torch.Tensor, activation_norm: torch.Tensor, sparsity: float) -> torch.Tensor:
    """In every output row, the `sparsity` fraction of weights with the smallest Wanda score."""
    return _smallest_per_row(wanda_score(weight, activation_norm), sparsity)


def nm_mask(weight_or_score: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """N:M: in every group of `m` consecutive inputs of a row, zero all but the `n` largest by magnitude."""
    if not 0 <= n <= m:
        raise ValueError(f"N:M needs 0 <= n <= m, got {n}:{m}")
    if weight_or_score.dim() != 2 or weight_or_score.shape[1] % m != 0:
        raise ValueError(f"N:M with m={m} needs a 2-D weight whose input dimension divides by {m}, got shape {tuple(weight_or_score.shape)}")
    rows, cols = weight_or_score.shape
    groups = _ranking_keys(weight_or_score.detach().abs()).reshape(rows, cols // m, m)
    return _prune_smallest(groups, m - n, axis=2).reshape(rows, cols).to(weight_or_score.device)


def apply_mask(weight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A copy of `weight` with the masked positions set to an exact zero."""
    return weight.masked_fill(mask, 0)


def follows_nm(weight: torch.Tensor, n: int = 2, m: int = 4) -> bool:
    """Whether every group of `m` consecutive inputs of every row has at most `n` non-zeros."""
    rows, cols = weight.shape
    if cols % m != 0:
        return False
    nonzeros = (weight != 0).reshape(rows, cols // m, m).sum(dim=2)
    return bool((nonzeros <= n).all())


@dataclass(frozen=True)
class PruningRecipe:
    """How one pruned variant is made: method, target, and the module kinds it touches."""

    method: str  # "random", "magnitude", "wanda" or "nm"
    sparsity: float  # declared fraction of the pruned kinds' weights set to zero
    kinds: tuple[str, ...]  # module kinds pruned; the other prunable kinds stay dense
    seed: int | None = None  # for "random"
    n: int | None = None  # for "nm": keep n of every m
    m: int | None = None
    note: str = ""

    @property
    def dense_kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in DEMO_KINDS if kind not in self.kinds)

    def mask(self, weight: torch.Tensor, generator: torch.Generator | None = None, activation_norm: torch.Tensor | None = None) -> torch.Tensor:
        """The prune mask this recipe gives `weight` (random needs `generator`, Wanda `activation_norm`)."""
        if self.method == "random":
            if generator is None:
                raise ValueError("random pruning needs a seeded generator")
            return random_mask(weight.shape, self.sparsity, generator)
        if self.method == "magnitude":
            return magnitude_mask(weight, self.sparsity)
        if self.method == "wanda":
            if activation_norm is None:
                raise ValueError("Wanda pruning needs the input activation norms")
            return wanda_mask(weight, activation_norm, self.sparsity)
        if self.method == "nm":
            if self.n is None or self.m is None:
                raise ValueError("N:M pruning needs n and m")
            return nm_mask(weight, self.n, self.m)
        raise ValueError(f"unknown pruning method {self.method!r}")


RANDOM_10 = PruningRecipe(
    method="random",
    sparsity=0.10,
    kinds=DEMO_KINDS,
    seed=0,
    note="Rath & Maliakkal's seed configuration: 10% of every prunable weight tensor zeroed at random, seed 0.",
)
MAGNITUDE_50 = PruningRecipe(
    method="magnitude",
    sparsity=0.50,
    kinds=DEMO_KINDS,
    note="Half of every output row of every prunable tensor, smallest |w| first.",
)
WANDA_50_PAPER = PruningRecipe(
    method="wanda",
    sparsity=0.50,
    kinds=WANDA_PAPER_KINDS,
    note=(
        "Wanda at 50% as the paper's code ran it: only q/k/v and gate/up pruned, o_proj and down_proj left dense, "
        "so the actual sparsity over all prunable weights is about 33%, below the declared 50%."
    ),
)
NM_2_4 = PruningRecipe(
    method="nm",
    sparsity=0.50,
    kinds=DEMO_KINDS,
    n=2,
    m=4,
    note="2:4 by magnitude: in every 4 consecutive inputs of a row, the 2 smallest |w| zeroed.",
)
