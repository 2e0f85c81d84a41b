"""A sweep of the four demo variants against `demo` vs the sum of their single runs (goal: at most 1.3).

Runs `gate` as a user would, in fresh processes with an empty cache directory:
first the sweep, `gate check random10 magnitude50 wanda50 nm24 --base dense`,
which measures the base once (the first candidate's report says the base was
measured, the others' that it came from the cache); then each candidate alone
against the base the sweep cached: the candidate's own time. The sweep's total
over the sum of the candidates' own times is the figure; what it costs beyond
1.0 is the base, measured once. Latency is timed side by side in every run, as
gate always does. The BBQ asking stops at a fixed number of items, so every
run asks the same items however busy the machine is.

    python -m benchmarks --only sweep       # about 15 to 30 minutes on a 2-core CPU
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 1.3
VARIANTS = ("random10", "magnitude50", "wanda50", "nm24")
ARGS = ("--bias-budget", "480", "--quiet")


def _gate(cache_dir: str, args: tuple[str, ...], *more: str) -> float:
    env = {**os.environ, "GATE_CACHE_DIR": cache_dir}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gate", "check", *more, *args], env=env, capture_output=True,
                          text=True)
    if done.returncode not in (0, 1, 3):
        raise RuntimeError(f"gate check failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return time.perf_counter() - start


def measure(base: Path, candidates: dict[str, Path], args: tuple[str, ...] = ARGS) -> dict:
    """The sweep of `candidates` (label -> directory) against `base`, then each candidate alone, base cached."""
    with tempfile.TemporaryDirectory(prefix="gate-bench-sweep-") as work:
        cache, out = str(Path(work) / "cache"), Path(work) / "out"
        out.mkdir()
        sweep = _gate(cache, args, *map(str, candidates.values()), "--base", str(base),
                      "--json", str(out / "{name}.json"), "--summary", str(out / "summary.json"))
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        own = {label: _gate(cache, args, str(path), "--base", str(base)) for label, path in candidates.items()}
    rows = dict(zip(candidates, summary["rows"]))
    return {"sweep_s": sweep, "own_s": own, "sum_own_s": sum(own.values()), "ratio": sweep / sum(own.values()),
            "goal": GOAL, "base_cached_in_sweep": {label: row["base_cached"] for label, row in rows.items()},
            "verdicts": {label: row["verdict"] for label, row in rows.items()},
            "sweep_seconds_per_candidate": {label: row["seconds"] for label, row in rows.items()}, "args": list(args)}


def main(variants: tuple[str, ...] = VARIANTS) -> dict:
    from gate.demo.build import ensure_demo_checkpoint

    figures = measure(ensure_demo_checkpoint("dense"), {v: ensure_demo_checkpoint(v) for v in variants})
    print(f"sweep of {len(variants)} candidates {figures['sweep_s']:.1f} s; their own runs (base cached) "
          + ", ".join(f"{v} {s:.1f} s" for v, s in figures["own_s"].items())
          + f" = {figures['sum_own_s']:.1f} s -> sweep/sum = {figures['ratio']:.2f} (goal <= {GOAL})")
    print("base from the cache in the sweep: " + "; ".join(f"{v}: {', '.join(m) or 'no'}"
                                                           for v, m in figures["base_cached_in_sweep"].items()))
    return figures


if __name__ == "__main__":
    main()
