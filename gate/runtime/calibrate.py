"""How fast this machine runs a model's kind of arithmetic, measured in a fraction of a second.

Two figures feed the up-front estimates (`gate.run.estimate`): the speed of a
matmul shaped like the model's (hidden × 4·hidden, 256 tokens) at the dtype the
runtime will compute in, and the speed of one pass over an array larger than
the caches. Each is the best of a few short repeats, so a brief hiccup on a
shared machine does not halve the estimate's speed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

TOKENS = 256
STREAM_BYTES = 64 * 2**20
REPEATS = 5


@dataclass(frozen=True)
class MachineSpeed:
    """What the calibration measured on the runtime that will run the models."""

    flops: float  # FLOP/s of a large matmul at the compute dtype
    bytes_per_second: float  # a streaming pass over a large array (memory bandwidth)
    runtime: str = ""  # e.g. "torch cpu bfloat16"


def calibrate(backend: str, device: str, dtype: str, hidden: int) -> MachineSpeed:
    """Matmul FLOP/s and streaming bytes/s on `backend` ("torch" or "mlx") at `device` and `dtype`."""
    hidden = min(max(hidden, 256), 8192)
    if backend == "mlx":
        return _calibrate_mlx(device, dtype, hidden)
    return _calibrate_torch(device, dtype, hidden)


def _best_seconds(run: Callable[[], None], sync: Callable[[], None]) -> float:
    run()
    sync()  # the first call pays for allocation and kernel selection
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        run()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def _calibrate_torch(device: str, dtype: str, hidden: int) -> MachineSpeed:
    import torch

    torch_dtype = getattr(torch, dtype)
    x = torch.randn(TOKENS, hidden, dtype=torch_dtype, device=device)
    w = torch.randn(hidden, 4 * hidden, dtype=torch_dtype, device=device)
    big = torch.ones(STREAM_BYTES // 4, dtype=torch.float32, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with torch.inference_mode():
        matmul = _best_seconds(lambda: torch.matmul(x, w), sync)
        stream = _best_seconds(lambda: big.sum(), sync)
    return MachineSpeed(flops=2 * TOKENS * hidden * 4 * hidden / matmul, bytes_per_second=STREAM_BYTES / stream,
                        runtime=f"torch {device} {dtype}")


def _calibrate_mlx(device: str, dtype: str, hidden: int) -> MachineSpeed:
    import mlx.core as mx

    mlx_dtype = getattr(mx, dtype)
    x = mx.random.normal((TOKENS, hidden)).astype(mlx_dtype)
    w = mx.random.normal((hidden, 4 * hidden)).astype(mlx_dtype)
    big = mx.ones((STREAM_BYTES // 4,), dtype=mx.float32)
    mx.eval(x, w, big)
    matmul = _best_seconds(lambda: mx.eval(mx.matmul(x, w)), lambda: None)
    stream = _best_seconds(lambda: mx.eval(mx.sum(big)), lambda: None)
    return MachineSpeed(flops=2 * TOKENS * hidden * 4 * hidden / matmul, bytes_per_second=STREAM_BYTES / stream,
                        runtime=f"mlx {device} {dtype}")
