"""The sparsity/size audit against one plain read of the same files.

Builds a synthetic bf16 checkpoint larger than 2 GB (Llama-shaped, hidden
4096, 50% magnitude-like zeros), reads it once to warm the page cache, then
times (a) reading every weight file once more and (b) the audit, each in a
fresh process so peak RSS is the audit's own. Prints audit/read (goal ≤ 1.5)
and peak RSS against the largest tensor.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HIDDEN, INTER, VOCAB, LAYERS = 4096, 11008, 32000, 5
READ_ONCE = """
import sys, time
t = time.perf_counter()
for name in sys.argv[1:]:
    with open(name, 'rb', buffering=0) as f:
        buf = bytearray(1 << 24)
        while f.readinto(buf):
            pass
print(time.perf_counter() - t)
print([int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0])
"""
AUDIT = """
import sys, time
from pathlib import Path
from gate.inputs.checkpoint import open_checkpoint
from gate.measurements.scan import scan_checkpoint
from gate.measurements.sparsity import summarize_sparsity
from gate.measurements.size import measure_size
t = time.perf_counter()
ck = open_checkpoint(Path(sys.argv[1]))
scan = scan_checkpoint(ck)
sp = summarize_sparsity(scan)
measure_size(ck, scan)
print(time.perf_counter() - t, sp.overall.sparsity)
print([int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0])
"""


def build(path: Path) -> tuple[int, int]:
    """Write the checkpoint with raw bf16 bit patterns; returns (bytes, largest tensor bytes)."""
    rng = np.random.default_rng(0)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    shapes = {"model.embed_tokens.weight": (VOCAB, HIDDEN), "lm_head.weight": (VOCAB, HIDDEN)}
    for i in range(LAYERS):
        for kind, shape in (("self_attn.q_proj", (HIDDEN, HIDDEN)), ("self_attn.k_proj", (HIDDEN, HIDDEN)),
                            ("self_attn.v_proj", (HIDDEN, HIDDEN)), ("self_attn.o_proj", (HIDDEN, HIDDEN)),
                            ("mlp.gate_proj", (INTER, HIDDEN)), ("mlp.up_proj", (INTER, HIDDEN)), ("mlp.down_proj", (HIDDEN, INTER))):
            shapes[f"model.layers.{i}.{kind}.weight"] = shape
    weight_map, total, shard, part = {}, 0, 0, {}
    template = rng.integers(0x3000, 0x3F00, size=1 << 22, dtype=np.uint16)  # finite bf16 bit patterns
    template[rng.random(template.size) < 0.5] = 0
    for name, shape in shapes.items():
        n = int(np.prod(shape))
        part[name] = np.resize(template, n).reshape(shape)  # bf16 bit patterns, reinterpreted on save
        total += n * 2
        if sum(a.nbytes for a in part.values()) > 1 << 30:
            shard = _flush(path, part, shard, weight_map)
    _flush(path, part, shard, weight_map)
    (path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return total, max(int(np.prod(s)) * 2 for s in shapes.values())


def _flush(path: Path, part: dict, shard: int, weight_map: dict) -> int:
    import torch
    from safetensors.torch import save_file

    if not part:
        return shard
    name = f"model-{shard:05d}.safetensors"
    # numpy has no bf16: reinterpret the uint16 bit patterns as bf16 tensors.
    save_file({k: torch.from_numpy(v).view(torch.bfloat16) for k, v in part.items()}, str(path / name))
    weight_map.update({k: name for k in part})
    part.clear()
    return shard + 1


def run(code: str, *args: str) -> tuple[list[str], int]:
    """Run a snippet in a fresh process; returns its printed figures and its own peak RSS (bytes, Linux)."""
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True).stdout.split()
    return out[:-1], int(out[-1])


def main() -> dict:
    with tempfile.TemporaryDirectory(prefix="gate-bench-audit-") as tmp:
        path = Path(tmp) / "ckpt"
        total, largest = build(path)
        files = [str(p) for p in sorted(path.glob("*.safetensors"))]
        run(READ_ONCE, *files)  # warm the page cache
        reads, audits, rss, rss_read = [], [], 0, 0
        for _ in range(3):
            out, peak_read = run(READ_ONCE, *files)
            reads.append(float(out[0]))
            out, peak = run(AUDIT, str(path))
            audits.append(float(out[0]))
            rss, rss_read = max(rss, peak), max(rss_read, peak_read)
        read_s, audit_s = min(reads), min(audits)
        result = {"checkpoint_bytes": total, "largest_tensor_bytes": largest, "read_once_s": read_s, "audit_s": audit_s,
                  "audit_over_read": audit_s / read_s, "peak_rss_bytes": rss, "peak_rss_over_largest_tensor": rss / largest,
                  "plain_read_peak_rss_bytes": rss_read}
    print(f"audit: {total / 2**30:.2f} GiB checkpoint; read once {read_s:.2f} s, audit {audit_s:.2f} s "
          f"-> audit/read = {result['audit_over_read']:.2f} (goal <= 1.5)")
    print(f"audit: peak RSS {rss / 2**20:.0f} MiB vs largest tensor {largest / 2**20:.0f} MiB "
          f"-> {result['peak_rss_over_largest_tensor']:.2f}x (a bare Python read peaks at {rss_read / 2**20:.0f} MiB)")
    return result


if __name__ == "__main__":
    main()
