"""`make bench`: every benchmark in one run; prints ratios and records them.

Absolute times vary from run to run on a shared machine; ratios measured side
by side hold. Each run's figures, with the machine, the versions and the
date, are written to benchmarks/results/.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("gate", "torch", "transformers", "mlx", "mlx-lm", "numpy", "safetensors"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    from benchmarks import bench_audit, bench_perplexity
    from gate.demo_model import ensure_demo_checkpoint

    figures: dict = {}
    print("== sparsity/size audit vs one read of the files")
    figures["audit"] = bench_audit.main()

    print("\n== perplexity: gate vs a plain forward-pass loop (demo model, torch)")
    result = bench_perplexity.bench(ensure_demo_checkpoint("dense"), windows=16)
    print(f"gate {result.gate_tokens_per_second:.1f} tokens/s, plain loop {result.plain_tokens_per_second:.1f} tokens/s "
          f"-> ratio {result.ratio:.3f} (goal >= {bench_perplexity.GOAL})")
    figures["perplexity"] = {"windows": result.windows, "gate_tokens_per_second": result.gate_tokens_per_second,
                             "plain_tokens_per_second": result.plain_tokens_per_second, "ratio": result.ratio}

    from benchmarks import bench_latency, bench_regate

    print("\n== re-gate against a cached base vs a cold run (demo model, perplexity and bias)")
    figures["regate"] = bench_regate.main()

    print("\n== latency: candidate/base ratios on the demo model (torch; MLX on the dense pair only, it is slow on a Linux CPU)")
    figures["latency"] = bench_latency.run(backends=("torch",), prompts=6, repeats=2)
    if platform.system() == "Darwin" or os.environ.get("GATE_BENCH_MLX"):
        figures["latency"] |= bench_latency.run(backends=("mlx",), variants=("dense", "wanda50"), prompts=6, repeats=2)

    record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": {
        "cpu": _cpu(), "cores": os.cpu_count(), "platform": platform.platform()}, "versions": _versions(),
        "figures": figures}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{record['date'][:10]}-{platform.node() or 'host'}.json"
    out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"\nrecorded in {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")


if __name__ == "__main__":
    sys.exit(main())
