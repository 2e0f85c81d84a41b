"""`make bench`: every benchmark in one run; prints ratios and records them.

Absolute times vary from run to run on a shared machine; ratios measured side
by side hold. Each run's figures, with the machine, the versions and the
date, are written to benchmarks/results/.

    python -m benchmarks                     # all of them (`make bench`)
    python -m benchmarks --only peers        # some of them: audit, perplexity, regate, sweep, bias, workers, sequential,
                                             # memory, latency, peers, vllm;
                                             # recorded as DATE-HOST-peers.json, beside the full runs

The peers benchmark (bench_peers.py: the gate against lm-evaluation-harness)
needs lm-eval in its own environment, .venv-bench (`make bench-venv`, made by
`make bench`); without it that benchmark is skipped and the record says why.
The vllm benchmark (bench_vllm.py: the vLLM runtime against torch) needs vLLM's
environment named by $GATE_VLLM_PYTHON (`make vllm-venv`); without it, likewise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS = ("audit", "perplexity", "regate", "sweep", "bias", "workers", "sequential", "memory", "latency", "peers", "vllm")


def _versions() -> dict:
    from gate import DISTRIBUTION

    out = {"python": platform.python_version()}
    for name in (DISTRIBUTION, "torch", "transformers", "mlx", "mlx-lm", "numpy", "safetensors"):
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    chosen = BENCHMARKS if not args.only else tuple(name.strip() for name in args.only.split(","))
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    from gate.demo.build import ensure_demo_checkpoint

    figures: dict = {}
    if "audit" in chosen:
        from benchmarks import bench_audit

        print("== sparsity/size audit vs one read of the files")
        figures["audit"] = bench_audit.main()

    if "perplexity" in chosen:
        from benchmarks import bench_perplexity

        print("\n== perplexity: gate vs a plain forward-pass loop (demo model, torch)")
        result = bench_perplexity.bench(ensure_demo_checkpoint("dense"), windows=16)
        print(f"gate {result.gate_tokens_per_second:.1f} tokens/s, plain loop {result.plain_tokens_per_second:.1f} tokens/s "
              f"-> ratio {result.ratio:.3f} (goal >= {bench_perplexity.GOAL})")
        figures["perplexity"] = {"windows": result.windows, "gate_tokens_per_second": result.gate_tokens_per_second,
                                 "plain_tokens_per_second": result.plain_tokens_per_second, "ratio": result.ratio}

    if "regate" in chosen:
        from benchmarks import bench_regate

        print("\n== re-gate against a cached base vs a cold run (demo model, perplexity and bias)")
        figures["regate"] = bench_regate.main()

    if "sweep" in chosen:
        from benchmarks import bench_sweep

        print("\n== a sweep of the four demo variants against demo vs the sum of their own runs (base cached)")
        figures["sweep"] = bench_sweep.main()

    if "bias" in chosen:
        from benchmarks import bench_bias

        print("\n== bias scoring: bf16 vs fp32 agreement and speed; --permute with and without the shared prefix")
        figures["bias"] = bench_bias.run(items=300, windows=8)

    if "workers" in chosen:
        from benchmarks import bench_workers

        print("\n== BBQ token trees two at a time on a CPU, each on half the cores, vs one at a time")
        figures["workers"] = bench_workers.run(items=288)

    if "sequential" in chosen:
        from benchmarks import bench_sequential

        print("\n== sequential testing on BBQ: wrong decisions and items asked, simulated respondents")
        figures["sequential"] = bench_sequential.simulate(sims=100)
        print("\n".join(bench_sequential.table(figures["sequential"])))

    if "memory" in chosen:
        from benchmarks import bench_memory

        print("\n== peak memory of gate check vs the larger model's weights")
        figures["memory"] = bench_memory.run()

    if "latency" in chosen:
        from benchmarks import bench_latency

        print("\n== latency: candidate/base ratios on the demo model (torch; MLX on the dense pair only, it is slow on a Linux CPU)")
        figures["latency"] = bench_latency.run(backends=("torch",), prompts=6, repeats=4)
        if platform.system() == "Darwin" or os.environ.get("GATE_BENCH_MLX"):
            figures["latency"] |= bench_latency.run(backends=("mlx",), variants=("dense", "wanda50"), prompts=6, repeats=4)

    if "peers" in chosen:
        from benchmarks import bench_peers

        print("\n== peers: the gate vs lm-evaluation-harness on BBQ and perplexity (demo model, same items and text)")
        threads = os.environ.get("GATE_BENCH_THREADS")
        figures["peers"] = bench_peers.main(threads=int(threads) if threads else None)

    if "vllm" in chosen:
        from benchmarks import bench_vllm
        from gate.core.errors import BackendUnavailableError

        print("\n== vLLM (here its CPU build) vs torch: the demo pair, BBQ permuted and perplexity, side by side")
        try:
            figures["vllm"] = bench_vllm.run(None)
            print("\n".join(bench_vllm.table(figures["vllm"])))
        except BackendUnavailableError as exc:
            figures["vllm"] = {"skipped": str(exc)}
            print(f"skipped: {exc}")

    record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": {
        "cpu": _cpu(), "cores": os.cpu_count(), "platform": platform.platform()}, "versions": _versions(),
        "benchmarks": list(chosen), "figures": figures}
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if set(chosen) == set(BENCHMARKS) else "-" + "-".join(chosen)
    out = RESULTS / f"{record['date'][:10]}-{platform.node() or 'host'}{suffix}.json"
    out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"\nrecorded in {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")


if __name__ == "__main__":
    sys.exit(main())
