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


def _gate(cache_dir: str, *args: str) -> float:
    env = {**os.environ, "GATE_CACHE_DIR": cache_dir}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gate", "check", *args, *ARGS], env=env, capture_output=True,
                          text=True)
    if done.returncode not in (0, 1, 3):
        raise RuntimeError(f"gate check failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return time.perf_counter() - start


def main(variants: tuple[str, ...] = VARIANTS) -> dict:
    from gate.demo.build import ensure_demo_checkpoint

    base = str(ensure_demo_checkpoint("dense"))
    candidates = [str(ensure_demo_checkpoint(v)) for v in variants]
    with tempfile.TemporaryDirectory(prefix="gate-bench-sweep-") as work:
        cache, out = str(Path(work) / "cache"), Path(work) / "out"
        out.mkdir()
        sweep = _gate(cache, *candidates, "--base", base, "--json", str(out / "{name}.json"),
                      "--summary", str(out / "summary.json"))
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        own = {variant: _gate(cache, candidate, "--base", base) for variant, candidate in zip(variants, candidates)}
    ratio = sweep / sum(own.values())
    cached = {row["candidate"]: row["base_cached"] for row in summary["rows"]}
    print(f"sweep of {len(variants)} candidates {sweep:.1f} s; their own runs (base cached) "
          + ", ".join(f"{v} {s:.1f} s" for v, s in own.items())
          + f" = {sum(own.values()):.1f} s -> sweep/sum = {ratio:.2f} (goal <= {GOAL})")
    print("base from the cache in the sweep: " + "; ".join(f"{Path(c).name}: {', '.join(m) or 'no'}"
                                                           for c, m in cached.items()))
    return {"sweep_s": sweep, "own_s": own, "sum_own_s": sum(own.values()), "ratio": ratio, "goal": GOAL,
            "base_cached_in_sweep": cached, "verdicts": {row["candidate"]: row["verdict"] for row in summary["rows"]},
            "sweep_seconds_per_candidate": {row["candidate"]: row["seconds"] for row in summary["rows"]},
            "args": list(ARGS)}


if __name__ == "__main__":
    main()
