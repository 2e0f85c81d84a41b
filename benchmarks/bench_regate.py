"""Re-gating a candidate against a cached base vs a cold run (goal: at most 0.6).

Runs `gate check` as a user would, in fresh processes with an empty cache
directory: once with --no-cache (cold), once to fill the cache, then timed
again with the base's perplexity and bias runs cached. Latency is never
cached, so it is left out here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 0.6
ARGS = ("--metrics", "perplexity,bias", "--ppl-tokens", "4096", "--bbq-limit", "120", "--backend", "torch", "--quiet")


def _gate(candidate: Path, base: Path, cache_dir: str, *extra: str) -> float:
    env = {**os.environ, "GATE_CACHE_DIR": cache_dir}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gate", "check", str(candidate), "--base", str(base), *ARGS, *extra],
                          env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1, 3):
        raise RuntimeError(f"gate check failed ({done.returncode}): {done.stderr.strip()}")
    return time.perf_counter() - start


def main(variant: str = "wanda50") -> dict:
    from gate.demo.build import ensure_demo_checkpoint

    base, candidate = ensure_demo_checkpoint("dense"), ensure_demo_checkpoint(variant)
    with tempfile.TemporaryDirectory(prefix="gate-bench-cache-") as cache_dir:
        cold = _gate(candidate, base, cache_dir, "--no-cache")
        _gate(candidate, base, cache_dir)  # fills the cache
        warm = _gate(candidate, base, cache_dir)
    ratio = warm / cold
    print(f"re-gate: cold {cold:.1f} s, base cached {warm:.1f} s -> cached/cold = {ratio:.2f} (goal <= {GOAL})")
    return {"cold_s": cold, "cached_s": warm, "ratio": ratio}


if __name__ == "__main__":
    main()
