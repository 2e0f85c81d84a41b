"""The sweep benchmark's procedure on tiny models: it runs the sweep and each candidate alone, and reads from the
summary that the base came from the cache for every candidate but the first."""

from __future__ import annotations

from benchmarks.bench_sweep import measure
from fixtures.tiny_model import write_tiny_model


def test_the_sweep_benchmark_times_the_sweep_and_each_candidate_alone(tmp_path):
    base = write_tiny_model(tmp_path / "base")
    candidates = {f"c{seed}": write_tiny_model(tmp_path / f"c{seed}", seed=seed) for seed in (1, 2)}
    text = tmp_path / "text.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 200)
    figures = measure(base, candidates, ("--metrics", "perplexity", "--backend", "torch", "--text", str(text),
                                         "--ctx", "32", "--ppl-tokens", "256", "--quiet"))
    assert set(figures["own_s"]) == {"c1", "c2"} and figures["sweep_s"] > 0 and figures["ratio"] > 0
    assert figures["base_cached_in_sweep"] == {"c1": [], "c2": ["perplexity"]}
    assert set(figures["verdicts"].values()) <= {"PASS", "FAIL", "INCONCLUSIVE"}
