"""Peak memory of a model run against the weights of the larger model.

`gate check` holds one model at a time for perplexity and bias (the base is
measured and closed before the candidate loads), so its peak resident set
should be the larger model's weights plus what the interpreter and its
libraries need, not two models. Latency is the exception by design: it holds
both models when they fit, to time them in turns.

Each figure is the peak resident set (ru_maxrss) of a fresh `gate check`
process, read by a wrapper process that only waits for it. "Imports" is the
peak of a process that imports torch, transformers and gate and loads
nothing: what any Python tool on this stack pays before it touches a weight.

The demo model is small enough that the fixed part (the interpreter and its
libraries, about 300 MiB, more than the model's 257 MiB of bf16 weights)
dominates; random models with SmolLM2-360M's and SmolLM2-1.7B's shapes (724 MiB
and 3.4 GiB in bf16, built here and cached under ~/.cache/gate/bench) show how
the ratio falls as the weights grow.

    python -m benchmarks.bench_memory                  # demo wanda50 against dense, then both shapes
    python -m benchmarks.bench_memory --shapes 1.7b    # one shape only
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

GOAL = 1.3

_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode\n"
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * (1 if sys.platform == 'darwin' else 1024))\n"
)
_IMPORTS_ONLY = "import torch, transformers, gate.cli.main, gate.runtime.torch_backend, gate.measurements.bias.ask, gate.measurements.perplexity"


def peak_rss_bytes(command: list[str]) -> tuple[int, int]:
    """(exit code, peak resident bytes) of `command` run in a fresh process."""
    out = subprocess.run([sys.executable, "-c", _WRAPPER, *command], capture_output=True, text=True, check=True)
    code, peak = out.stdout.split()
    return int(code), int(peak)


def weights_bytes(path: Path, dtype: str) -> int:
    """Bytes of the model's parameters at `dtype`, as loaded (tied embeddings once)."""
    from gate.runtime.torch_backend import load_torch_model

    handle = load_torch_model(path, device="cpu", dtype=dtype)
    try:
        return sum(p.numel() * p.element_size() for p in handle.model.parameters())
    finally:
        handle.close()


# Shapes of the SmolLM2 family (same tokenizer and vocabulary as the demo model).
SHAPES = {
    "360m": {"hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32,
             "num_attention_heads": 15, "num_key_value_heads": 5, "head_dim": 64},
    "1.7b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24,
             "num_attention_heads": 32, "num_key_value_heads": 32, "head_dim": 64},
}


def random_model(shape: str) -> Path:
    """A random model of a SmolLM2 shape with the demo tokenizer, bf16, cached; its own base and candidate."""
    import shutil

    import torch
    from transformers import AutoConfig, LlamaForCausalLM

    from gate.demo.build import ensure_demo_checkpoint

    out = Path.home() / ".cache" / "gate" / "bench" / f"random-smollm2-{shape}-shape"
    if (out / "config.json").exists():
        return out
    demo = ensure_demo_checkpoint("dense")
    config = AutoConfig.from_pretrained(demo)
    config.update(SHAPES[shape])
    torch.manual_seed(0)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model = model.to_empty(device="cpu").to(torch.bfloat16)  # never a float32 copy of a multi-GB model
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.fill_(1.0) if "norm" in name else param.normal_(std=0.02)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    for name in demo.iterdir():
        if name.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            shutil.copy(name, tmp / name.name)
    tmp.rename(out)
    return out


def run(variant: str = "wanda50", dtype: str = "bfloat16", shapes: tuple[str, ...] = ("360m", "1.7b")) -> dict:
    from gate.demo.build import ensure_demo_checkpoint

    figures = {"demo": measure(ensure_demo_checkpoint("dense"), ensure_demo_checkpoint(variant),
                               f"demo {variant} vs dense", dtype)}
    for shape in shapes:
        larger = random_model(shape)
        figures[f"random_{shape}"] = measure(larger, larger, f"random SmolLM2-{shape.upper()} shape vs itself", dtype)
    return figures


def measure(base: Path, candidate: Path, label_: str, dtype: str) -> dict:
    weights = max(weights_bytes(base, dtype), weights_bytes(candidate, dtype))
    _, imports = peak_rss_bytes([sys.executable, "-c", _IMPORTS_ONLY])
    figures = {"models": label_, "dtype": dtype, "weights_bytes": weights, "imports_peak_bytes": imports}
    with tempfile.TemporaryDirectory() as tmp:
        for label, metrics, extra in (("perplexity+bias", "perplexity,bias", ["--bbq-limit", "120", "--ppl-tokens", "4096"]),
                                      ("latency", "latency", ["--latency-prompts", "2", "--latency-repeats", "2",
                                                              "--latency-backend", "torch"])):
            report = Path(tmp) / f"{label}.json"
            command = [sys.executable, "-m", "gate", "check", str(candidate), "--base", str(base), "--metrics", metrics,
                       "--dtype", dtype, "--no-cache", "--quiet", "--json", str(report), *extra]
            code, peak = peak_rss_bytes(command)
            if not report.exists():
                raise RuntimeError(f"gate check ({label}) wrote no report (exit {code})")
            json.loads(report.read_text())
            figures[label] = {"exit_code": code, "peak_bytes": peak, "peak_over_weights": peak / weights,
                              "peak_above_imports_over_weights": (peak - imports) / weights}
    mib = lambda n: f"{n / 2**20:,.0f} MiB"  # noqa: E731
    print(f"{label_}, {dtype}: larger model's weights {mib(weights)}; imports alone peak at "
          f"{mib(imports)}")
    for label in ("perplexity+bias", "latency"):
        f = figures[label]
        print(f"  {label:<16} peak {mib(f['peak_bytes'])} = {f['peak_over_weights']:.2f}x the weights; "
              f"above the imports {f['peak_above_imports_over_weights']:.2f}x"
              + (f" (goal <= {GOAL})" if label != "latency" else " (both models held by design)"))
    return figures


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, of: {', '.join(SHAPES)}")
    run(shapes=tuple(s for s in parser.parse_args().shapes.split(",") if s))
