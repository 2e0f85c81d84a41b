"""Pruning masks: exact counts, the right weights chosen, N:M conformance."""

from __future__ import annotations

import pytest
import torch

from gate.demo.pruning import (
    MAGNITUDE_50,
    NM_2_4,
    DEMO_KINDS,
    RANDOM_10,
    WANDA_50_PAPER,
    apply_mask,
    follows_nm,
    magnitude_mask,
    nm_mask,
    prune_count,
    random_mask,
    wanda_mask,
)


def _weight(rows: int, cols: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))


def test_prune_count_rounds_to_nearest():
    assert prune_count(64, 0.5) == 32
    assert prune_count(100, 0.29) == 29  # 0.29 * 100 is 28.999... in floating point
    assert prune_count(10, 0.0) == 0
    assert prune_count(10, 1.0) == 10
    with pytest.raises(ValueError):
        prune_count(10, 1.5)


def test_random_mask_zeroes_an_exact_fraction_and_is_seeded():
    mask = random_mask((32, 40), 0.10, torch.Generator().manual_seed(0))
    assert mask.shape == (32, 40)
    assert int(mask.sum()) == 128  # 10% of 1280
    again = random_mask((32, 40), 0.10, torch.Generator().manual_seed(0))
    other = random_mask((32, 40), 0.10, torch.Generator().manual_seed(1))
    assert torch.equal(mask, again)
    assert not torch.equal(mask, other)


def test_random_mask_spreads_over_the_whole_tensor():
    mask = random_mask((200, 200), 0.5, torch.Generator().manual_seed(0))
    # Uniform draws: every quarter of the tensor holds about half of its positions pruned.
    for quarter in mask.reshape(4, -1):
        assert 0.45 < quarter.float().mean().item() < 0.55


def test_magnitude_mask_prunes_exactly_half_of_each_row_smallest_first():
    weight = _weight(8, 64)
    mask = magnitude_mask(weight, 0.5)
    assert mask.sum(dim=1).tolist() == [32] * 8
    for row, row_mask in zip(weight.abs(), mask):
        # Every pruned weight is no larger than every kept one.
        assert row[row_mask].max() <= row[~row_mask].min()


def test_magnitude_mask_on_a_known_row():
    weight = torch.tensor([[0.5, -0.1, 3.0, -2.0, 0.0, 1.0]])
    mask = magnitude_mask(weight, 0.5)
    assert mask.tolist() == [[True, True, False, False, True, False]]
    assert apply_mask(weight, mask).tolist() == [[0.0, 0.0, 3.0, -2.0, 0.0, 1.0]]


def test_wanda_scales_by_activation_norm_where_magnitude_would_not():
    # Input feature 0 carries large activations, feature 1 tiny ones.
    weight = torch.tensor([[0.2, 1.0], [-0.3, -2.0]])
    activation_norm = torch.tensor([100.0, 0.01])
    assert magnitude_mask(weight, 0.5).tolist() == [[True, False], [True, False]]
    assert wanda_mask(weight, activation_norm, 0.5).tolist() == [[False, True], [False, True]]


def test_wanda_mask_counts_per_row_and_checks_shapes():
    weight = _weight(6, 64)
    norms = torch.rand(64, generator=torch.Generator().manual_seed(2)) + 0.1
    mask = wanda_mask(weight, norms, 0.5)
    assert mask.sum(dim=1).tolist() == [32] * 6
    # A uniform activation norm makes Wanda and magnitude agree.
    assert torch.equal(wanda_mask(weight, torch.full((64,), 3.0), 0.5), magnitude_mask(weight, 0.5))
    with pytest.raises(ValueError):
        wanda_mask(weight, torch.ones(6), 0.5)


def test_nm_mask_keeps_the_two_largest_of_every_four():
    weight = torch.tensor([[1.0, -4.0, 0.5, 3.0, 0.1, 0.2, -0.3, 0.05]])
    mask = nm_mask(weight, 2, 4)
    assert mask.tolist() == [[True, False, True, False, True, False, False, True]]


def test_nm_mask_every_group_conforms():
    weight = _weight(16, 64)
    pruned = apply_mask(weight, nm_mask(weight, 2, 4))
    groups = (pruned != 0).reshape(16, 16, 4).sum(dim=2)
    assert groups.eq(2).all()  # random normals have no ties at zero: exactly 2 survive
    assert follows_nm(pruned, 2, 4)
    assert not follows_nm(weight, 2, 4)


def test_nm_mask_rejects_an_input_dimension_not_divisible_by_m():
    with pytest.raises(ValueError):
        nm_mask(_weight(2, 6), 2, 4)


def test_recipes_scope():
    assert RANDOM_10.kinds == DEMO_KINDS and RANDOM_10.seed == 0
    assert MAGNITUDE_50.dense_kinds == ()
    assert WANDA_50_PAPER.dense_kinds == ("o_proj", "down_proj")
    assert NM_2_4.kinds == DEMO_KINDS


def test_recipe_mask_dispatches_and_needs_its_inputs():
    weight = _weight(4, 16)
    assert int(RANDOM_10.mask(weight, generator=torch.Generator().manual_seed(0)).sum()) == 6  # 6.4 rounds to 6
    assert torch.equal(MAGNITUDE_50.mask(weight), magnitude_mask(weight, 0.5))
    assert follows_nm(apply_mask(weight, NM_2_4.mask(weight)), 2, 4)
    with pytest.raises(ValueError):
        RANDOM_10.mask(weight)
    with pytest.raises(ValueError):
        WANDA_50_PAPER.mask(weight)


def _stable_sort_reference(score: torch.Tensor, count: int) -> torch.Tensor:
    order = torch.sort(score, dim=-1, stable=True).indices.narrow(-1, 0, count)
    return torch.zeros(score.shape, dtype=torch.bool).scatter_(-1, order, True)


def test_ties_are_broken_by_position_like_a_stable_sort():
    # Quantized weights repeat values: ties decide which weights go.
    weight = (_weight(32, 64) * 2).round() / 2
    assert torch.equal(magnitude_mask(weight, 0.5), _stable_sort_reference(weight.abs(), 32))
    groups = weight.abs().reshape(32, 16, 4)
    assert torch.equal(nm_mask(weight, 2, 4), _stable_sort_reference(groups, 2).reshape(32, 64))
    assert magnitude_mask(torch.zeros(3, 8), 0.25).tolist() == [[True, True] + [False] * 6] * 3


def test_demo_kinds_are_the_prunable_scope_less_the_fused_projections_in_the_old_order():
    """One definition of the prunable scope (measurements/scan.py); the demo's recipes, provenance and random
    stream (weights pruned in layer order, then kind order) are those built before it was shared."""
    from gate.measurements.scan import FUSED_KINDS, PRUNABLE_KINDS

    assert DEMO_KINDS == ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    assert set(DEMO_KINDS) | set(FUSED_KINDS) == set(PRUNABLE_KINDS)
